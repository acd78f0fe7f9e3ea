"""``python -m gdo``: the same as the ``gdo`` command."""

from gdo.cli import main

if __name__ == "__main__":
    main()
