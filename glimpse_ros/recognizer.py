"""``python -m glimpse_ros.recognizer --ros-args ...``: run the recognizer node."""

import sys

from glimpse_ros.ros.node import main

if __name__ == "__main__":
    sys.exit(main())
