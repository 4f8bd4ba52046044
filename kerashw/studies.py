"""Every named study (`--exp`), from each homework part's package. No TensorFlow here, so
`kerashw list` and the TUI's study list are instant."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from kerashw import studyfile
from kerashw.captcha import studies as captcha_studies
from kerashw.config import RunSpec
from kerashw.mnist import studies as mnist_studies
from kerashw.study import Study

STUDIES: dict[str, Study] = {**mnist_studies.STUDIES, **captcha_studies.STUDIES}


def is_file(name: str) -> bool:
    """A --study value that names a TOML file rather than a study."""
    return name.endswith(".toml") or "/" in name or os.sep in name


def available(home=None) -> tuple[dict[str, Study], list[str]]:
    """The built-in studies, then HOME/studies/*.toml (a store's own), and a line for each
    file that could not be read (the list shows it rather than hiding the file)."""
    if home is None:
        return dict(STUDIES), []
    found, problems = studyfile.folder_studies(home, STUDIES)
    return {**STUDIES, **found}, problems


def get_study(name: str, home=None) -> Study:
    """A built-in study, a study file (a path ending in .toml), or one of HOME/studies/."""
    if is_file(name):
        return studyfile.load(name, STUDIES)
    studies, _ = available(home)
    try:
        return studies[name]
    except KeyError:
        where = f", or a file in {Path(home) / 'studies'}" if home is not None else ""
        raise ValueError(f"Unknown study {name!r}. Known: {sorted(studies)} (or a path to a .toml study "
                         f"file{where})") from None


def studies_of(spec: RunSpec) -> list[str]:
    """Every named study whose preset includes this spec (by resolved identity, ignoring
    the overrides a user applies to all runs alike)."""
    core = lambda s: dataclasses.replace(s.resolved(), epochs=1, limit=None, seed=0, data=None, data_id=None)
    target = core(spec)
    return [name for name, st in STUDIES.items() if any(core(s) == target for s in st.make())]
