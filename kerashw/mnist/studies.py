"""The MNIST homework's studies (HW2-1): each varies one factor of the report's baseline."""
from __future__ import annotations

from kerashw.mnist.constants import NAME
from kerashw.study import Study, vary

FACTORS = {
    "model": ("NN vs CNN", "model", ("nn", "cnn")),
    "activation": ("hidden activation: ReLU vs Softmax vs Sigmoid", "activation",
                   ("relu", "softmax", "sigmoid")),
    "optimizer": ("Adam vs SGD", "optimizer", ("adam", "sgd")),
    "lr": ("learning rate 0.05 vs 0.01 vs 0.25", "lr", (0.05, 0.01, 0.25)),
    "batch": ("batch size 64 vs 4 vs 1024", "batch_size", (64, 4, 1024)),
}

STUDIES: dict[str, Study] = {
    name: Study(name, f"MNIST: {desc}", factor, vary(NAME, factor, values))
    for name, (desc, factor, values) in FACTORS.items()
}
STUDIES["all"] = Study(
    "all", "MNIST: every study above (the shared baseline runs once)", "",
    lambda: [s for name in FACTORS for s in STUDIES[name].make()],
)
