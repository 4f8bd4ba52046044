"""`kerashw train --ray`: a study's runs as Ray tasks over many machines, one store.

payload: what travels (data, run folders) as bytes; node: what a Ray task runs on a node;
driver: the local process, which submits the runs, writes the store (its only writer) and
restarts a run whose node was lost from its last whole epoch.
"""
EXTRA = 'kerashw train --ray needs Ray, an optional extra: pip install "kerashw[ray]"'


class RayMissing(RuntimeError):
    """--ray without Ray installed; the message names the extra."""


def require_ray():
    """The ray module, or RayMissing naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise RayMissing(EXTRA) from None
    return ray
