"""Ctrl-C and SIGTERM during training: a request to stop, honoured between steps."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


@contextmanager
def signals_request_stop(event: threading.Event, on_request=lambda: None):
    """Inside this block the first SIGINT or SIGTERM sets `event` (training stops at its next
    step, so no step, store write or backup is cut in half) and calls `on_request`; a second
    one raises KeyboardInterrupt as Python would (a user who presses Ctrl-C twice wants out
    now; every file is written atomically, so that is safe too). Outside the main thread (the
    TUI's worker) signals are not this code's to handle, and the block changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if event.is_set():
            raise KeyboardInterrupt
        event.set()
        on_request()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
