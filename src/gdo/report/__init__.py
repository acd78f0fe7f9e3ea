"""gdo.report package."""
