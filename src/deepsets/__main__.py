"""``python -m deepsets …``: the same command line as ``deepsets …``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
