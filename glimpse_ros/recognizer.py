"""``python -m glimpse_ros.recognizer --ros-args ...``: run the recognizer node."""

import sys


def main(args: list[str] | None = None) -> int:
    """Console script ``recognizer``: the node's main; SIGINT while importing exits quietly."""
    try:
        from glimpse_ros.ros.node_main import main as node_main

        return node_main(args)
    except KeyboardInterrupt:  # before rclpy was initialised (imports): nothing to clean up
        return 0


if __name__ == "__main__":
    sys.exit(main())
