"""gdo.pool package."""
