"""``python -m glimpse_ros.export``: see :mod:`glimpse_ros.tools.export`."""

import sys

from glimpse_ros.tools.export import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
