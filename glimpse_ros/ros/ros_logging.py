"""Route the Python ``logging`` records of ``glimpse_ros.*`` to a node's ROS logger.

The runtime (no ROS import) logs with Python ``logging``; inside the node those lines must go
where ROS users look: the console with ROS's format and timestamps, ``/rosout`` and the log files,
under the node's logger name (which follows its name and namespace).
"""

from __future__ import annotations

import logging
from typing import Callable

from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.logging import LoggingSeverity

PACKAGE_LOGGER = "glimpse_ros"
# Python logging level -> ROS severity (FATAL for CRITICAL).
_SEVERITIES = ((logging.CRITICAL, LoggingSeverity.FATAL), (logging.ERROR, LoggingSeverity.ERROR),
               (logging.WARNING, LoggingSeverity.WARN), (logging.INFO, LoggingSeverity.INFO))
_LEVELS = {LoggingSeverity.FATAL: logging.CRITICAL, LoggingSeverity.ERROR: logging.ERROR,
           LoggingSeverity.WARN: logging.WARNING, LoggingSeverity.INFO: logging.INFO,
           LoggingSeverity.DEBUG: logging.DEBUG, LoggingSeverity.UNSET: logging.INFO}


def severity(levelno: int) -> LoggingSeverity:
    """ROS severity of a Python logging level."""
    for level, sev in _SEVERITIES:
        if levelno >= level:
            return sev
    return LoggingSeverity.DEBUG


class RosLogHandler(logging.Handler):
    """A logging handler that re-emits each record through an rclpy logger."""

    def __init__(self, logger: RcutilsLogger, active: Callable[[], bool] = lambda: True) -> None:
        """Forward to ``logger`` (e.g. ``node.get_logger()``) while ``active()`` is true."""
        super().__init__()
        self.ros_logger = logger
        self.active = active
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        """Log the formatted record with the matching ROS severity."""
        if not self.active():  # context shut down: /rosout is gone, drop like rclpy would
            return
        try:
            # One call site per severity: rclpy keys its per-call-site state by the caller's
            # file, line and bytecode offset and refuses a second severity from the same site
            # ("Logger severity cannot be changed between calls"), so a single
            # log(msg, severity) call here would fail on the first WARNING after an INFO.
            sev, message, ros = severity(record.levelno), self.format(record), self.ros_logger
            if sev == LoggingSeverity.FATAL:
                ros.fatal(message)
            elif sev == LoggingSeverity.ERROR:
                ros.error(message)
            elif sev == LoggingSeverity.WARN:
                ros.warning(message)
            elif sev == LoggingSeverity.INFO:
                ros.info(message)
            else:
                ros.debug(message)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


def forward_python_logging(logger: RcutilsLogger, active: Callable[[], bool] = lambda: True,
                           name: str = PACKAGE_LOGGER) -> RosLogHandler:
    """Attach a RosLogHandler to the Python logger ``name``; return it (for ``stop_forwarding``).

    ``active`` (e.g. the node's ``context.ok``) tells whether forwarding is still possible.

    The Python logger's level follows the ROS logger's effective level when it has none of its
    own, so that INFO lines of the runtime appear like the node's own.
    """
    handler = RosLogHandler(logger, active)
    target = logging.getLogger(name)
    if target.level == logging.NOTSET:
        target.setLevel(_LEVELS.get(LoggingSeverity(logger.get_effective_level()), logging.INFO))
    target.addHandler(handler)
    return handler


def stop_forwarding(handler: RosLogHandler, name: str = PACKAGE_LOGGER) -> None:
    """Detach a handler attached by ``forward_python_logging``."""
    logging.getLogger(name).removeHandler(handler)


__all__ = ["RosLogHandler", "forward_python_logging", "severity", "stop_forwarding"]
