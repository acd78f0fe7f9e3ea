"""gdo.models package."""
