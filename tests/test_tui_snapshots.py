"""Pictures of the main screens at 80x24, and the Studies tab at 120x40 too (pytest-textual-snapshot). Update them with
`pytest tests/test_tui_snapshots.py --snapshot-update` after a deliberate change."""
from textual.widgets import Input

from kerashw.config import TrainOptions
from kerashw.store import Store
from tui.app import KerasHWApp


def _app(tmp_path):
    # No MNIST file: run ids are shown without a data fingerprint, the same on every machine
    # (with one, they would name the local file's content).
    # (A fixed path that never exists, since the screen names it: a tmp_path would differ per run.)
    return KerasHWApp(Store(tmp_path / "runs"), TrainOptions(mnist="/nonexistent/no-mnist.npz"))


async def _fixed_title(pilot):
    pilot.app.sub_title = "kerashw-runs/runs.db"  # not the test's temporary path
    await pilot.pause()


def test_studies_screen(snap_compare, tmp_path):
    assert snap_compare(_app(tmp_path), terminal_size=(80, 24), run_before=_fixed_title)


def test_studies_screen_at_120x40(snap_compare, tmp_path):
    """A larger terminal: the study list and its detail use the room."""
    assert snap_compare(_app(tmp_path), terminal_size=(120, 40), run_before=_fixed_title)


def test_settings_error(snap_compare, tmp_path):
    async def bad_epochs(pilot):
        await _fixed_title(pilot)
        pilot.app.query_one("#set-epochs", Input).value = "ten"
        await pilot.pause()

    assert snap_compare(_app(tmp_path), terminal_size=(80, 24), run_before=bad_epochs)


def test_results_screen_empty(snap_compare, tmp_path):
    async def results(pilot):
        await _fixed_title(pilot)
        await pilot.press("3")

    assert snap_compare(_app(tmp_path), terminal_size=(80, 24), run_before=results)
