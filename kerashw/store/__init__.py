"""The results store: SQLite runs and epochs (db.py) and who trains a run (claims.py).
Stdlib only, never keras. `from kerashw.store import Store` is the usual way in."""
from kerashw.store.claims import STALE, Claim, StoreError
from kerashw.store.db import STATUSES, RunRow, Store, default_home, to_json

__all__ = ["STALE", "STATUSES", "Claim", "RunRow", "Store", "StoreError", "default_home", "to_json"]
