"""``python -m glimpse_ros.demo``: replay + recognizer in one process on a synthetic clip."""

import sys

from glimpse_ros.tools.demo import main

if __name__ == "__main__":
    sys.exit(main())
