"""The recognizer node's inference thread (:class:`InferenceThread`) and its hand-offs.

Owns what happens off the executor: popping queued frames, applying a requested reset or a
parameter change between two frames, decoding compressed frames, feeding the Recognizer, pairing
each result with the header and pixels of the frame it describes (the last ``keep_frames``
frames are kept for that) and publishing it. Every error of one frame is counted and logged,
throttled; the thread outlives it.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

import numpy as np

from glimpse_ros.config import RecognizerConfig
from glimpse_ros.runtime.stream_policy import ResetKind
from glimpse_ros.sources.image_decoding import CompressedFrame

WARN_THROTTLE_S = 5.0
# Recognizer counters shown in the diagnostics (stream policy: dropped jitter, size changes).
RECOGNIZER_COUNTERS = ("jitter_dropped", "size_changes")


def stamp_to_float(stamp) -> float:
    """builtin_interfaces/Time -> seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


class InferenceThread:
    """Runs the recognizer of ``node`` (a RecognizerNode) on its queued frames."""

    def __init__(self, node: Any) -> None:
        """Not started; ``node`` provides recognizer, input, outputs, stats and node_config."""
        self._node = node
        self.recent: collections.OrderedDict[float, tuple[Any, np.ndarray]] = \
            collections.OrderedDict()
        self.keep_frames = 18
        self._reset_requested = False
        self._pending_config: RecognizerConfig | None = None
        self._lock = threading.Lock()
        self.running = False
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread."""
        self.running = True
        self.thread = threading.Thread(target=self._loop, name="inference", daemon=True)
        self.thread.start()

    def join(self) -> None:
        """Wait (bounded) for a stopped thread to finish its frame."""
        if self.thread is not None:
            self.thread.join(timeout=5.0)
            self.thread = None

    def request_reset(self) -> None:
        """Reset the recognizer before the next frame."""
        with self._lock:
            self._reset_requested = True

    def reconfigure(self, config: RecognizerConfig) -> None:
        """Hand a validated config to the recognizer before the next frame."""
        with self._lock:
            self._pending_config = config

    def _loop(self) -> None:
        node = self._node
        while self.running:
            item = node.input.queue.get(timeout=0.1)
            # A local reference: cleanup/shutdown may release the recognizer while this thread
            # is still finishing a frame (the join there is bounded).
            recognizer = node.recognizer
            if recognizer is None:
                break
            try:
                self.step(recognizer, item)
            except Exception as err:  # noqa: BLE001 - the thread must outlive any one frame
                node.stats.record_rejected("inference_error", repr(err))
                node.get_logger().error(f"inference loop: {err!r}",
                                        throttle_duration_sec=WARN_THROTTLE_S)

    def step(self, recognizer: Any, item: Any) -> None:
        """Apply pending resets and parameter changes, then process one queued frame."""
        with self._lock:
            requested, self._reset_requested = self._reset_requested, False
            config, self._pending_config = self._pending_config, None
        if config is not None and hasattr(recognizer, "reconfigure"):
            recognizer.reconfigure(config)  # validated by the node's parameter callback
        if requested:
            recognizer.reset(ResetKind.REQUESTED, "reset service")
            self.recent.clear()
        # The recognizer counts every reset by kind: requested ones and its own (time jump,
        # gap), and the frames its stamp and size policy dropped or resized.
        counters = getattr(recognizer, "counters", {})
        self._node.stats.set_resets(recognizer.reset_reasons,
                                    getattr(recognizer, "last_reset_reason", ""),
                                    {k: counters.get(k, 0) for k in RECOGNIZER_COUNTERS})
        if item is not None:
            self._process(recognizer, *item)

    def _process(self, recognizer: Any, frame: np.ndarray | CompressedFrame,
                 header: Any) -> None:
        """Decode (compressed), push one frame and publish the results it produced."""
        node = self._node
        frame = node.input.decode(frame)
        if frame is None:  # refused (counted)
            return
        stamp = stamp_to_float(header.stamp)
        self.recent[stamp] = (header, frame)
        while len(self.recent) > self.keep_frames:
            self.recent.popitem(last=False)
        try:
            results = recognizer.push(frame, stamp)
        except ValueError as err:  # e.g. a frame the recognizer refuses
            node.stats.record_rejected("recognizer", str(err))
            node.get_logger().warning(f"recognizer rejected frame: {err}",
                                      throttle_duration_sec=WARN_THROTTLE_S)
            return
        except Exception as err:  # keep the node alive; the error shows in diagnostics
            node.stats.record_rejected("inference_error", repr(err))
            node.get_logger().error(f"inference failed: {err!r}",
                                    throttle_duration_sec=WARN_THROTTLE_S)
            return
        for result in results:
            try:
                self.publish_result(result)
            except Exception as err:  # e.g. non-finite boxes: skip it, keep the thread
                node.stats.record_rejected("output_error", repr(err))
                node.get_logger().error(f"publishing a result failed: {err!r}",
                                        throttle_duration_sec=WARN_THROTTLE_S)

    def publish_result(self, result: Any) -> None:
        """Publish one result with the header of its frame (dropped when no longer kept)."""
        node = self._node
        header, frame = self.recent.get(result.stamp, (None, None))
        if header is None:  # result for a frame no longer kept: nothing to stamp it with
            return
        if node.outputs.publish(result, header, frame, node.input.camera_info,
                                node.node_config):
            node.stats.record_overlay()
        latency = stamp_to_float(node.get_clock().now().to_msg()) - result.stamp
        node.stats.record_processed(latency, result.stamp)


__all__ = ["InferenceThread", "RECOGNIZER_COUNTERS", "stamp_to_float"]
