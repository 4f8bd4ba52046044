"""Every named study (`--exp`), from each homework part's package. No TensorFlow here, so
`kerashw list` and the TUI's study list are instant."""
from __future__ import annotations

import dataclasses

from kerashw.captcha import studies as captcha_studies
from kerashw.config import RunSpec
from kerashw.mnist import studies as mnist_studies
from kerashw.study import Study

STUDIES: dict[str, Study] = {**mnist_studies.STUDIES, **captcha_studies.STUDIES}


def get_study(name: str) -> Study:
    try:
        return STUDIES[name]
    except KeyError:
        raise ValueError(f"Unknown study {name!r}. Known: {sorted(STUDIES)}") from None


def studies_of(spec: RunSpec) -> list[str]:
    """Every named study whose preset includes this spec (by resolved identity, ignoring
    the overrides a user applies to all runs alike)."""
    core = lambda s: dataclasses.replace(s.resolved(), epochs=1, limit=None, seed=0, data=None, data_id=None)
    target = core(spec)
    return [name for name, st in STUDIES.items() if any(core(s) == target for s in st.make())]
