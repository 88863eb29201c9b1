"""``python -m glimpse_ros.recognizer --ros-args ...``: run the recognizer node."""

import sys

from glimpse_ros.ros.node_main import main

if __name__ == "__main__":
    sys.exit(main())
