"""A finished run's pictures in the terminal: its misclassified test images (captchas as
the model saw them, with true and predicted text; digits with their top-3) and, for a
captcha run, the preprocessing preview (original | denoise | denoise2).

Drawn by kerashw (a forward pass of the saved model, as `kerashw report` does) into the
run's folder once, in a thread; shown with textual-image, which uses the terminal's
graphics protocol (Sixel, Kitty) where there is one and unicode half-blocks elsewhere.
"""
from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static
from textual_image.widget import Image

from kerashw import tasks
from kerashw.config import RunSpec, TrainOptions


def draw_run_images(store, row, options: TrainOptions) -> list[tuple[str, Path]]:
    """(caption, PNG) pairs for the run, drawn into its folder unless already there and
    newer than its model."""
    from kerashw.reports import writeup

    files = store.files(row.id)
    model = files.model
    out = []
    mistakes = files.mistakes
    if not mistakes.exists() or mistakes.stat().st_mtime < model.stat().st_mtime:
        writeup.draw_mistakes(mistakes, store, row, options, limit=12)
    out.append(("misclassified test images (true -> predicted)", mistakes))
    preview = files.preview  # the task's picture of its input variants, if it has one
    caption = tasks.get(row.task).preview(RunSpec.from_dict(row.spec), preview)
    if caption:
        out.append((caption, preview))
    return out


def viewer_command(path: Path) -> list[str] | None:
    """The system's command that opens a file in its viewer, or None where there is none."""
    import shutil
    import sys

    if sys.platform == "darwin":
        return ["open", str(path)]
    if sys.platform.startswith("win"):
        return ["cmd", "/c", "start", "", str(path)]
    return ["xdg-open", str(path)] if shutil.which("xdg-open") else None


class ImagesScreen(ModalScreen):
    """Without Sixel or Kitty graphics the half-block pictures are coarse: each caption names
    its PNG, and `o` opens the first in the system's image viewer."""

    BINDINGS = [Binding("escape", "dismiss", "Close"), Binding("o", "open", "Open in viewer")]

    def __init__(self, store, row, options: TrainOptions, **kwargs):
        super().__init__(**kwargs)
        self.store, self.row, self.options = store, row, options
        self.paths: list[Path] = []
        self.body = VerticalScroll(id="images-body")
        self.note = Static(f"run {row.id[:8]} {row.label}: drawing its pictures (a forward pass over the test "
                           "split)…  Escape closes", id="images-note")

    def compose(self) -> ComposeResult:
        yield self.note
        yield self.body

    def on_mount(self) -> None:
        self.draw()

    @work(thread=True, exclusive=True, group="images", exit_on_error=False)
    def draw(self) -> None:
        try:
            pictures = draw_run_images(self.store, self.row, self.options)
        except Exception as exc:  # shown; the app stays up
            self.app.call_from_thread(self.note.update, f"[red]{type(exc).__name__}: {exc}[/red]  Escape closes")
            return
        self.app.call_from_thread(self.show, pictures)

    def show(self, pictures) -> None:
        self.note.update(f"run {self.row.id[:8]} {self.row.label}  ·  o opens in the image viewer  ·  Escape closes")
        self.paths = [path for _, path in pictures]
        for caption, path in pictures:
            self.body.mount(Static(f"{caption}: {path}", classes="image-caption", markup=False))
            self.body.mount(Image(path, classes="run-image"))

    def action_open(self) -> None:
        import subprocess

        if not self.paths:
            return
        command = viewer_command(self.paths[0])
        if command is None:
            self.notify(f"no image viewer here (xdg-open); the picture is {self.paths[0]}", timeout=10)
            return
        try:  # detached: the viewer outlives nothing of ours and its output never reaches the screen
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            self.notify(f"{command[0]}: {exc.strerror}; the picture is {self.paths[0]}", severity="error", timeout=10)
