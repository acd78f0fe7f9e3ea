"""gdo.engine package."""
