"""The `kerashw` and `kerashw-tui` commands (main.py), the headless progress (progress.py)
and `--workers` (workers.py). The only package that imports click."""
from kerashw.cli.main import main, tui_main

__all__ = ["main", "tui_main"]
