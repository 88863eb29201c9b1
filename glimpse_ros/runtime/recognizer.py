"""Streaming recognizer: rolling frame buffer, backbone engine, recurrent head (DESIGN §3).

No ROS import. Semantics:

- Every pushed frame is validated and preprocessed once, on arrival (resize/crop of the model's
  config, ImageNet normalisation), into a ring of the last ``T`` frames.
- Nothing is output until ``T`` frames have arrived (the backbone always runs on a full window, as
  in training; a window padded with copies would give features the model never saw). From then
  on, every ``stride`` new frames the backbone runs on the window and the head steps the frames
  not yet stepped, each frame exactly once, in order; frame ``i`` of the window is ``Z[:, :, i]``.
  The first window steps all ``T`` frames. ``stride`` must be ``<= T`` (a larger stride would skip
  frames).
- ``head_mode="stream"`` keeps the head state (glimpse GRU, memory, workers) across windows.
  ``head_mode="clip"`` re-runs the head over the whole window from a fresh state each time (the
  training computation) and reports its outputs at the new frames; ``FrameResult.window_probs`` is
  then the clip prediction (softmax of the mean step logits over the window).
- A reset (on request, backwards time beyond ``stamp_jitter_s``, gap > ``max_gap_s``) empties the
  buffer, the head state and the smoothing: a new sequence starts. A frame stamped at most
  ``stamp_jitter_s`` before the previous one is dropped (counted in ``counters["jitter_dropped"]``)
  and a change of the source frame size continues the sequence (counted in
  ``counters["size_changes"]``): see ``glimpse_ros.runtime.stream_policy``. Resets are counted per
  :class:`~glimpse_ros.runtime.stream_policy.ResetKind` in ``reset_reasons`` (bounded), the last
  message is ``last_reset_reason``.
- The head runs as built once at load (``glimpse_ros.runtime.head_runner``): with
  ``head_engine="auto"``, an onnxruntime or openvino backbone and ``head_precision="fp32"``, as
  the exported head step on that engine (fp32, equal to the eager head to float tolerance), and
  with an openvino backbone and ``"int8"`` as that export with int8 weights
  (``glimpse_ros.runtime.head_int8``); otherwise eagerly in PyTorch, an inference copy
  (``glimpse_ros.model.quantize.prepare_head``) that is exact in fp32 and approximates it in
  ``"int8"``. The semantics above are the same.
- ``probs`` of a frame is the softmax of the head's logits at that frame; ``top_k`` and ``label``
  come from their exponential moving average (``smoothing``).
- A causal model (``temporal_padding: causal`` in the model file) is streamed instead: every
  pushed frame runs one backbone step (explicit backbone state, a step engine) and one head step
  and yields that frame's result at once; there is no window, ``stride`` and ``head_mode`` do not
  apply. The stream policy above (jitter drop, time-jump and gap resets, size changes) is the
  same; a reset clears the backbone state too. ``counters["windows"]`` then counts steps.

The model is a checkpoint (PyTorch weights; non-torch engines run its cached ONNX exports) or a
model bundle directory (``glimpse_ros.runtime.bundle``: the exported graphs, run on ONNX Runtime
or OpenVINO without importing torch).

Not thread-safe: call ``push``/``reset`` from one thread.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import Counter
from pathlib import Path

import numpy as np

from glimpse_ros.config import RecognizerConfig
from glimpse_ros.preprocess import check_frame, glimpse_box_pixels, preprocess_frame
from glimpse_ros.runtime.backbone_engine import build_backbone_engine
from glimpse_ros.runtime.factory import select_backend
from glimpse_ros.runtime.frame_buffer import FrameBuffer
from glimpse_ros.runtime.frame_result import FrameResult
from glimpse_ros.runtime.head_runner import HeadFrame, build_head_runner
from glimpse_ros.runtime.threads import HEAD_THREADS
from glimpse_ros.runtime.labels import load_labels
from glimpse_ros.runtime.model_files import resolve_model_path
from glimpse_ros.runtime.model_source import load_model_source
from glimpse_ros.runtime.reset_log import ResetLog
from glimpse_ros.runtime.smoothing import EmaSmoother, softmax, top_k
from glimpse_ros.runtime.stream_policy import Action, ResetKind, decide, reset_kind
from glimpse_ros.runtime.threads import shared_process_threads

LOG = logging.getLogger("glimpse_ros.runtime")
# Settings a running recognizer can take without rebuilding anything (``reconfigure``).
LIVE_FIELDS = ("stride", "max_gap_s", "stamp_jitter_s", "smoothing", "top_k")


class Recognizer:
    """Turn a stream of RGB frames into per-frame activity predictions and glimpses."""

    def __init__(self, config: RecognizerConfig | None = None,
                 checkpoint_path: str | Path | None = None) -> None:
        """Load the model and build the backbone engine.

        Args:
            config: runtime settings (defaults if None).
            checkpoint_path: checkpoint file or model bundle directory; None uses
                ``config.model_path`` ("" = shipped demo model).

        Raises:
            ValueError: missing/invalid model or labels file, ``stride`` > the model's frames.
            EngineUnavailable: the requested backend cannot run here.
        """
        self.config = config = config or RecognizerConfig()
        path = resolve_model_path(checkpoint_path if checkpoint_path is not None
                                  else config.model_path)
        source = load_model_source(path)  # a checkpoint (torch) or a bundle (ONNX, no torch)
        self.model_path = path
        self.model_config = cfg = source.config
        if cfg.glimpse_locations == "oracle" or cfg.global_fusion:
            # Ablation models: oracle boxes come from ground-truth joints, and the global
            # fusion's logits need the whole clip's pooled map, which the head step never sees.
            raise ValueError(f"{path}: an ablation model (glimpse_locations "
                             f"{cfg.glimpse_locations!r}, global_fusion {cfg.global_fusion}) "
                             "cannot run in the recognizer")
        self.labels = (load_labels(config.labels_path, cfg.num_classes) if config.labels_path
                       else list(source.labels))
        self.streaming = cfg.causal  # the model file decides: causal models step frame by frame
        if config.stride > cfg.frames and not self.streaming:
            raise ValueError(f"recognizer.stride: {config.stride} exceeds the model's window of "
                             f"{cfg.frames} frames (frames would be skipped)")
        # Engine threads: the configured count, or (0) one core left for the rest of the
        # process (executor, camera, consumer): see shared_process_threads. torch's count is
        # process-wide: the torch engine runs with it, the eager head switches to HEAD_THREADS.
        self.engine_threads = config.num_threads or shared_process_threads()
        if not source.is_bundle:  # a bundle runs without torch
            import torch

            torch.set_num_threads(self.engine_threads)
        self.frames = cfg.frames
        input_shape = (1, 3, cfg.frames, cfg.crop_size, cfg.crop_size)
        if self.streaming:
            input_shape = (1, 3, cfg.crop_size, cfg.crop_size)  # one frame per step
        name, why = select_backend(config.backend)
        self.engine = build_backbone_engine(
            dataclasses.replace(config, num_threads=self.engine_threads), name, source,
            input_shape, step=self.streaming)
        self.backend_name = self.engine.name
        self.head_runner, head_why = build_head_runner(
            dataclasses.replace(config, num_threads=self.engine_threads), source,
            self.backend_name)
        self.head = getattr(self.head_runner, "head", None)  # the eager head, if that runs
        mode = ("causal model: streamed frame by frame" if self.streaming else
                f"T={cfg.frames} stride={config.stride} head_mode={config.head_mode}")
        LOG.info("recognizer: %s, %d classes, backend %s (%s), %s, head_precision=%s, head on "
                 "%s (%s), %d engine threads%s", path.name, cfg.num_classes, self.backend_name,
                 why, mode, config.head_precision, self.head_runner.name, head_why,
                 self.engine_threads, "" if config.num_threads else " (num_threads 0: cores - 1)")
        self._buffer = FrameBuffer(cfg.frames, (3, cfg.crop_size, cfg.crop_size))
        self._frame = np.empty((3, cfg.crop_size, cfg.crop_size), np.float32)  # (3, crop, crop)
        self._smoother = EmaSmoother(config.smoothing)
        self._backbone_state = None  # causal models: the step engine's state
        self._pending = 0
        self._preprocess_ms = 0.0
        self._last_stamp: float | None = None
        self._last_hw: tuple[int, int] | None = None
        self.timings: dict[str, float] = {}
        self.counters: Counter[str] = Counter()
        self.reset_reasons: Counter[ResetKind] = Counter()  # one key per kind: bounded
        self.last_reset_kind: ResetKind | None = None
        self.last_reset_reason = ""
        self._reset_log = ResetLog(LOG)

    def reset(self, kind: ResetKind | str = ResetKind.REQUESTED, message: str = "") -> None:
        """Start a new sequence: empty the buffer, the head and backbone states, the smoothing.

        Args:
            kind: why; free text (not a :class:`ResetKind` value) counts as ``REQUESTED`` with
                the text as message.
            message: details for the log and ``last_reset_reason``.
        """
        kind, text = reset_kind(kind)
        message = message or text or kind.value
        self._buffer.clear()
        self.head_runner.reset()
        self._backbone_state = None
        self._smoother.reset()
        self._pending = 0
        self._preprocess_ms = 0.0
        self._last_stamp = None
        self._last_hw = None
        self.counters["resets"] += 1
        self.reset_reasons[kind] += 1
        self.last_reset_kind = kind
        self.last_reset_reason = message
        self._reset_log.log(kind, message)

    def reconfigure(self, config: RecognizerConfig) -> None:
        """Apply a config that differs only in LIVE_FIELDS; it takes effect from the next frame.

        Raises:
            ValueError: another field changed (it needs a new Recognizer), or ``stride`` exceeds
                the model's window (windowed models only).
        """
        fixed = [f.name for f in dataclasses.fields(config) if f.name not in LIVE_FIELDS
                 and getattr(config, f.name) != getattr(self.config, f.name)]
        if fixed:
            raise ValueError(f"recognizer.{fixed[0]}: cannot change on a running recognizer "
                             f"(live: {', '.join(LIVE_FIELDS)})")
        if config.stride > self.frames and not self.streaming:  # causal models: no window
            raise ValueError(f"recognizer.stride: {config.stride} exceeds the model's window of "
                             f"{self.frames} frames (frames would be skipped)")
        self.config = config
        self._smoother.smoothing = config.smoothing

    def push(self, frame_rgb: np.ndarray, stamp: float) -> list[FrameResult]:
        """Add one frame; return results for the frames stepped (empty until a window is due).

        Args:
            frame_rgb: ``(H, W, 3)`` uint8 RGB image.
            stamp: capture time in seconds.

        Raises:
            ValueError: bad frame (rank, dtype, channel count, zero size) or non-finite stamp.
        """
        start = time.perf_counter()
        check_frame(frame_rgb)
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"stamp must be finite, got {stamp}")
        hw = (int(frame_rgb.shape[0]), int(frame_rgb.shape[1]))
        decision = decide(self._last_stamp, stamp, self.config.max_gap_s,
                          self.config.stamp_jitter_s)
        if decision.action is Action.DROP:  # small backwards jitter: skip the frame, keep going
            self.counters["jitter_dropped"] += 1
            return []
        if decision.action is Action.RESET:
            self.reset(decision.kind, decision.message)
        elif self._last_hw is not None and hw != self._last_hw:
            self.counters["size_changes"] += 1  # resized to the model input like every frame
        cfg = self.model_config
        x = preprocess_frame(frame_rgb, cfg.resize_size, cfg.crop_size, out=self._frame)
        self._buffer.push(x, stamp, hw)
        self._last_stamp, self._last_hw = stamp, hw
        self._pending += 1
        self.counters["frames"] += 1
        self._preprocess_ms += (time.perf_counter() - start) * 1e3
        if self.streaming:
            return self._run_step(x)
        if not self._buffer.full or self._pending < self.config.stride:
            return []
        return self._run_window()

    def _run_window(self) -> list[FrameResult]:
        """Run the backbone on the buffer and step the head over the pending frames."""
        t0 = time.perf_counter()
        z, c = self.engine.run(self._buffer.clip())  # Z (1, Dz, T, h, w), c (1, T, Dc)
        t1 = time.perf_counter()
        first = self.frames - self._pending  # window positions first..T-1 are new
        window_probs = None
        if self.config.head_mode == "clip":  # the whole window from a fresh state
            self.head_runner.reset()
            outs = self.head_runner.run(z, c)
            window_probs = softmax(np.mean([o.logits for o in outs], axis=0))  # (N,)
            steps = list(enumerate(outs))[first:]
        else:
            steps = list(zip(range(first, self.frames), self.head_runner.run(
                z[:, :, first:], c[:, first:])))
        t2 = time.perf_counter()
        return self._finish(self._results(steps, window_probs), t0, t1, t2)

    def _run_step(self, x: np.ndarray) -> list[FrameResult]:
        """Causal model: one backbone step and one head step for the frame just pushed."""
        t0 = time.perf_counter()
        z, c, self._backbone_state = self.engine.step(x[None], self._backbone_state)
        t1 = time.perf_counter()  # z (1, Dz, h, w), c (1, Dc)
        out = self.head_runner.run(z[:, :, None], c[:, None])  # one frame
        t2 = time.perf_counter()
        return self._finish(self._results([(-1, out[0])], None), t0, t1, t2)  # -1: newest

    def _finish(self, results: list[FrameResult], t0: float, t1: float,
                t2: float) -> list[FrameResult]:
        """Record timings (backbone t0..t1, head t1..t2) and counters of one backbone run."""
        self.timings = {"preprocess": self._preprocess_ms, "backbone": (t1 - t0) * 1e3,
                        "head": (t2 - t1) * 1e3, "frames": float(len(results))}
        self.counters["windows"] += 1
        self.counters["stepped_frames"] += len(results)
        self._pending = 0
        self._preprocess_ms = 0.0
        return results

    def _results(self, steps: list[tuple[int, HeadFrame]],
                 window_probs: np.ndarray | None) -> list[FrameResult]:
        """Convert head outputs at window positions into ``FrameResult`` objects."""
        cfg = self.model_config
        stamps, sizes = self._buffer.stamps(), self._buffer.sizes()
        results = []
        for i, out in steps:
            probs = softmax(out.logits)  # (N,)
            smoothed = self._smoother.update(probs)
            ranked = top_k(smoothed, self.labels, self.config.top_k)
            glimpses = out.glimpses  # (G, 4)
            boxes = glimpse_box_pixels(glimpses, tuple(sizes[i]), cfg.resize_size, cfg.crop_size)
            results.append(FrameResult(stamp=float(stamps[i]), glimpses=glimpses,
                                       boxes=boxes.astype(np.float32), probs=probs,
                                       top_k=ranked, label=ranked[0][0],
                                       window_index=self.counters["windows"],
                                       window_probs=window_probs))
        return results


__all__ = ["FrameResult", "HEAD_THREADS", "Recognizer"]
