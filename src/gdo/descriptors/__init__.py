"""gdo.descriptors package."""
