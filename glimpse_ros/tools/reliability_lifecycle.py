"""Lifecycle cycles while a camera streams (``make reliability``, ``--only lifecycle``).

A managed node process is driven through ``cycles`` deactivate/activate cycles over its
lifecycle_msgs services while a publisher in this process keeps streaming small rgb8 frames.
While inactive the node has no subscription, so those frames reach nobody; they are not
middleware losses and must not show in ``skipped_by_middleware`` (the node used to count each
of them when the publisher's sequence numbers jumped on re-activation).

The publisher records, before each frame, whether its writer is matched with the node's reader
(its own graph view, independent of the node's counters). The node's input is reliable with a
100-deep history, so nothing is overwritten in the reader's queue: every frame published while
matched must arrive, and any ``skipped_by_middleware`` or ``lost_in_transport`` would be real.
A cycle *held* when neither counter grew and the node labels frames again after activation.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState

from glimpse_ros.ros.image_message import rgb_to_image
from glimpse_ros.ros.service_client import matched_client
from glimpse_ros.tools.reliability_harness import NodeProcess, Probe, run_on_tiny_node

TOPIC = "lifecycle/image"


class Camera:
    """Publishes 32x24 rgb8 frames through ``probe`` at ``fps`` in a thread; counts them.

    ``matched`` / ``unmatched``: frames published while the writer had a subscription or not.
    """

    def __init__(self, probe: Probe, fps: float) -> None:
        """Start publishing."""
        self.probe, self.period = probe, 1.0 / fps
        self.matched = self.unmatched = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        msg = rgb_to_image(np.random.default_rng(0).integers(0, 256, (24, 32, 3), np.uint8))
        next_t = time.monotonic()
        while not self._stop.is_set():
            if self.probe.pub.get_subscription_count() > 0:
                self.matched += 1
            else:
                self.unmatched += 1
            self.probe.publish(msg)
            next_t += self.period
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def stop(self) -> None:
        """Stop publishing."""
        self._stop.set()
        self._thread.join()


def _transition(client: Any, transition_id: int) -> bool:
    request = ChangeState.Request(transition=Transition(id=transition_id))
    response = client.call(request, timeout_sec=60)
    return bool(response is not None and response.success)


def _counters(probe: Probe) -> tuple[int, int]:
    return int(probe.value("skipped_by_middleware")), int(probe.value("lost_in_transport"))


def _active_again(probe: Probe, change: Any, seen: int, labels: int) -> float:
    """Activate; wait until new frames are counted and labelled; the seconds it took."""
    start = time.monotonic()
    if not _transition(change, Transition.TRANSITION_ACTIVATE):
        raise RuntimeError("activate refused")
    probe.wait_for(lambda: probe.seen() > seen and len(probe.labels) > labels, 30,
                   "frames counted and labelled after activate")
    return time.monotonic() - start


def run_cycles(probe: Probe, node: NodeProcess, cycles: int, inactive_s: float = 0.5,
               active_s: float = 0.5, fps: float = 30.0) -> dict[str, Any]:
    """Configure, activate, then ``cycles`` deactivate/activate cycles under a streaming camera.

    Returns per-cycle and total counts: frames published while the node was (not) subscribed,
    the node's ``skipped_by_middleware`` and ``lost_in_transport`` growth, cycles held.
    """
    get = matched_client(probe.node, GetState, f"/{node.name}/get_state", GetState.Request(), 90)
    change = matched_client(probe.node, ChangeState, f"/{node.name}/change_state",
                            ChangeState.Request(transition=Transition(label="no_such")), 90)
    camera = Camera(probe, fps)
    per_cycle: list[dict[str, Any]] = []
    try:
        if not _transition(change, Transition.TRANSITION_CONFIGURE):
            raise RuntimeError(f"configure refused:\n{node.log()[-2000:]}")
        _active_again(probe, change, probe.seen(), len(probe.labels))
        time.sleep(active_s)
        for _ in range(cycles):
            skipped0, lost0 = _counters(probe)
            unmatched0, seen0, labels0 = camera.unmatched, probe.seen(), len(probe.labels)
            if not _transition(change, Transition.TRANSITION_DEACTIVATE):
                raise RuntimeError("deactivate refused")
            probe.wait_for(lambda: probe.pub.get_subscription_count() == 0, 10, "unsubscribed")
            time.sleep(inactive_s)
            up_s = _active_again(probe, change, seen0, labels0)
            time.sleep(active_s)
            skipped, lost = _counters(probe)
            per_cycle.append({"published_while_unsubscribed": camera.unmatched - unmatched0,
                              "skipped_growth": skipped - skipped0, "lost_growth": lost - lost0,
                              "activate_to_labels_s": round(up_s, 2)})
        state = get.call(GetState.Request(), timeout_sec=10).current_state.label
    finally:
        camera.stop()
    time.sleep(0.5)
    skipped, lost = _counters(probe)
    held = sum(c["skipped_growth"] == 0 and c["lost_growth"] == 0 for c in per_cycle)
    return {"cycles": cycles, "cycles_held": held, "fps": fps, "inactive_s": inactive_s,
            "published": camera.matched + camera.unmatched,
            "published_while_subscribed": camera.matched,
            "published_while_unsubscribed": camera.unmatched,
            "messages_received": probe.seen(), "skipped_by_middleware": skipped,
            "lost_in_transport": lost, "final_state": state, "per_cycle": per_cycle,
            "node_alive": node.alive()}


def lifecycle_runs(tmp: Path, domain: int, cycles: int = 30) -> dict[str, Any]:
    """Start the managed node process on a small random model and run :func:`run_cycles`."""
    params = {"managed": True, "diagnostics_period_s": 0.05, "input_reliability": "reliable",
              f"qos_overrides./{TOPIC}.subscription.depth": 100}

    def run(probe: Probe, node: NodeProcess) -> dict[str, Any]:
        return run_cycles(probe, node, cycles)

    return {"lifecycle_cycles": run_on_tiny_node(tmp, domain, "lifecycle", params, TOPIC, run)}


def lifecycle_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    """The table row of the lifecycle class."""
    c = r["lifecycle_cycles"]
    return [("Lifecycle cycles while streaming",
             f"{c['cycles']} deactivate/activate cycles, {c['fps']:.0f} fps, "
             f"{c['published_while_unsubscribed']} of {c['published']} frames published while "
             f"the node was not subscribed: {c['cycles_held']}/{c['cycles']} held "
             f"(skipped_by_middleware {c['skipped_by_middleware']}, lost_in_transport "
             f"{c['lost_in_transport']}; labels again after each activate)")]


__all__ = ["Camera", "lifecycle_rows", "lifecycle_runs", "run_cycles"]
