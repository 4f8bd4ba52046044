"""A run's identity covers its data's content, not just its path.

`identify(spec, options)` fills `RunSpec.data_id` with a fingerprint of what the run
would train on: the MNIST arrays (from whichever file the lookup finds), or a captcha
folder's labels and image bytes. The run id then changes when the data changes (an
edited labels.csv, another MNIST file) and stays when the same data sits elsewhere.
Fingerprints are cached by file size and modification time, so this is fast after the
first time. No TensorFlow; each task's fingerprint lives in its light module.
"""
from __future__ import annotations

import dataclasses
import importlib

from kerashw.config import DataError, RunSpec, TrainOptions

FINGERPRINTS = {"mnist": "kerashw.mnist.source", "captcha": "kerashw.captcha.folders"}


def identify(spec: RunSpec, options: TrainOptions = TrainOptions(), *, fetch: bool = True) -> RunSpec:
    """The resolved spec with its data's fingerprint (the synthetic captcha default is
    named by its generator version instead). Raises DataError for unreadable data, and
    without `fetch` for data that would first have to be downloaded."""
    spec = spec.resolved()
    if spec.task == "captcha" and spec.data is None:
        return spec
    module = importlib.import_module(FINGERPRINTS[spec.task])
    return dataclasses.replace(spec, data_id=module.fingerprint(spec, options, fetch=fetch))


def identify_all(specs, options: TrainOptions = TrainOptions()) -> list[RunSpec]:
    return [identify(s, options) for s in specs]


def identify_for_display(specs, options: TrainOptions = TrainOptions()) -> list[RunSpec]:
    """For lists and estimates: identified where the data can be read, else as they are
    (a missing folder shows as not finished; starting the run says what is wrong)."""
    out = []
    for s in specs:
        try:
            out.append(identify(s, options, fetch=False))
        except (DataError, OSError):
            out.append(s.resolved())
    return out
