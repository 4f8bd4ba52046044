"""TensorFlow's C++ code writes notes and warnings straight to file descriptor 2,
past Python's sys.stderr. Front ends that must keep them off the screen point fd 2
elsewhere for a while; this is the one place that does it. No TensorFlow here."""
from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def fd2_to(fileno: int):
    """Point file descriptor 2 at `fileno` for the block; yields a duplicate of the
    original fd 2 (the terminal), valid inside the block."""
    sys.stderr.flush()
    original = os.dup(2)
    os.dup2(fileno, 2)
    try:
        yield original
    finally:
        os.dup2(original, 2)
        os.close(original)
