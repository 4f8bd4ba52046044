"""Studies from TOML files (`kerashw train --study my.toml`, or STORE/studies/*.toml): a name,
a description, a base (a built-in study, or the baseline of the model's part), fields set on it
and a grid whose product is the study. The runs are the RunSpecs the CLI would make from the
same settings, so they get the same ids. stdlib tomllib; no TensorFlow.

    name = "tiny-seeds"
    description = "captcha-tiny, five seeds, on my folder"
    base = "captcha-tiny"
    [spec]
    data = "captchas"          # relative to this file's folder
    [grid]
    seed = [1, 2, 3, 4, 5]
"""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

from kerashw.config import MODEL_TASK, DataError, RunSpec, baseline
from kerashw.study import Study

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as a package
    import tomli as tomllib  # type: ignore[no-redef]

KEYS = ("name", "description", "base", "spec", "grid")
# what a file may set: every RunSpec field but the data fingerprint (identify fills it in)
FIELDS = tuple(f.name for f in dataclasses.fields(RunSpec) if f.name != "data_id")
OPTIONAL = {"limit", "preprocess", "data", "split", "init_from"}  # may be absent (None)


def _check_type(where: str, name: str, value):
    """The value as the field wants it; a DataError naming the key and the type otherwise."""
    default = next(f.default for f in dataclasses.fields(RunSpec) if f.name == name)
    if name == "split":
        if not (isinstance(value, list) and len(value) == 3 and all(type(v) is int for v in value)):
            raise DataError(f"{where}: split = {value!r}; want three whole numbers [train, val, test]")
        return tuple(value)
    if name in OPTIONAL:
        want = int if name == "limit" else str
    else:
        want = type(default)
    ok = isinstance(value, want) and not (want in (int, float) and isinstance(value, bool))
    if want is float and type(value) is int:
        return float(value)
    if not ok:
        raise DataError(f"{where}: {name} = {value!r}; want {'true or false' if want is bool else want.__name__}")
    return value


def load(path, builtins: dict[str, Study]) -> Study:
    """The study a TOML file describes (`builtins`: the studies a base may name); DataError
    names the file, the key and what is accepted."""
    STUDIES = builtins
    path = Path(path).expanduser()
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: no such study file") from None
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - set(KEYS))
    if unknown:
        raise DataError(f"{path}: unknown key {unknown[0]!r}; a study file has {', '.join(KEYS)}")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"{path}: name = {name!r}; want the study's name, a non-empty string")
    if name in STUDIES:
        raise DataError(f"{path}: name {name!r} is a built-in study; give yours another name "
                        "(base = \"" + name + "\" starts from it)")
    description = doc.get("description", f"from {path.name}")
    if not isinstance(description, str):
        raise DataError(f"{path}: description = {description!r}; want a string")
    fields, grid = doc.get("spec", {}), doc.get("grid", {})
    for key, table in (("spec", fields), ("grid", grid)):
        if not isinstance(table, dict):
            raise DataError(f"{path}: {key} must be a table ([{key}]), got {table!r}")
        for field in table:
            if field not in FIELDS:
                raise DataError(f"{path}: {key}.{field}: not a run setting; accepted: {', '.join(FIELDS)}")
    fields = {k: _check_type(f"{path}: spec", k, v) for k, v in fields.items()}
    axes = {}
    for field, values in grid.items():
        if not isinstance(values, list) or not values:
            raise DataError(f"{path}: grid.{field} = {values!r}; want a non-empty list of values")
        axes[field] = [_check_type(f"{path}: grid.{field}", field, v) for v in values]
    for table in (fields, axes):  # a relative folder is relative to the file, wherever it is run from
        if "data" in table:
            fix = lambda d: str((path.parent / Path(d).expanduser()).resolve())
            table["data"] = fix(table["data"]) if table is fields else [fix(d) for d in table["data"]]
    bases = _bases(path, doc.get("base"), fields, STUDIES)
    specs = []
    for combo in itertools.product(*axes.values()) if axes else [()]:
        change = {**fields, **dict(zip(axes, combo))}
        for base in bases:
            try:
                specs.append(dataclasses.replace(base, **change).resolved())
            except (ValueError, TypeError) as exc:
                where = ", ".join(f"{k} = {v!r}" for k, v in zip(axes, combo))
                raise DataError(f"{path}: {'the run with ' + where if where else 'spec'}: {exc}") from None
    factor = next(iter(axes)) if len(axes) == 1 else ""
    return Study(name, description, factor, lambda: list(specs))


def _bases(path: Path, base, fields: dict, studies: dict) -> list[RunSpec]:
    """The runs the file's settings apply to: a built-in study's, or one baseline."""
    if base is not None:
        if base not in studies:
            raise DataError(f"{path}: base = {base!r}; want a built-in study: {', '.join(studies)}")
        return studies[base].make()
    model = fields.get("model")
    task = fields.get("task") or (MODEL_TASK.get(model) if model else None) or RunSpec().task
    start = baseline(task)
    return [dataclasses.replace(start, model=model) if model else start]


def folder_studies(home, builtins: dict[str, Study]) -> tuple[dict[str, Study], list[str]]:
    """HOME/studies/*.toml as studies, and a line per file that could not be read."""
    found, problems = {}, []
    folder = Path(home) / "studies"
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        try:
            study = load(path, builtins)
        except DataError as exc:
            problems.append(str(exc))
            continue
        if study.name in found:
            problems.append(f"{path}: name {study.name!r} is also another file's in {folder}; skipped")
            continue
        found[study.name] = study
    return found, problems
