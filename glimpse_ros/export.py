"""``python -m glimpse_ros.export``: see :mod:`glimpse_ros.runtime.export_cli`."""

import sys

from glimpse_ros.runtime.export_cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
