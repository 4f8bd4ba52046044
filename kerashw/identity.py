"""A run's identity covers its data's content, not just its path.

`identify(spec, options)` fills `RunSpec.data_id` with a fingerprint of what the run
would train on (the run's task says how: the MNIST arrays from whichever file the lookup
finds, or a captcha folder's labels and image bytes). The run id then changes when the
data changes (an edited labels.csv, another MNIST file) and stays when the same data sits
elsewhere. Fingerprints are cached by file size and modification time, so this is fast
after the first time. No TensorFlow.
"""
from __future__ import annotations

import dataclasses

from kerashw import tasks
from kerashw.config import DataError, RunSpec, TrainOptions


def identify(spec: RunSpec, options: TrainOptions = TrainOptions(), *, fetch: bool = True) -> RunSpec:
    """The resolved spec with its data's fingerprint (where the task names the data
    otherwise, as is). Raises DataError for unreadable data, and without `fetch` for data
    that would first have to be downloaded."""
    spec = spec.resolved()
    data_id = tasks.get(spec.task).fingerprint(spec, options, fetch=fetch)
    return spec if data_id is None else dataclasses.replace(spec, data_id=data_id)


def identify_all(specs, options: TrainOptions = TrainOptions()) -> list[RunSpec]:
    return [identify(s, options) for s in specs]


def identify_for_display(specs, options: TrainOptions = TrainOptions(), problems: list | None = None) -> list[RunSpec]:
    """For lists and estimates: identified where the data can be read, else as they are
    (starting the run says what is wrong). Each unreadable spec's reason goes to `problems`
    when given, so a front end can say "done: unknown" rather than "0 done"."""
    out = []
    for s in specs:
        try:
            out.append(identify(s, options, fetch=False))
        except (DataError, OSError) as exc:
            out.append(s.resolved())
            if problems is not None:
                problems.append(str(exc))
    return out
