"""``python -m glimpse_ros.replay PATH [--fps F] [--loop] --ros-args ...``: video as a camera."""

import sys

from glimpse_ros.ros.replay import main

if __name__ == "__main__":
    sys.exit(main())
