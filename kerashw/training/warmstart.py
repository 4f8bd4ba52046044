"""Fine-tuning: a run that starts from another finished run's weights (RunSpec.init_from).

The weights are copied layer by layer, matched by name (the builders name every layer), so
a shape that differs is named: the layer, both shapes, and what would make them agree.
The optimizer starts fresh: its state belongs to the other run's schedule.
"""
from __future__ import annotations

from kerashw.config import DataError, RunSpec


class InitFromError(DataError):
    """The run to start from is missing, unfinished, or has other shapes."""


def source_model_file(spec: RunSpec, store):
    """The finished model file of spec.init_from in this store; InitFromError says why not."""
    row = store.get(spec.init_from)
    hint = f"train it first (kerashw results --store {store.path} lists what the store has)"
    if row is None:
        raise InitFromError(f"--init-from {spec.init_from}: no such run in {store.path}; {hint}")
    if row.status != "finished":
        raise InitFromError(f"--init-from {spec.init_from}: the run is {row.status}, not finished; {hint}")
    if row.spec.get("model") != spec.model:
        raise InitFromError(f"--init-from {spec.init_from}: that run trained model {row.spec.get('model')!r}, "
                            f"this run is {spec.model!r}; fine-tune the same model (--model "
                            f"{row.spec.get('model')})")
    model_file = store.files(row.id).model
    if not model_file.exists():
        raise InitFromError(f"--init-from {spec.init_from}: its saved model {model_file} is missing "
                            "(the run folder was moved or deleted)")
    return model_file


def copy_weights(source, target, where: str) -> int:
    """Every weighted layer of `target` takes the same-named layer's weights of `source`;
    the count of layers copied. A missing layer or another shape raises InitFromError."""
    by_name = {layer.name: layer for layer in source.layers}
    copied = 0
    for layer in target.layers:
        here = layer.get_weights()
        if not here:
            continue
        if layer.name not in by_name:
            raise InitFromError(f"{where}: this model's layer {layer.name!r} is not in that run's model")
        there = by_name[layer.name].get_weights()
        shapes = [tuple(w.shape) for w in there], [tuple(w.shape) for w in here]
        if shapes[0] != shapes[1]:
            raise InitFromError(f"{where}: layer {layer.name!r} has weights of shapes {shapes[0]} there and "
                                f"{shapes[1]} here (another input size or preprocess variant: the run must "
                                "have the same input and classes as the one it starts from)")
        layer.set_weights(there)
        copied += 1
    return copied


def warm_start(spec: RunSpec, store, model) -> str:
    """Load spec.init_from's final weights into `model`; a line saying what was loaded."""

    model_file = source_model_file(spec, store)
    from kerashw.models import load_model
    source = load_model(model_file)
    if tuple(source.input_shape[1:]) != tuple(model.input_shape[1:]):
        raise InitFromError(f"--init-from {spec.init_from}: that run's model takes input "
                            f"{tuple(source.input_shape[1:])}, this run's {tuple(model.input_shape[1:])} "
                            "(another preprocess variant); use the same --preprocess")
    n = copy_weights(source, model, f"--init-from {spec.init_from}")
    return f"starting from run {spec.init_from}'s final weights ({n} layers)"
