"""The `kerashw` and `kerashw-tui` commands (main.py), the headless progress (progress.py)
`--workers` (workers.py) and `kerashw audit` (audit.py). The only package that imports click."""
from kerashw.cli.main import main, tui_main
from kerashw.cli import audit as _audit  # noqa: F401  registers `kerashw audit` on main

__all__ = ["main", "tui_main"]
