"""The local side of `kerashw train --ray`: each run not yet finished becomes a Ray task
(kerashw.cluster.node); this process claims it, writes what the task streams back into the
store as it arrives (the store's only writer, so SQLite keeps its guarantees), and keeps
the run folder, backup included, after every whole epoch.

A node lost mid-run (a Ray error, not the run's own failure) restarts the run on another
node from the last whole epoch this process holds, with the same numbers as an unbroken
run (the resume is kerashw's exact resume). Ctrl-C cancels the tasks and stores the runs
in training as interrupted; the same command resumes them.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from kerashw import atomic
from kerashw.cluster import payload, require_ray
from kerashw.cluster.node import train_on_node
from kerashw.config import RunSpec, TrainOptions, unique
from kerashw.identity import identify_all
from kerashw.listener import Listener
from kerashw.record import PhaseRecord
from kerashw.store import Store
from kerashw.training.callbacks import Backup
from kerashw import tasks
from kerashw.training.train import RunResult, _summarise, skipped_result


@dataclass(frozen=True)
class RayOptions:
    """Where and with what each run trains."""

    address: str | None = None  # None: a local Ray for this command; "auto"; "ray://host:port"
    cpus_per_run: float = 1.0  # also the run's TensorFlow threads
    gpus_per_run: float | None = None  # None: one when the cluster has GPUs, else none
    attempts: int = 3  # a run whose node is lost starts again elsewhere, this many times in all
    poll: float = 0.5  # seconds between looks for a cancel when nothing arrives


@dataclass
class _Run:
    spec: RunSpec
    index: int
    work: Path  # the run's folder in the store (a --force attempt's beside it)
    replacing: bool
    gen: object = None  # the Ray task's ObjectRefGenerator while it runs
    attempts: int = 0
    elapsed: float = 0.0  # training time on nodes, over attempts
    started: bool = False
    params: tuple = (0, 0)
    versions: dict | None = None  # what trained it, as its node said
    node: str = ""
    submitted: float = 0.0  # when it was first handed to Ray (perf_counter)
    training_since: float = 0.0  # when the current attempt started training (perf_counter)

    def done(self) -> int:
        """The whole epochs the backup this side holds has: where the run goes on from."""
        return min(Backup.epochs_done(self.work / "backup"), self.spec.epochs)


class Driver:
    """One `--ray` study: submit, follow, store. `run_study` makes one."""

    def __init__(self, store: Store, studies, listener: Listener, options: TrainOptions, ray_options: RayOptions,
                 force: bool, cancel):
        self.ray = require_ray()
        self.store, self.studies, self.listener = store, tuple(studies), listener
        self.options, self.ro, self.force, self.cancel = options, ray_options, force, cancel
        self.results: dict[str, RunResult] = {}
        self.data: dict[Path, object] = {}  # local source -> its bytes in Ray's object store, put once
        self.remote = None

    # -- submitting ----------------------------------------------------------------------
    def _task(self):
        if self.remote is None:
            gpus = self.ro.gpus_per_run
            if gpus is None:
                gpus = 1 if self.ray.cluster_resources().get("GPU", 0) >= 1 else 0
            # a process per run (max_calls=1): TensorFlow's threads set for it, nothing left from
            # another run; Ray does not retry (max_retries=0): this side resumes from the backup
            self.remote = self.ray.remote(max_calls=1, max_retries=0)(train_on_node).options(
                num_cpus=self.ro.cpus_per_run, num_gpus=gpus)
        return self.remote

    def _data_ref(self, spec: RunSpec):
        source = tasks.get(spec.task).data_source(spec, self.options)
        if source is None:
            return None
        if source not in self.data:
            self.data[source] = self.ray.put(payload.pack_data(source))
        return self.data[source]

    def _parent(self, spec: RunSpec):
        """(id, spec, model bytes) of the finished run a fine-tuning starts from, or None."""
        row = self.store.get(spec.init_from) if spec.init_from else None
        model = self.store.files(spec.init_from).model if row else None
        if row is None or row.status != "finished" or not model.exists():
            return None
        return row.id, row.spec, model.read_bytes()

    def submit(self, run: _Run) -> bool:
        """Hand the run to Ray; False when it cannot start (its --init-from run did not finish)."""
        parent = self._parent(run.spec)
        if run.spec.init_from and parent is None:
            self.end(run, {"status": "failed", "elapsed": 0.0,
                           "error": f"--init-from {run.spec.init_from}: that run is not finished in "
                                    f"{self.store.path} (train it first)"}, None)
            return False
        done = run.done()
        folder = payload.pack_folder(run.work, skip=("tensorboard",)) if done else None
        records = [r for r in self.store.epochs(run.spec.run_id) if r.epoch <= done] if done else []
        threads = max(1, int(self.ro.cpus_per_run))
        run.attempts += 1
        run.submitted = run.submitted or time.perf_counter()
        options = dataclasses.replace(self.options, progress=None, backup_every=0.0)  # each epoch travels home
        run.gen = self._task().remote(run.spec.to_dict(), options,
                                      self._data_ref(run.spec), folder, records, parent, threads)
        return True

    # -- what comes back -----------------------------------------------------------------
    def on_event(self, run: _Run, event) -> bool:
        """Store and show one event; True when the run has ended."""
        kind, spec = event[0], run.spec
        if kind == "started":
            info = event[1]
            run.params, run.node, run.versions, run.started = info["params"], info["node"], info["versions"], True
            run.training_since = time.perf_counter()
            self.store.start_run(spec.run_id, spec.task, spec.label(), spec.to_dict(), self.studies,
                                 run.params, info["versions"], keep_through=run.done())
            self.listener.run_started(spec, run.index, self.total, run.params)
            self.listener.notice(f"run {spec.run_id} trains on {run.node}")
        elif kind == "record":
            record: PhaseRecord = event[1]
            self.store.log_epoch(spec.run_id, record)
            self.listener.run_phase_ended(spec.run_id, record)
        elif kind == "notice":
            self.listener.notice(event[1])
        elif kind == "saved":
            run.work.mkdir(parents=True, exist_ok=True)
            payload.mirror(event[2], run.work, "backup")
            self._write_spec(run)
        elif kind == "ended":
            self.end(run, event[1], event[2])
            return True
        return False

    def _write_spec(self, run: _Run) -> None:
        """The run folder's spec.json as this machine names the data (the node's names its copy)."""
        atomic.write_text(run.work / "spec.json", json.dumps(run.spec.to_dict(), indent=2))

    def end(self, run: _Run, summary: dict, folder: bytes | None) -> None:
        spec, status = run.spec, summary["status"]
        run.elapsed += summary.get("elapsed") or 0.0
        if folder is not None:
            run.work.mkdir(parents=True, exist_ok=True)
            payload.mirror(folder, run.work, "backup")
            self._write_spec(run)
        if status not in ("interrupted", "failed"):
            shutil.rmtree(run.work / "backup", ignore_errors=True)  # only an unfinished run resumes
        if not run.started:  # it failed before training: stored failed all the same, as a study does
            self.store.start_run(spec.run_id, spec.task, spec.label(), spec.to_dict(), self.studies,
                                 keep_through=run.done())
        final, best = summary.get("final"), summary.get("best")
        if final is None:  # no word from the node: the whole epochs this side holds
            done = run.done()
            final, best = _summarise([r for r in self.store.epochs(spec.run_id) if r.epoch <= done])
        stored = self.store.finish_run(spec.run_id, status, run.elapsed, final, best, summary.get("error"),
                                       versions=run.versions)
        if run.replacing:
            if status == "finished":
                self.store.promote(spec.run_id, run.work)
            else:
                shutil.rmtree(run.work, ignore_errors=True)
        error = summary.get("error")
        if stored != status:
            error = f"this attempt ended {status}; the previous finished result is kept"
        result = RunResult(spec.run_id, spec, status, run.elapsed, run.params, final or {}, best or {},
                           self.store.epochs(spec.run_id), error)
        self.results[spec.run_id] = result
        self.listener.run_ended(result)
        if run.node:  # what Ray costs around a run: a worker process, the data, the run folder, any wait for a CPU
            self.listener.notice(f"run {spec.run_id}: {time.perf_counter() - run.submitted:.1f} s from submit to "
                                 f"stored, {run.elapsed:.1f} s of it in training on {run.node}")

    def lost(self, run: _Run, exc: Exception) -> bool:
        """The run's node or worker was lost: start it again elsewhere from its last whole
        epoch, or store it failed after `attempts`; True when it was started again."""
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if run.started:  # the lost attempt's training time, as this side saw it
            run.elapsed += time.perf_counter() - run.training_since
        if run.attempts < self.ro.attempts:
            self.listener.notice(f"run {run.spec.run_id}: lost its node ({why}); starting it again on another "
                                 f"node from epoch {run.done() + 1} (attempt {run.attempts + 1}/{self.ro.attempts})")
            return self.submit(run)
        self.end(run, {"status": "failed", "elapsed": 0.0,
                       "error": f"lost its node {run.attempts} times, the last: {why}"}, None)
        return False

    # -- the study -----------------------------------------------------------------------
    def run(self, specs: list[RunSpec]) -> list[RunResult]:
        ray = self.ray
        self.total = len(specs)
        waiting: list[_Run] = []
        for i, spec in enumerate(specs, start=1):
            claim = self.store.claim(spec.run_id, force=self.force)
            skipped = skipped_result(claim, spec, self.store, self.studies, self.listener, i, len(specs))
            if skipped is not None:
                self.results[spec.run_id] = skipped
            else:
                waiting.append(_Run(spec, i, self.store.work_dir(spec.run_id, claim.replacing), claim.replacing))
        active: dict = {}
        try:
            while waiting or active:
                # a fine-tuning waits for the run it starts from when that run is in this study
                busy = {r.spec.run_id for r in waiting} | {r.spec.run_id for r in active.values()}
                for run in [r for r in waiting if r.spec.init_from not in busy]:
                    waiting.remove(run)
                    if self.submit(run):
                        active[run.gen] = run
                if self.cancel is not None and self.cancel.is_set():
                    raise KeyboardInterrupt
                ready, _ = ray.wait(list(active), num_returns=1, timeout=self.ro.poll)
                for gen in ready:
                    run = active.pop(gen)
                    try:
                        ended = self.on_event(run, ray.get(next(gen)))
                    except StopIteration:
                        ended = self.lost(run, RuntimeError("the task ended without a result")) is False
                    except ray.exceptions.RayError as exc:
                        ended = self.lost(run, exc) is False
                    if not ended:
                        active[run.gen] = run
        except KeyboardInterrupt:
            self.interrupt(list(active.values()), waiting)
        return [self.results[s.run_id] for s in specs if s.run_id in self.results]

    def interrupt(self, running: list[_Run], waiting: list[_Run]) -> None:
        """Cancel the tasks; runs in training are stored interrupted with the epochs this side
        holds (they resume from the backup it holds), the others give their claim back."""
        for run in running:
            self.ray.cancel(run.gen)
        for run in waiting + [r for r in running if not r.started]:
            self.store.release(run.spec.run_id)
        for run in running:
            if run.started:
                self.end(run, {"status": "interrupted", "elapsed": time.perf_counter() - run.training_since}, None)
        # let the cancelled tasks clean their temporary folders (a cancel is a KeyboardInterrupt there)
        gens = [r.gen for r in running]
        deadline = time.monotonic() + 15
        while gens and time.monotonic() < deadline:
            ready, gens = self.ray.wait(gens, num_returns=len(gens), timeout=1)
            for gen in ready:
                try:
                    while True:
                        self.ray.get(next(gen))
                except Exception:
                    pass


def connect(ray, address: str | None) -> bool:
    """Join the cluster at `address` (or start a local Ray); True when this call started it.
    Nodes get this process's kerashw (runtime_env py_modules), so every node trains with the
    same code; their Python packages (TensorFlow, Keras) must be installed there."""
    if ray.is_initialized():
        return False
    import kerashw

    env = {"py_modules": [str(Path(kerashw.__file__).parent)], "excludes": ["__pycache__"]} if address else None
    ray.init(address=address, include_dashboard=False, log_to_driver=False, runtime_env=env,
             configure_logging=False)
    return True


def run_study(specs, *, store: Store, studies=(), listener: Listener | None = None, force: bool = False,
              cancel=None, options: TrainOptions = TrainOptions(), ray_options: RayOptions = RayOptions()):
    """kerashw.training.train.run_study's counterpart on Ray: the same runs, ids and numbers."""
    ray = require_ray()
    listener = listener or Listener()
    specs = unique(identify_all(specs, options))  # a bad data folder fails here, before any task
    for spec in specs:
        tasks.get(spec.task).data_source(spec, options)  # MNIST must be a local file to travel
    started = connect(ray, ray_options.address)
    try:
        return Driver(store, studies, listener, options, ray_options, force, cancel).run(specs)
    finally:
        if started:
            ray.shutdown()
