"""``python -m glimpse_ros.recognizer --ros-args ...``: run the recognizer node.

SIGTERM is turned into ``KeyboardInterrupt`` before the first heavy import, so that a SIGTERM
during start-up (imports take a while, rclpy installs its own handler only in ``rclpy.init``) ends
the process with the documented clean exit 0 instead of killing it by the signal.
"""

import signal
import sys


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM before rclpy's handler: unwind like SIGINT does; after it, leave it to rclpy.

    rclpy's handler calls the one it replaced after shutting its contexts down; from then on the
    node's own shutdown path runs, so nothing is raised here.
    """
    signals = sys.modules.get("rclpy.signals")
    if signals is not None and \
            signals.get_current_signal_handlers_options() != signals.SignalHandlerOptions.NO:
        return
    raise KeyboardInterrupt


def main(args: list[str] | None = None) -> int:
    """Console script ``recognizer``: the node's main; SIGINT/SIGTERM while importing exit 0."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        from glimpse_ros.ros.node_main import main as node_main

        return node_main(args)
    except KeyboardInterrupt:  # before rclpy was initialised (imports): nothing to clean up
        return 0


if __name__ == "__main__":
    sys.exit(main())
