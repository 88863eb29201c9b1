"""Run the recognizer node in its own process and talk to it over real DDS (reliability runs).

The node process gets a private ``ROS_DOMAIN_ID`` and localhost-only discovery; its output goes to
a log file (a pipe nobody reads could fill up and block it). The :class:`Probe` lives in the
calling process on its own rclpy context: it publishes frames with a *reliable* publisher (a
best-effort subscriber accepts it) and records labels and the node's diagnostics.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from glimpse_ros.ros.discovery import local_env

REPO = Path(__file__).resolve().parents[2]
RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200,
                      reliability=ReliabilityPolicy.RELIABLE)


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """SIGINT (clean rclpy shutdown), then kill after ``timeout``; return the exit code."""
    if proc.poll() is None:
        proc.send_signal(2)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def node_env(domain: int, threads: int = 1) -> dict[str, str]:
    """Environment of a node process: private domain, localhost discovery, few threads."""
    return local_env(domain, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")


def make_checkpoint(path: Path, num_classes: int = 4, **model: Any) -> Path:
    """Save a random small GlimpseClouds model (``ModelConfig.small(**model)``) to ``path``."""
    import torch

    from glimpse_ros.config import ModelConfig
    from glimpse_ros.model.checkpoint import save_checkpoint
    from glimpse_ros.model.glimpse_clouds import GlimpseClouds

    torch.manual_seed(0)
    cfg = ModelConfig.small(num_classes=num_classes, **model)
    return save_checkpoint(path, GlimpseClouds(cfg), [f"class{i}" for i in range(num_classes)])


class NodeProcess:
    """``python -m glimpse_ros.recognizer`` with ``-p`` parameters, output in ``log_path``."""

    def __init__(self, name: str, domain: int, log_path: Path, params: dict[str, Any],
                 threads: int = 1) -> None:
        """Start the process (returns at once; start-up takes seconds)."""
        self.name, self.log_path = name, Path(log_path)
        cmd = [sys.executable, "-m", "glimpse_ros.recognizer", "--ros-args", "-r",
               f"__node:={name}"]
        for key, value in params.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            cmd += ["-p", f"{key}:={text}"]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=node_env(domain, threads),
                                     stdout=self._log, stderr=subprocess.STDOUT, text=True)

    @property
    def pid(self) -> int:
        """Process id."""
        return self.proc.pid

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.proc.poll() is None

    def log(self) -> str:
        """Everything the process printed so far."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def rss_mb(self) -> float:
        """Resident set size of the process in MB (NaN once it ended)."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        return float("nan")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGINT (clean rclpy shutdown), then kill after ``timeout``; return the exit code."""
        code = stop_process(self.proc, timeout)
        self._log.close()
        return code


class Probe:
    """Publishes frames; records the node's labels and diagnostics (own rclpy context)."""

    def __init__(self, domain: int, node_name: str, compressed: bool = False,
                 image_topic: str = "image") -> None:
        """Create the probe and spin it in a background thread."""
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(f"probe_{node_name}", context=self.context)
        self.node_name = node_name
        self.labels: list[str] = []
        self.diag: dict[str, str] = {}
        self.level = -1
        self.message = ""
        self.history: list[tuple[float, int, str]] = []  # (monotonic time, level, message)
        self._lock = threading.Lock()
        if compressed:
            self.pub = self.node.create_publisher(CompressedImage, f"{image_topic}/compressed",
                                                  RELIABLE)
        else:
            self.pub = self.node.create_publisher(Image, image_topic, RELIABLE)
        self.node.create_subscription(String, f"/{node_name}/label", self._on_label, 1000)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 100)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_label(self, msg: String) -> None:
        with self._lock:
            self.labels.append(msg.data)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.hardware_id == f"/{self.node_name}":
                with self._lock:
                    self.diag = {kv.key: kv.value for kv in status.values}
                    self.level = int.from_bytes(status.level, "little") \
                        if isinstance(status.level, bytes) else int(status.level)
                    self.message = status.message
                    self.history.append((time.monotonic(), self.level, status.message))

    def value(self, key: str, default: float = 0.0) -> float:
        """Numeric diagnostics entry ``key``; ``default`` until the node reported it."""
        with self._lock:
            return float(self.diag.get(key, default))

    def seen(self) -> int:
        """Messages the node's subscription callback handled, accepted or rejected.

        ``messages_received`` counts each once, also a compressed frame refused later while
        decoding on the inference thread (older nodes: received + rejected).
        """
        with self._lock:
            if "messages_received" in self.diag:
                return int(float(self.diag["messages_received"]))
        return int(self.value("frames_received") + self.value("rejected_frames"))

    def publish(self, msg: Any) -> None:
        """Stamp ``msg`` with the probe's clock and publish it."""
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.pub.publish(msg)

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str,
                 poll: float = 0.02) -> float:
        """Poll ``predicate`` until true; return the seconds waited, or raise naming ``what``."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if predicate():
                return time.monotonic() - start
            time.sleep(poll)
        raise TimeoutError(f"timed out after {timeout} s waiting for {what}; "
                           f"diagnostics: {self.diag}")

    def close(self) -> None:
        """Shut the probe's context down."""
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def run_on_tiny_node(tmp: Path, domain: int, name: str, params: dict[str, Any],
                     image_topic: str, run: Callable[[Probe, NodeProcess], dict[str, Any]]
                     ) -> dict[str, Any]:
    """Start a node process on a small random model, run ``run(probe, node)``, stop both.

    The report gets ``seconds`` (from the node's start). ``params`` are added to the shared
    ones (torch backend, 1 thread, stride 2, ``image_topic``).
    """
    tmp.mkdir(parents=True, exist_ok=True)
    ckpt = make_checkpoint(tmp / "tiny.safetensors", frames=8, crop_size=32, resize_size=40)
    start = time.monotonic()
    node = NodeProcess(name, domain, tmp / f"{name}.log",
                       {"model_path": ckpt, "backend": "torch", "num_threads": 1, "stride": 2,
                        "image_topic": image_topic, **params})
    probe = Probe(domain, node.name, image_topic=image_topic)
    try:
        report = run(probe, node)
        report["seconds"] = round(time.monotonic() - start, 1)
        return report
    finally:
        probe.close()
        node.stop()


__all__ = ["NodeProcess", "Probe", "RELIABLE", "make_checkpoint", "node_env", "run_on_tiny_node"]
