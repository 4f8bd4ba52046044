"""The report's figures as PNG files: curves, confusion heatmaps, galleries of mistakes.

Pure drawing: numbers and arrays in, a PNG of a fixed pixel size out (matplotlib's
headless Agg backend; no display needed). What to draw is kerashw.reports.writeup's job.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

DPI = 100
CURVES_SIZE = (9.0, 5.0)  # inches: 900 x 500 px
CONFUSION_SIZE = (12.0, 3.6)  # 1200 x 360 px: four 19x19 maps in a row
GALLERY_COLS = 4
HEADER = 0.8  # inches above a gallery's first row: the title, then the first captions


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # headless: files only
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)  # no tight bbox: the size stays what the module says
    _plt().close(fig)
    return path


def curves(path: Path, series: dict[str, dict[str, list[tuple[int, float]]]], *, ylabel: str,
           title: str, percent: bool = False) -> Path:
    """One line per run and phase: val solid, train dashed, the same colour per run.
    series = {run label: {"train": [(epoch, value)], "val": [...]}}."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=CURVES_SIZE)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, phases) in enumerate(series.items()):
        colour = colours[i % len(colours)]
        for phase, style in (("val", "-"), ("train", "--")):
            points = phases.get(phase) or []
            if points:
                xs, ys = zip(*points)
                ys = [100 * y for y in ys] if percent else list(ys)
                ax.plot(xs, ys, style, color=colour, marker="o" if len(xs) < 15 else None, markersize=3,
                        label=f"{label} ({phase})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", ncol=2 if len(series) > 3 else 1)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.92, bottom=0.1)
    return _save(fig, path)


def confusion(path: Path, matrices: dict[str, list[list[int]]], labels: str, title: str) -> Path:
    """Per-position confusion heatmaps [true][predicted], log-scaled counts so the
    off-diagonal mistakes show next to a diagonal of hundreds."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(matrices), figsize=CONFUSION_SIZE)
    axes = np.atleast_1d(axes)
    for ax, (name, m) in zip(axes, matrices.items()):
        m = np.asarray(m, dtype=float)
        ax.imshow(np.log1p(m), cmap="viridis")
        right = np.trace(m) / max(1.0, m.sum())
        ax.set_title(f"{name}: {100 * right:.1f} %", fontsize=9)
        ticks = range(len(labels))
        ax.set_xticks(ticks, list(labels), fontsize=5)
        ax.set_yticks(ticks, list(labels), fontsize=5)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.04, right=0.99, top=0.82, bottom=0.16, wspace=0.35)
    return _save(fig, path)


def gallery(path: Path, images: list[np.ndarray], captions: list[str], title: str,
            cell: tuple[float, float] = (3.0, 1.5)) -> Path:
    """Images (as the model saw them) in a grid, each with its caption; GALLERY_COLS
    columns, as many rows as needed (at least one, which says so when there is nothing)."""
    plt = _plt()
    rows = max(1, -(-len(images) // GALLERY_COLS))
    height = cell[1] * rows + HEADER  # the title's band stays HEADER inches, above the captions
    fig, axes = plt.subplots(rows, GALLERY_COLS, figsize=(cell[0] * GALLERY_COLS, height), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, captions):
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
        ax.set_title(caption, fontsize=8, family="monospace")
    if not images:
        axes.flat[0].text(0, 0.5, "no mistakes on the test split", fontsize=10)
    fig.suptitle(title, fontsize=10, y=1 - 0.15 / height, va="top")
    fig.subplots_adjust(left=0.01, right=0.99, top=1 - HEADER / height, bottom=0.01, hspace=0.5, wspace=0.05)
    return _save(fig, path)


def pixel_size(figsize: tuple[float, float]) -> tuple[int, int]:
    """(width, height) in pixels of a figure of this size in inches."""
    return round(figsize[0] * DPI), round(figsize[1] * DPI)
