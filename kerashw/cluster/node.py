"""What one Ray task runs on a node: one run of a study, trained by kerashw.training.train
into a private store in a temporary folder, its events streamed back as they happen.

The task is a generator (a Ray streaming generator): it yields
- ("started", {params, versions, node}) when the run starts training,
- ("record", PhaseRecord) for each epoch x phase, as it ends,
- ("notice", text) for what the user should know (a resume, skipped images),
- ("saved", epoch, bytes) the run folder after each whole epoch (backup included), so the
  local process can restart the run elsewhere from there,
- ("ended", summary, bytes or None) the status, numbers and the final run folder.
A failure on the node (bad data there, out of memory) ends with status "failed" and the
node's message; only the loss of the node itself reaches the caller as a Ray error.
"""
from __future__ import annotations

import dataclasses
import queue
import shutil
import socket
import tempfile
import threading
from pathlib import Path

from kerashw.cluster import payload
from kerashw.config import DataError, RunSpec, TrainOptions
from kerashw.listener import Listener

_END = object()


class _Forward(Listener):
    """The run's listener on the node: the events the local process needs, into a queue."""

    def __init__(self, events: queue.Queue, node: str, bn: str):
        self.events, self.node, self.bn = events, node, bn

    def run_started(self, spec, index, total, params):
        from kerashw.training.train import versions

        self.events.put(("started", {"params": tuple(params), "versions": versions(self.bn), "node": self.node}))

    def phase_ended(self, record):
        self.events.put(("record", record))

    def notice(self, text):
        self.events.put(("notice", text))


def node_name() -> str:
    try:
        import ray

        return f"{socket.gethostname()} (node {ray.get_runtime_context().get_node_id()[:8]})"
    except Exception:  # outside a Ray task (tests call train_on_node directly)
        return socket.gethostname()


def localise(spec: RunSpec, options: TrainOptions, data, work: Path, node: str) -> tuple[RunSpec, TrainOptions]:
    """The spec and options pointing at this node's copy of the data; DataError unless the
    copy's fingerprint is the one the run id names (a node never trains other data)."""
    from kerashw import tasks
    from kerashw.identity import identify

    if data is None:
        return spec, options
    spec, options = tasks.get(spec.task).relocate(spec, options, payload.unpack_data(data, work / "data"))
    here = identify(dataclasses.replace(spec, data_id=None), options, fetch=False)
    if here.data_id != spec.data_id:
        raise DataError(f"the data that reached {node} has fingerprint {here.data_id}, but run {spec.run_id} "
                        f"names {spec.data_id}: it changed on the way or on disk; train again")
    return spec, options


def restore(store, spec: RunSpec, folder: bytes | None, records: list, parent) -> None:
    """What the run resumes from, in the private store: its folder (backup, best weights,
    metrics.csv) and its stored epochs; and the finished run it fine-tunes from."""
    if parent is not None:
        pid, pspec, model = parent
        store.start_run(pid, pspec["task"], "", pspec)
        store.finish_run(pid, "finished", 0.0)
        path = store.files(pid).model
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(model)
    if folder is None:
        return
    payload.unpack(folder, store.run_dir(spec.run_id))
    store.start_run(spec.run_id, spec.task, spec.label(), spec.to_dict())
    for record in records:
        store.log_epoch(spec.run_id, record)
    store.finish_run(spec.run_id, "interrupted", 0.0)


def train_on_node(spec_dict: dict, options: TrainOptions, data, folder: bytes | None, records: list,
                  parent, threads: int):
    """The Ray task (a generator); see the module's docstring for what it yields. Its temporary
    folder is removed before the last event goes out: once the caller has that event it may
    shut Ray down, and a worker stopped then never reaches a `finally`."""
    node = node_name()
    work = Path(tempfile.mkdtemp(prefix="kerashw-node-"))
    stop = threading.Event()
    worker: list = []
    ended = None
    try:
        for event in _events(spec_dict, options, data, folder, records, parent, threads, node, work, stop, worker):
            if event[0] == "ended":
                ended = event
                break
            yield event
    except Exception as exc:  # before training: the data, the restore
        ended = ("ended", {"status": "failed", "error": f"on {node}: {type(exc).__name__}: {exc}",
                           "elapsed": 0.0}, None)
    finally:  # also a cancel from the local process (KeyboardInterrupt in this thread)
        stop.set()  # the run stops at its next step
        for thread in worker:
            thread.join(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    if ended is not None:
        yield ended


def _events(spec_dict, options, data, folder, records, parent, threads, node, work: Path, stop, worker: list):
    from kerashw.store import Store
    from kerashw.training import distribute, train

    events: queue.Queue = queue.Queue()
    box: dict = {}
    # a fresh process per run (max_calls=1): before TF's first op
    distribute.configure_threads(threads, towers=int(spec_dict.get("towers", 1)))
    spec, options = localise(RunSpec.from_dict(spec_dict), options, data, work, node)
    store = Store(work / "store")
    restore(store, spec, folder, records, parent)
    run_dir = store.run_dir(spec.run_id)
    options = dataclasses.replace(
        options, threads=threads, progress=None,
        epoch_saved=lambda n: events.put(("saved", n, payload.pack_folder(run_dir, skip=("tensorboard",)))))

    def body():
        try:
            box["result"] = train.run(spec, store=store, listener=_Forward(events, node, options.bn), cancel=stop,
                                      options=options)
        except BaseException as exc:  # stored failed in the private store; told to the caller
            box["error"] = f"on {node}: {type(exc).__name__}: {exc}"
        finally:
            events.put(_END)

    thread = threading.Thread(target=body, name=f"kerashw-run-{spec.run_id}", daemon=True)
    worker.append(thread)
    thread.start()
    while (event := events.get()) is not _END:
        yield event
    result = box.get("result")
    if result is None:
        yield "ended", {"status": "failed", "error": box["error"], "elapsed": 0.0}, None
        return
    summary = {"status": result.status, "error": result.error, "elapsed": result.elapsed,
               "final": result.final, "best": result.best}
    yield "ended", summary, payload.pack_folder(run_dir) if run_dir.exists() else None
