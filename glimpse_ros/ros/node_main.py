"""Entry point of the recognizer node: ``python -m glimpse_ros.recognizer --ros-args ...``."""

from __future__ import annotations

import sys

import rclpy
from rclpy.executors import ExternalShutdownException

from glimpse_ros.ros.node import RecognizerNode, StartupError
from glimpse_ros.ros.parameters import ParameterError
from glimpse_ros.ros.transport import apply_default_transport


def main(args: list[str] | None = None) -> int:
    """Console script ``glimpse-recognizer`` / ``python -m glimpse_ros.recognizer --ros-args ...``.

    Returns 2, after logging why, when a parameter, the params file or the model is invalid.
    """
    profile = apply_default_transport()  # before rclpy.init: large frames over shared memory
    try:
        rclpy.init(args=args)
    except Exception as err:  # noqa: BLE001 - e.g. an unreadable or malformed --params-file
        print(f"[FATAL] [glimpse_ros]: start-up failed: {str(err).splitlines()[0]}",
              file=sys.stderr)
        return 2
    try:
        node = RecognizerNode()
    except (ParameterError, StartupError):  # the node logged why, under its own name
        if not rclpy.ok():  # SIGINT/SIGTERM during start-up: a clean exit
            return 0
        rclpy.try_shutdown()
        return 2
    except Exception as err:  # noqa: BLE001 - e.g. rcl refusing the params file: no traceback
        rclpy.logging.get_logger("glimpse_ros").fatal(f"start-up failed: {err}")
        rclpy.try_shutdown()
        return 2
    if profile is not None:
        node.get_logger().info(f"Fast DDS profile: {profile}")
    if node.node_config.managed:
        node.get_logger().info("managed: waiting for configure/activate (lifecycle_msgs)")
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


__all__ = ["main"]
