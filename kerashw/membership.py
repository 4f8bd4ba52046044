"""Which stored runs are a study's, for `results --study` and `report --study`; `kerashw list`
and the TUI's Studies tab count by the same rule (run ids of the study's specs, estimate.plan).

A study's runs are its specs with the overrides the user names (--data, --limit, --epochs,
--seed, ...), identified as training identifies them, looked up by run id. A run trained
under the study's name with other overrides (a --limit 300 try, another data folder) is not
one of them: it differs in more than the study's factor, so a table or report that put it
beside the others would credit that difference to the factor. Those runs are returned apart,
so a front end can say they exist and show them on request (--include-differing).
No TensorFlow.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from kerashw.config import Overrides, RunSpec, TrainOptions
from kerashw.identity import identify_for_display
from kerashw.store import RunRow

# Spec fields a table or report compares; the fingerprint (data_id) goes with `data`.
COMPARED = ("task", "model", "activation", "optimizer", "lr", "batch_size", "epochs", "limit", "preprocess",
            "data", "seed", "augment", "init", "weight_decay", "schedule", "warmup", "label_smoothing", "split",
            "skip_bad", "extra", "precision", "arcs", "init_from", "min_steps", "towers")


@dataclass
class Members:
    runs: list[RunRow]  # the study's runs (with the overrides), in the study's order; stored ones only
    specs: list[RunSpec]  # what its runs are (stored or not)
    missing: int  # of the study's runs, how many the store has not got yet
    differing: list[RunRow] = field(default_factory=list)  # trained under its name with other settings

    def rows(self, include_differing: bool = False) -> list[RunRow]:
        return self.runs + (self.differing if include_differing else [])


def members(store, study, overrides: Overrides | None = None, options: TrainOptions = TrainOptions()) -> Members:
    specs = identify_for_display(study.specs(overrides), options)
    ids = list(dict.fromkeys(s.run_id for s in specs))
    stored = {r.id: r for r in store.runs(ids=ids)} if ids else {}
    runs = [stored[i] for i in ids if i in stored]
    own = set(ids)
    differing = [r for r in store.runs(study=study.name) if r.id not in own]
    return Members(runs, specs, len(ids) - len(runs), differing)


def settings(rows: list[RunRow]) -> tuple[dict, list[str]]:
    """({field: value} every row shares, [fields whose value differs between rows])."""
    return _compare([RunSpec.from_dict(r.spec).to_dict() for r in rows])


def _compare(specs: list[dict]) -> tuple[dict, list[str]]:
    shared, varying = {}, []
    for key in COMPARED:
        if len({json.dumps(s.get(key)) for s in specs}) == 1:
            shared[key] = specs[0].get(key) if specs else None
        else:
            varying.append(key)
    return shared, varying


def describe_differing(m: Members, study_name: str) -> str | None:
    """One line about the runs left out, naming the settings in which they differ from the
    study's runs (beyond what varies within the study); None when there are none."""
    if not m.differing:
        return None
    expected = [s.to_dict() for s in m.specs]
    within = set(_compare(expected)[1])
    how = [k for k in _compare(expected + [RunSpec.from_dict(r.spec).to_dict() for r in m.differing])[1]
           if k not in within]
    return (f"{len(m.differing)} other run(s) trained as {study_name!r} differ in "
            f"{', '.join(how) if how else 'their data content'} from its runs with these settings: left out "
            "(--include-differing shows them, with a column for each difference)")
