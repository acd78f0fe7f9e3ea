"""gdo.selection package."""
