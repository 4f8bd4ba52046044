"""The `kerashw` and `kerashw-tui` commands (main.py), the headless progress (progress.py)
`--workers` (workers.py) and `kerashw audit` and `kerashw cache` (datacmds.py). The only package that imports click."""
from kerashw.cli.main import main, tui_main
from kerashw.cli import datacmds as _datacmds  # noqa: F401  registers `kerashw audit` and `kerashw cache`

__all__ = ["main", "tui_main"]
