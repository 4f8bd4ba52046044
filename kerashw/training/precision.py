"""Which Keras dtype policy a run's `precision` means on this machine, and the check
that the hardware has a fast path for it.

`mixed` is `mixed_float16` on a GPU and `mixed_bfloat16` on a CPU with bf16
instructions (AVX-512 BF16 or AMX): there the convolutions run in 16 bits through
oneDNN; elsewhere bfloat16 is emulated and slower than float32, so it is refused.
Weights stay float32 and the softmax heads compute in float32 (kerashw.blocks).
Reading /proc/cpuinfo needs no TensorFlow; the GPU question imports it.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

from kerashw.config import RunSpec

BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # the CPU flags oneDNN's bf16 kernels use


class UnsupportedError(ValueError):
    """Asked for what this machine cannot do fast; the message says what would work."""


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()  # not Linux: no flags known, so no bf16 claimed
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def policy_name(precision: str, *, gpu: bool | None = None, flags: set[str] | None = None) -> str:
    """The Keras policy for `precision` here; UnsupportedError if mixed has no fast path."""
    if precision == "float32":
        return "float32"
    if gpu if gpu is not None else has_gpu():
        return "mixed_float16"
    flags = cpu_flags() if flags is None else flags
    if any(f in flags for f in BF16_FLAGS):
        return "mixed_bfloat16"
    raise UnsupportedError(
        "--precision mixed needs a GPU (float16) or a CPU with bfloat16 instructions "
        f"({' or '.join(BF16_FLAGS)} in /proc/cpuinfo); this machine has neither, and "
        "emulated bfloat16 is slower than float32. Use --precision float32 (the default).")


def check(specs) -> None:
    """Fail before anything trains if any run asks for a precision this machine lacks."""
    for precision in {s.precision for s in specs}:
        policy_name(precision)


@contextlib.contextmanager
def building(spec: RunSpec):
    """Layers built inside take the run's dtype policy; the global policy is restored
    after, so the next run in this process starts from float32."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy_name(spec.precision))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
