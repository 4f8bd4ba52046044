"""Process-pool map with progress, for the once-per-image OpenCV and Pillow work."""
from __future__ import annotations

import multiprocessing as mp
import os


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
