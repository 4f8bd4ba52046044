"""How a process trains: on one device, mirrored over several, or as one worker of a
multi-worker cluster (tf.distribute), and with how many threads.

The batch size a run asks for is the global batch: with N replicas each computes the
gradient of batch/N images and the replicas' gradients are summed, so one step is the
same step as on one device and the learning rate is kept as given (no linear scaling:
the run's numbers must not depend on how many devices computed them).

Multi-worker: every worker runs the same `kerashw train` command with its own
TF_CONFIG; only the chief writes the user's store, checkpoints and exports. The others
train into a private temporary store, and before each run they take the chief's word
on whether to train it (a finished or owned run is skipped by all, or none).
"""
from __future__ import annotations

import functools
import json
import os
import tempfile

MODES = (None, "mirrored", "multiworker")


def configure_threads(threads: int | None, towers: int = 1) -> None:
    """TensorFlow's intra- and inter-op threads for this process (None: TF's default,
    every core). Must run before TensorFlow's first op; later it cannot change.
    With towers (kerashw.training.towers) the cores are shared out: as many ops side by side
    as towers (up to the cores), each op on cores // that. A slim ResNet's op gains little
    from a second thread (1.2x), two towers on one thread each 1.4x."""
    if not threads and towers <= 1:
        return
    import tensorflow as tf

    cores = threads or os.cpu_count() or 1
    side_by_side = max(1, min(towers, cores))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(max(1, cores // side_by_side) if towers > 1 else cores)
        tf.config.threading.set_inter_op_parallelism_threads(side_by_side if towers > 1 else cores)
    except RuntimeError:  # TF already initialised in this process (e.g. a second study)
        pass


class SetupError(ValueError):
    """--distribute or --devices asks for what this machine or cluster does not have."""


class Uncombined(SetupError):
    """--distribute asked for with a run setting it does not combine with."""


@functools.cache
def strategy(mode: str | None, devices: tuple[str, ...] | None = None):
    """The process's strategy, made once (MultiWorkerMirroredStrategy must be created
    before any other TF op and only once); None trains on TF's default device."""
    if mode is None:
        return None
    import tensorflow as tf

    if mode == "mirrored":
        return tf.distribute.MirroredStrategy(check_devices(devices) if devices else None)
    if mode == "multiworker":
        _check_tf_config()
        strat = tf.distribute.MultiWorkerMirroredStrategy()
        _keras_multiworker_fixes()
        return strat
    raise SetupError(f"Unknown --distribute {mode!r}. Known: mirrored, multiworker")


def check_devices(devices) -> list[str]:
    """Each device must be one TensorFlow has here: a missing one (/cpu:1 on a machine with
    one logical CPU) made the first step wait forever."""
    import tensorflow as tf

    have = {(d.device_type, int(d.name.rsplit(":", 1)[1])): d.name for d in tf.config.list_logical_devices()}
    for name in devices:
        try:
            spec = tf.DeviceSpec.from_string(name)
        except (ValueError, TypeError) as exc:
            raise SetupError(f"--devices {name!r} is not a device name ({exc}); want e.g. /gpu:0 or /cpu:0") from None
        key = ((spec.device_type or "").upper(), spec.device_index if spec.device_index is not None else 0)
        if key not in have:
            raise SetupError(f"--devices {name!r}: no such device here; this machine has "
                             f"{', '.join(sorted(have.values()))}")
    return list(devices)


def _check_tf_config() -> None:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise SetupError("--distribute multiworker needs the TF_CONFIG environment variable "
                         "(the cluster's workers and this worker's task; README, 'More than one machine')")
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        ok = isinstance(workers, list) and task["type"] in ("worker", "chief") and isinstance(task["index"], int)
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise SetupError(f"TF_CONFIG is {raw!r}; want JSON like {{\"cluster\": {{\"worker\": [\"host:port\", ...]}}, "
                         "\"task\": {\"type\": \"worker\", \"index\": 0}}")


def is_chief(strat) -> bool:
    """The worker that writes: the `chief` task, or worker 0 of a cluster without one."""
    if strat is None or not _is_multiworker(strat):
        return True
    resolver = strat.cluster_resolver
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def _is_multiworker(strat) -> bool:
    import tensorflow as tf

    return isinstance(strat, tf.distribute.MultiWorkerMirroredStrategy)


def private_store_path() -> str:
    """Where a non-chief worker writes (its store, run folders): discarded after."""
    return tempfile.mkdtemp(prefix="kerashw-worker-")


def chief_says(strat, value: int) -> int:
    """Every worker calls this at the same point; all return the chief's `value` (>= 0).
    An all-reduce: the chief's replicas contribute value / local replicas, the rest 0."""
    if strat is None or not _is_multiworker(strat):
        return value
    import tensorflow as tf

    workers = sum(len(v) for k, v in strat.cluster_resolver.cluster_spec().as_dict().items()
                  if k in ("chief", "worker"))
    local = strat.num_replicas_in_sync // workers
    mine = float(value) / local if is_chief(strat) else 0.0
    total = strat.reduce(tf.distribute.ReduceOp.SUM, strat.run(lambda: tf.constant(mine)), axis=None)
    return int(round(float(total)))


def mean_over_workers(strat, logs: dict) -> dict:
    """Each numeric log averaged over the cluster's replicas (an all-reduce: every worker
    calls it at the same point). Keras keeps metric state per worker, so a worker's
    training accuracy covers its own shard; the shards are equal, so their mean is the
    epoch's accuracy over all the data."""
    import tensorflow as tf

    keys = sorted(k for k, v in logs.items() if isinstance(v, (int, float)) or hasattr(v, "numpy"))
    mine = tf.constant([float(logs[k]) for k in keys], tf.float32)
    mean = strat.reduce(tf.distribute.ReduceOp.MEAN, strat.run(lambda: mine), axis=None)
    return dict(zip(keys, (float(v) for v in mean.numpy())))


def describe(strat, mode: str, specs) -> str:
    """One line for the front end: replicas, the global and per-replica batch, the role."""
    n = strat.num_replicas_in_sync
    batches = sorted({s.batch_size for s in specs})
    each = ", ".join(f"global batch {b} ({b // n if b % n == 0 else f'{b / n:.1f}'} per replica)" for b in batches)
    line = f"tf.distribute {mode} over {n} replicas, {each}; learning rates as given"
    if mode == "multiworker":
        cfg = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
        role = "the chief: writes the store" if is_chief(strat) else "not the chief: writes nothing of the store"
        line += f"; this is {cfg.get('type', '?')} {cfg.get('index', '?')}, {role}"
    return line


def _keras_multiworker_fixes() -> None:
    """Keras 3's fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585, open
    for Keras 3.7-3.15 at least): it all-reduces a data batch only to learn its shapes,
    and reduces scalar metrics along an axis 0 they lack. Two private functions of its
    TensorFlow trainer are replaced, for multi-worker runs only: the build reads this
    worker's own batch, and scalars reduce without an axis. tests/test_distribute.py's
    two-process run fails if a Keras release changes what these replace."""
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    def local(strat, x):
        return strat.experimental_local_results(x)[0] if isinstance(x, tf.distribute.DistributedValues) else x

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tree.map_structure(lambda x: local(self.distribute_strategy, x), next(it))
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strat, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strat):
            def one(v):
                if not trainer._is_per_replica_instance(v):
                    return v
                rank = strat.experimental_local_results(v)[0].shape.rank
                return strat.reduce("MEAN", v, axis=0 if rank else None)

            return tree.map_structure(one, values)
        return original(values, strat, reduction)

    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    trainer.reduce_per_replica = reduce_per_replica
