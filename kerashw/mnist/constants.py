"""The MNIST part's facts, in one place: every other module reads these."""
from __future__ import annotations

NAME = "mnist"  # the task's name in specs, run ids and the store
CLASSES = "0123456789"  # output index -> digit
INPUT_SHAPE = (28, 28)
N_TRAIN, N_VAL = 48_000, 6_000  # the report's split of the 60,000 training digits
