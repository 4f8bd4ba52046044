"""`kerashw audit`: which labels of a folder are wrong, from out-of-sample predictions.

Every image is predicted by a model that never trained on it: the folder's labelled images are
cut into K folds and each fold is the test split of one ordinary run of the chosen recipe
(stored, resumable, reused by a second audit). cleanlab then ranks suspected (image, position)
errors with its token-classification method, the four positions of a captcha being the tokens
of a sentence (cleanlab.token_classification: Wang & Mueller, 2022).
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerashw import atomic, tasks
from kerashw.config import RunSpec, TrainOptions
from kerashw.identity import identify_all

CSV_COLUMNS = ("rank", "file", "given", "suggested", "position", "confidence", "quality", "flagged", "fold")


class MissingCleanlab(RuntimeError):
    """cleanlab (the audit extra) is not installed."""


def check_cleanlab() -> None:
    import importlib.util

    if importlib.util.find_spec("cleanlab") is None:
        raise MissingCleanlab('kerashw audit needs cleanlab: pip install "kerashw[audit]"')


@dataclass(frozen=True)
class Plan:
    """An audit's folds as runs: the pool of labelled images and one spec per fold."""

    items: list  # the task's pool items (path, label, ...), in a fixed order
    specs: list[RunSpec]  # fold f's run trains on the other folds and tests on fold f
    tests: list[list[int]]  # pool indices of each fold's test split, in its order
    root: Path  # where the fold folders are


def plan(recipe: RunSpec, data: str, store, k: int = 5, seed: int = 42,
         options: TrainOptions = TrainOptions()) -> Plan:
    """Write the fold folders (under the store, named by the pool's content) and their specs."""
    helpers = tasks.get(recipe.task).folds()
    items = helpers.pool(data)
    key = hashlib.sha256("\n".join(f"{it.path}|{it.label}" for it in items).encode()).hexdigest()[:12]
    root = store.home / "audit" / f"{key}-k{k}-seed{seed}"
    folders = helpers.write_folds(items, k, seed, root)
    specs = identify_all([dataclasses.replace(recipe, data=str(f), seed=seed, limit=None, split=None,
                                              extra=False) for f in folders], options)
    return Plan(items, specs, helpers.fold_test_items(items, k, seed), root)


def out_of_sample(p: Plan, store, options: TrainOptions = TrainOptions()) -> np.ndarray:
    """[n, positions, classes] probabilities, each image's from the fold run that never saw it."""
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # one predict function per fold's model is not a retracing problem
    task = tasks.get(p.specs[0].task)
    probs = None
    for spec, idx in zip(p.specs, p.tests):
        row = store.get(spec.run_id)
        if row is None or row.status != "finished":
            raise RuntimeError(f"fold run {spec.run_id} is {row.status if row else 'not stored'}; "
                               "run the audit again to finish it")
        from kerashw.models import load_model
        model = load_model(store.files(spec.run_id).model)
        split = task.split(spec, options, "test")
        if len(split) != len(idx):
            raise RuntimeError(f"fold run {spec.run_id}: its test split has {len(split)} images, the fold "
                               f"{len(idx)} (an unreadable image was skipped?)")
        out = model.predict(split.x.astype("float32") / 255.0, batch_size=128, verbose=0)
        heads = np.stack([np.asarray(out[h]) for h in task.outputs], axis=1)
        if probs is None:
            probs = np.zeros((len(p.items), *heads.shape[1:]), dtype=np.float32)
        probs[idx] = heads
    return probs


def suspects(p: Plan, probs: np.ndarray, task_name: str) -> list[dict]:
    """Suspected label errors, most likely wrong first: one row per (image, position)."""
    from cleanlab.token_classification.filter import find_label_issues
    from cleanlab.token_classification.rank import get_label_quality_scores

    helpers = tasks.get(task_name).folds()
    given = helpers.labels_of(p.items)
    labels, pred = [list(map(int, g)) for g in given], [probs[i] for i in range(len(given))]
    # every position the model reads otherwise (cleanlab's predicted_neq_given), ranked by
    # cleanlab's label quality; `flagged` marks the ones confident learning (cleanlab's default,
    # stricter: it estimates how many labels of each class are wrong) counts as errors
    # n_jobs=1: cleanlab's default forks a process pool, and a fork of this process (which
    # holds TensorFlow's threads) can deadlock; the suite's CI hung on it for its whole budget.
    # The counting is cheap next to the K trainings.
    issues = find_label_issues(labels, pred, filter_by="predicted_neq_given", n_jobs=1)
    confident = set(find_label_issues(labels, pred, n_jobs=1))
    _, token_scores = get_label_quality_scores(labels, pred)
    fold = np.empty(len(p.items), dtype=int)
    for f, idx in enumerate(p.tests):
        fold[idx] = f + 1
    rows = []
    for i, j in issues:
        guess = given[i].copy()
        guess[j] = int(np.argmax(probs[i, j]))
        if guess[j] == given[i][j]:
            continue  # flagged as unsure, but the model reads what the label says: nothing to correct
        rows.append({"file": str(p.items[i].path), "given": p.items[i].label, "suggested": helpers.text(guess),
                     "position": j + 1, "confidence": float(probs[i, j, guess[j]]),
                     "quality": float(np.asarray(token_scores[i])[j]), "flagged": int((i, j) in confident),
                     "fold": int(fold[i])})
    rows.sort(key=lambda r: r["quality"])
    for rank, r in enumerate(rows, start=1):
        r["rank"] = rank
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    import io

    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "confidence": f"{r['confidence']:.4f}", "quality": f"{r['quality']:.4f}"})
    atomic.write_text(path, out.getvalue())


def gallery(rows: list[dict], path: Path, limit: int = 48) -> None:
    """The suspects as a picture, most likely wrong first: each image, given -> suggested."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kerashw.images import read_bgr

    shown = rows[:limit]
    cols = 4
    lines = max(1, -(-len(shown) // cols))
    fig, axes = plt.subplots(lines, cols, figsize=(cols * 3.0, lines * 1.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, r in zip(axes.flat, shown):
        ax.imshow(read_bgr(Path(r["file"]))[:, :, ::-1])
        ax.set_title(f"#{r['rank']} {r['given']} -> {r['suggested']} (pos {r['position']}, "
                     f"p={r['confidence']:.2f})", fontsize=7)
    fig.tight_layout()
    with atomic.replacing(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
