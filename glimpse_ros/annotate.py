"""``python -m glimpse_ros.annotate VIDEO_OR_BAG --out DIR``: :mod:`glimpse_ros.tools.annotate`."""

import sys

from glimpse_ros.tools.annotate import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
