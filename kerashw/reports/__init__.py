"""Words and pictures of stored runs: tables and log lines (tables.py), the figures
(figures.py, matplotlib) and `kerashw report`'s report.md (writeup.py)."""
