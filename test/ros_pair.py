"""Two rclpy contexts on one private DDS domain: the node under test and a remote client.

The client talks to the node only through DDS (topics, parameter and lifecycle services, graph
queries), as another process would; each context spins in its own executor thread.
"""

from __future__ import annotations

import random
import threading
import time
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import rclpy
from rclpy.executors import MultiThreadedExecutor

from glimpse_ros.ros.node import RecognizerNode
from glimpse_ros.ros.service_client import matched_client  # re-exported for the tests


class StandInRecognizer:
    """Runtime Recognizer stand-in: one result per frame, records what it was told.

    ``configs``: every reconfigure; ``used``: ``[(stamp, config)]`` per pushed frame, the config
    it was processed with; ``threads``: the thread each frame was pushed on.
    """

    labels = ["wave", "clap"]
    backend_name = "stand-in"
    frames = 8

    def __init__(self, config) -> None:
        """Remember the config."""
        self.config = config
        self.reset_reasons: dict[str, int] = {}
        self.configs: list = []
        self.used: list = []
        self.threads: list[threading.Thread] = []

    def reset(self, reason: str) -> None:
        """Count resets by reason."""
        self.reset_reasons[reason] = self.reset_reasons.get(reason, 0) + 1

    def reconfigure(self, config) -> None:
        """Record the live change."""
        self.config = config
        self.configs.append(config)

    def push(self, frame: np.ndarray, stamp: float) -> list:
        """One result per frame, a box in the top-left quarter."""
        self.used.append((stamp, self.config))
        self.threads.append(threading.current_thread())
        h, w = frame.shape[:2]
        return [SimpleNamespace(stamp=stamp, boxes=np.array([[0.0, 0.0, w / 2, h / 2]]),
                                label="wave", top_k=[("wave", 0.75), ("clap", 0.25)])]


class RosPair:
    """Node context (``node_ctx``) and client context (``client``) on one random domain."""

    def __init__(self) -> None:
        """Initialise both contexts and start the client's executor."""
        self.domain = random.randint(101, 230)
        self.node_ctx, self.client_ctx = rclpy.Context(), rclpy.Context()
        rclpy.init(context=self.node_ctx, domain_id=self.domain)
        rclpy.init(context=self.client_ctx, domain_id=self.domain)
        self.client = rclpy.create_node("remote_client", context=self.client_ctx)
        self._executors = []
        self._spin(self.client, self.client_ctx)
        self.nodes: list[Any] = []
        self.made: list[StandInRecognizer] = []
        self._clients: dict[str, Any] = {}

    def _spin(self, node, context) -> None:
        executor = MultiThreadedExecutor(num_threads=2, context=context)
        executor.add_node(node)
        threading.Thread(target=executor.spin, daemon=True).start()
        self._executors.append(executor)

    def start(self, *overrides, cli_args: list[str] | None = None,
              factory: Callable | None = None, **kwargs) -> RecognizerNode:
        """A RecognizerNode with a stand-in recognizer, spinning in the node context."""
        def make(config):
            self.made.append(StandInRecognizer(config))
            return self.made[-1]

        node = RecognizerNode(factory or make, context=self.node_ctx,
                              parameter_overrides=list(overrides), cli_args=cli_args, **kwargs)
        self.nodes.append(node)
        self._spin(node, self.node_ctx)
        return node

    def call(self, srv_type, name: str, request, timeout: float = 10.0):
        """Call a service of the node from the client context (one matched client per name)."""
        if name not in self._clients:
            self._clients[name] = matched_client(self.client, srv_type, name,
                                                 srv_type.Request(), timeout)
        response = self._clients[name].call(request, timeout_sec=timeout)
        assert response is not None, f"{name}: no response"
        return response

    def close(self) -> None:
        """Stop executors, destroy nodes, shut both contexts down."""
        for executor in self._executors:
            executor.shutdown()
        for node in self.nodes:
            node.destroy_node()
        self.client.destroy_node()
        rclpy.shutdown(context=self.node_ctx)
        rclpy.shutdown(context=self.client_ctx)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until true, or fail naming ``what``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
