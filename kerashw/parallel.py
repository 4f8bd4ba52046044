"""Process-pool map with progress, for the once-per-image OpenCV and Pillow work."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import types
from contextlib import contextmanager


def workers() -> int:
    return max(1, min(os.cpu_count() or 1, int(os.environ.get("KERASHW_WORKERS", "64"))))


def map_progress(fn, jobs, *, total: int, description: str, progress=None, weight=lambda r: 1):
    """Run fn over jobs on all cores, in order; progress(done, total, description) after each.

    'spawn' rather than fork: the parent may already hold TensorFlow's threads,
    and forking those can deadlock. fn must live in a kerashw module (children import
    it by name, never the parent's __main__).
    """
    jobs = list(jobs)
    results, done = [], 0
    if progress:
        progress(0, total, description)
    if workers() == 1 or len(jobs) == 1:
        mapped = map(fn, jobs)
        pool = None
    else:
        _start_resource_tracker()
        with _children_skip_main():
            pool = mp.get_context("spawn").Pool(workers(), initializer=_child_init)
        mapped = pool.imap(fn, jobs)
    try:
        for r in mapped:
            results.append(r)
            done += weight(r)
            if progress:
                progress(done, total, description)
    except BaseException:
        # Ctrl-C, SIGTERM or a failed job: close() + join() would wait for every queued job
        # (or forever, for a child that died); the rest of the work is not wanted.
        if pool is not None:
            pool.terminate()
            pool.join()
            pool = None
        raise
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return results


def _child_init() -> None:
    """A child leaves Ctrl-C to the parent: the terminal sends SIGINT to the whole process
    group, and a child's traceback per core would bury the parent's one line."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def _children_skip_main():
    """A spawned child normally re-imports the parent's __main__ first. For the console
    script `kerashw-tui` that is the whole TUI, and importing textual_image writes a
    terminal query whose answer reaches the running app as key presses (Cancel, tab keys).
    While the pool starts, __main__ is a bare module with no file, so children import only
    what the jobs name."""
    real = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = real


def _start_resource_tracker() -> None:
    """multiprocessing's resource tracker hands sys.stderr's file descriptor to its
    process. Under a UI that captures stderr (Textual's stand-in has fileno() == -1)
    that fails with "bad value(s) in fds_to_keep"; start it with the real stderr."""
    try:
        usable = sys.stderr.fileno() >= 0
    except (AttributeError, OSError, ValueError):
        usable = False
    if usable:
        return
    from multiprocessing import resource_tracker

    captured, sys.stderr = sys.stderr, sys.__stderr__
    try:
        resource_tracker.ensure_running()
    finally:
        sys.stderr = captured
