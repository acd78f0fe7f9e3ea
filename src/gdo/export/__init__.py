"""gdo.export package."""
