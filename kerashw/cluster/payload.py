"""What travels between the local process and a Ray node, as bytes: a run's data (an MNIST
file, a captcha folder) and a run's folder (model, best weights, backup, metrics). Tar,
uncompressed: JPEGs and HDF5 weights barely compress, and packing must be quick."""
from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from kerashw import atomic


def pack_folder(folder, skip: tuple = ()) -> bytes:
    """Every file under `folder` (names relative to it), but those under a top-level `skip`
    name and half-written ones (atomic's .partial- files)."""
    folder = Path(folder)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if path.is_file() and rel.parts[0] not in skip and not path.name.startswith(".partial-"):
                tar.add(path, arcname=str(rel), recursive=False)
    return buf.getvalue()


def unpack(blob: bytes, into) -> list[Path]:
    """The files of `blob` written under `into`, each atomically (a reader never sees half a
    file, and a file it replaces stays whole until then); the paths written. Names that
    would leave `into` are refused (tarfile's "data" filter)."""
    into = Path(into)
    written = []
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            target = (into / member.name).resolve()
            if into.resolve() not in target.parents:
                raise ValueError(f"refusing {member.name!r}: it would be written outside {into}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic.replacing(target) as tmp:
                tmp.write_bytes(tar.extractfile(member).read())
            written.append(target)
    return written


def mirror(blob: bytes, into, under: str) -> None:
    """Unpack `blob` into `into`, then remove the files under `into/under` that `blob` does
    not have (the backup of an older epoch, once the newer one is whole)."""
    kept = set(unpack(blob, into))
    folder = Path(into) / under
    if folder.is_dir():
        for path in folder.rglob("*"):
            if path.is_file() and path.resolve() not in kept:
                path.unlink(missing_ok=True)


def pack_data(source: Path) -> tuple[str, bytes]:
    """(name, bytes) of a data file, or of a folder as tar ("name/" ends a folder's name)."""
    if source.is_dir():
        return source.name + "/", pack_folder(source)
    return source.name, source.read_bytes()


def unpack_data(packed: tuple[str, bytes], into) -> Path:
    """Where a node's copy of the data is, under `into`."""
    name, blob = packed
    into = Path(into)
    if name.endswith("/"):
        folder = into / name.rstrip("/")
        folder.mkdir(parents=True, exist_ok=True)
        unpack(blob, folder)
        return folder
    into.mkdir(parents=True, exist_ok=True)
    path = into / os.path.basename(name)
    path.write_bytes(blob)
    return path
