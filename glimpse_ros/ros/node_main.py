"""Entry point of the recognizer node: ``python -m glimpse_ros.recognizer --ros-args ...``."""

from __future__ import annotations

import sys

import rclpy
from rclpy.executors import ExternalShutdownException

from glimpse_ros.ros.node import RecognizerNode, StartupError
from glimpse_ros.ros.parameters import ParameterError
from glimpse_ros.ros.transport import apply_default_transport

INTERRUPTED = "[INFO] [glimpse_ros]: interrupted during start-up"


def main(args: list[str] | None = None) -> int:
    """Console script ``glimpse-recognizer`` / ``python -m glimpse_ros.recognizer --ros-args ...``.

    Returns 2, after logging why, when a parameter, the params file or the model is invalid;
    0, without traceback, after SIGINT/SIGTERM during start-up.
    """
    profile = apply_default_transport()  # before rclpy.init: large frames over shared memory
    try:
        rclpy.init(args=args)
    except Exception as err:  # noqa: BLE001 - e.g. an unreadable or malformed --params-file
        print(f"[FATAL] [glimpse_ros]: start-up failed: {str(err).splitlines()[0]}",
              file=sys.stderr)
        return 2
    if profile is not None:  # before the model loads (start-up can take a while)
        rclpy.logging.get_logger("glimpse_ros").info(f"Fast DDS profile: {profile}")
    try:
        node = RecognizerNode()
    except KeyboardInterrupt:  # SIGINT outside rclpy's handler: leave quietly
        print(INTERRUPTED, file=sys.stderr)  # rcl logging ends with the context
        rclpy.try_shutdown()
        return 0
    except (ParameterError, StartupError):  # the node logged why, under its own name
        if not rclpy.ok():  # SIGINT/SIGTERM during start-up: a clean exit
            print(INTERRUPTED, file=sys.stderr)
            return 0
        rclpy.try_shutdown()
        return 2
    except Exception as err:  # noqa: BLE001 - e.g. rcl refusing the params file: no traceback
        if not rclpy.ok():  # SIGINT while rcl created the node ("context has been shutdown")
            print(INTERRUPTED, file=sys.stderr)
            return 0
        rclpy.logging.get_logger("glimpse_ros").fatal(f"start-up failed: {err}")
        rclpy.try_shutdown()
        return 2
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
