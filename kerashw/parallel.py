"""Process-pool map with progress, for the once-per-image OpenCV and Pillow work."""
from __future__ import annotations

import multiprocessing as mp
import os
import sys


def workers() -> int:
    return max(1, min(os.cpu_count() or 1, int(os.environ.get("KERASHW_WORKERS", "64"))))


def map_progress(fn, jobs, *, total: int, description: str, progress=None, weight=lambda r: 1):
    """Run fn over jobs on all cores, in order; progress(done, total, description) after each.

    'spawn' rather than fork: the parent may already hold TensorFlow's threads,
    and forking those can deadlock.
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
        pool = mp.get_context("spawn").Pool(workers())
        mapped = pool.imap(fn, jobs)
    try:
        for r in mapped:
            results.append(r)
            done += weight(r)
            if progress:
                progress(done, total, description)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return results


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
