"""kerashw audit: K folds of a labelled folder, cleanlab's ranking, --apply with a backup."""
import csv
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kerashw.captcha import kfold
from kerashw.captcha.constants import ALPHABET
from kerashw.config import DataError

PLANTED = {0: "AAAA", 7: "ZZZZ"}  # two wrong labels: image index -> the label planted on it


@pytest.fixture
def folder40(tmp_path, synth_folder):
    """40 labelled captchas (labels.csv) with two planted wrong labels; the true labels."""
    folder = tmp_path / "caps"
    folder.mkdir()
    with open(synth_folder / "labels.csv", newline="") as f:
        rows = list(csv.reader(f))[1:41]
    truth = {}
    for i, (name, label) in enumerate(rows):
        shutil.copyfile(synth_folder / name, folder / name)
        truth[name] = label
        if i in PLANTED:
            rows[i] = [name, PLANTED[i] if PLANTED[i] != label else "CCCC"]
    with open(folder / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["filename", "label"], *rows])
    return folder, truth


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_folds_test_each_image_once_and_never_train_on_it(tmp_path, folder40):
    folder, _ = folder40
    items = kfold.pool(str(folder))
    folders = kfold.write_folds(items, 5, seed=1, root=tmp_path / "folds")
    seen = []
    for f in folders:
        names = {s: [r[0] for r in list(csv.reader(open(f / s / "labels.csv")))[1:]] for s in ("train", "val", "test")}
        assert not set(names["test"]) & (set(names["train"]) | set(names["val"]))
        assert len(names["train"]) + len(names["val"]) + len(names["test"]) == 40
        seen += names["test"]
    assert sorted(seen) == sorted(str(it.path) for it in items)  # every image is tested exactly once
    before = [(f / "train" / "labels.csv").stat().st_mtime_ns for f in folders]
    assert kfold.write_folds(items, 5, seed=1, root=tmp_path / "folds") == folders
    assert [(f / "train" / "labels.csv").stat().st_mtime_ns for f in folders] == before  # same files: same run ids
    with pytest.raises(DataError, match="want 2 or more"):
        kfold.write_folds(items, 1, seed=1, root=tmp_path / "x")
    with pytest.raises(DataError, match="cannot make 30 folds"):
        kfold.write_folds(items, 30, seed=1, root=tmp_path / "x")


def test_cleanlab_ranks_the_planted_labels_first(tmp_path):
    """Out-of-sample probabilities as a good model gives them (right on the true label, with
    some doubt) for 400 captchas, two of them labelled wrong: cleanlab's confident learning
    ranks those two first, each suggestion the true character. (Made-up probabilities: the
    ranking is cleanlab's; the models that give them are the end-to-end test's.)"""
    pytest.importorskip("cleanlab", reason="kerashw[audit] extra")
    from kerashw.audit import Plan, suspects

    rng = np.random.default_rng(0)
    truth = ["".join(rng.choice(list(ALPHABET), 4)) for _ in range(400)]
    given = list(truth)
    given[3] = "AAAA" if truth[3][0] != "A" else "CCCC"
    given[250] = truth[250][:2] + ("7" if truth[250][2] != "7" else "9") + truth[250][3]
    items = [kfold.PoolItem(tmp_path / f"{i:03d}.png", g, None, "") for i, g in enumerate(given)]
    probs = np.full((400, 4, len(ALPHABET)), 0.01, dtype=np.float32)
    for i, label in enumerate(truth):
        for j, ch in enumerate(label):
            probs[i, j, ALPHABET.index(ch)] = rng.uniform(0.5, 0.95)
    probs /= probs.sum(axis=-1, keepdims=True)
    p = Plan(items, [], [list(range(0, 400, 2)), list(range(1, 400, 2))], tmp_path)
    rows = suspects(p, probs, "captcha")
    wrong = sum(a != b for i in (3, 250) for a, b in zip(truth[i], given[i]))
    top = rows[:wrong]
    assert {Path(r["file"]).name for r in top} == {"003.png", "250.png"}
    for r in top:
        i = int(Path(r["file"]).stem)
        assert r["given"] == given[i] and r["suggested"][r["position"] - 1] == truth[i][r["position"] - 1]
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert all(r["given"] != r["suggested"] for r in rows)
    assert {r["fold"] for r in rows} <= {1, 2}
    assert rows[0]["flagged"] == 1  # confident learning counts the worst one an error too


def test_apply_writes_the_accepted_rows_after_a_backup(folder40):
    folder, truth = folder40
    before = _digest(folder)
    original = (folder / "labels.csv").read_text()
    name = kfold.pool(str(folder))[0].path
    fixes = folder.parent / "accepted.csv"
    given = PLANTED[0] if PLANTED[0] != truth[name.name] else "CCCC"
    with open(fixes, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rank", "file", "given", "suggested", "position"])
        for pos in (1, 3):  # two positions of one image, one row each
            fixed = given[:pos - 1] + truth[name.name][pos - 1] + given[pos:]
            w.writerow([pos, str(name), given, fixed, pos])
    ((labels_csv, backup),) = kfold.apply_corrections(str(folder), fixes)
    assert backup.read_text() == original  # the user's labels as they were
    new = {r[0]: r[1] for r in list(csv.reader(open(labels_csv)))[1:]}
    want = truth[name.name][0] + given[1] + truth[name.name][2] + given[3]
    assert new[name.name] == want
    old = {r[0]: r[1] for r in list(csv.reader(open(backup)))[1:]}
    assert {k for k in new if new[k] != old[k]} == {name.name}
    changed = [a != b for a, b in zip(backup.read_bytes().splitlines(True), labels_csv.read_bytes().splitlines(True))]
    assert sum(changed) == 1  # every other line byte for byte (line ends included)
    after = _digest(folder)
    assert {k for k in after if after.get(k) != before.get(k)} == {"labels.csv", backup.name}
    # the CSV is now stale for that image: said, with the line, and nothing changes
    with pytest.raises(DataError, match=r"accepted.csv line 2: .* is labelled .* now"):
        kfold.apply_corrections(str(folder), fixes)
    assert _digest(folder) == after


@pytest.mark.slow
def test_audit_command_end_to_end_and_resumable(tmp_path, folder40, monkeypatch):
    pytest.importorskip("cleanlab", reason="kerashw[audit] extra")
    from kerashw.cli import main

    folder, _ = folder40
    monkeypatch.chdir(tmp_path)
    args = ["audit", "--data", str(folder), "--folds", "2", "--epochs", "1", "--batch", "8",
            "--store", str(tmp_path / "st"), "-o", str(tmp_path / "out")]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(tmp_path / "out" / "suspects.csv")))
    assert list(rows[0]) == ["rank", "file", "given", "suggested", "position", "confidence", "quality", "flagged",
                            "fold"]
    assert {Path(row["file"]).parent for row in rows} == {folder.resolve()}
    assert (tmp_path / "out" / "suspects.png").read_bytes()[:4] == b"\x89PNG"
    again = CliRunner().invoke(main, args)  # the fold runs are stored: a second audit trains nothing
    assert again.exit_code == 0 and "all finished before" in again.output
    bad = CliRunner().invoke(main, ["audit", "--data", str(folder), "--recipe", "captcha"])
    assert bad.exit_code != 0 and "a recipe is a one-run study" in bad.output


def test_audit_without_cleanlab_is_a_one_line_error_naming_the_extra(tmp_path, folder40, monkeypatch):
    import importlib.util

    from kerashw.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cleanlab" else real(name, *a))
    r = CliRunner().invoke(main, ["audit", "--data", str(folder40[0]), "--store", str(tmp_path / "st")])
    assert r.exit_code == 2 and 'pip install "kerashw[audit]"' in r.output
    assert not (tmp_path / "st").exists()  # refused before a store or a fold is made
