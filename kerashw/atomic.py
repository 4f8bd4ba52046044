"""Files that are either the old version or the new one, never half of either."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path):
    """A temporary path beside `path` to write to; when the block ends without an error it
    replaces `path` in one rename (atomic on POSIX), and otherwise it is removed and `path`
    is as it was. A signal, a crash or a full disk mid-write never leaves a cut file. The
    temporary name keeps `path`'s ending (Keras checks for .weights.h5 and .keras)."""
    path = Path(path)
    tmp = path.with_name(f".partial-{os.getpid()}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text)


def unwritable(path) -> Path | None:
    """The nearest existing folder on the way to `path` when this process cannot write into it
    (so `path` cannot be made there), else None: checked before minutes of work, not after."""
    path = Path(path)
    parent = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    return None if os.access(parent, os.W_OK | os.X_OK) else parent
