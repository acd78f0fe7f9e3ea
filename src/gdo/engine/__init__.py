"""gdo.engine: resumable shard storage (store.py) and local parallel execution (local.py)."""
