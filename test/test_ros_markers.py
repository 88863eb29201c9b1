"""Glimpse markers (image plane and camera frame), overlay drawing, diagnostics, frame queue."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("visualization_msgs.msg")
from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from sensor_msgs.msg import CameraInfo  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from visualization_msgs.msg import Marker  # noqa: E402

from glimpse_ros.ros.diagnostics import NodeStats, status_values  # noqa: E402
from glimpse_ros.ros.frame_queue import DropOldestQueue  # noqa: E402
from glimpse_ros.ros.markers import Projection, glimpse_colour, glimpse_markers  # noqa: E402
from glimpse_ros.ros.overlay import draw_overlay  # noqa: E402

BOXES = np.array([[10.0, 20.0, 50.0, 60.0], [0.0, 0.0, 159.0, 119.0], [70.0, 5.0, 90.0, 25.0]])
W, H = 160, 120


def header() -> Header:
    """Header of a source frame."""
    h = Header(frame_id="camera_optical")
    h.stamp.sec, h.stamp.nanosec = 1234, 567
    return h


def test_image_plane_markers() -> None:
    """Image plane markers."""
    arr = glimpse_markers(BOXES, "wave (0.80)", header(), Projection.image_plane(W, "plane"), 0.5)
    boxes = [m for m in arr.markers if m.ns == "glimpse_box"]
    centres = [m for m in arr.markers if m.ns == "glimpse_centre"]
    texts = [m for m in arr.markers if m.type == Marker.TEXT_VIEW_FACING]
    assert len(boxes) == len(centres) == 3 and len(texts) == 1
    assert texts[0].text == "wave (0.80)"
    for m in arr.markers:
        assert m.header.frame_id == "plane"
        assert (m.header.stamp.sec, m.header.stamp.nanosec) == (1234, 567)
        assert m.lifetime.nanosec == 500_000_000
    for g, (m, c) in enumerate(zip(boxes, centres)):
        assert m.type == Marker.LINE_STRIP and m.id == g and len(m.points) == 5
        assert m.points[0] == m.points[-1]
        xs = [p.x for p in m.points]
        ys = [p.y for p in m.points]
        x0, y0, x1, y1 = BOXES[g] / W
        assert min(xs) == pytest.approx(x0) and max(xs) == pytest.approx(x1)
        assert min(ys) == pytest.approx(y0) and max(ys) == pytest.approx(y1)
        assert c.type == Marker.SPHERE
        assert c.pose.position.x == pytest.approx((x0 + x1) / 2)
        rgb = glimpse_colour(g)
        assert (m.color.r, m.color.g, m.color.b) == pytest.approx(tuple(v / 255 for v in rgb))
    colours = {(m.color.r, m.color.g, m.color.b) for m in boxes}
    assert len(colours) == 3  # one colour per glimpse index


def test_camera_frame_markers_back_project_with_k() -> None:
    """Camera frame markers back project with k."""
    info = CameraInfo(width=W, height=H)
    info.header.frame_id = "info_frame"
    fx, fy, cx, cy = 200.0, 180.0, 80.0, 60.0
    info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    proj = Projection.from_camera_info(info, depth=2.0, frame_id="camera_optical")
    arr = glimpse_markers(BOXES, "x", header(), proj)
    box = arr.markers[0]
    assert box.header.frame_id == "camera_optical"
    for p, (u, v) in zip(box.points, [(10, 20), (50, 20), (50, 60), (10, 60)]):
        assert p.z == pytest.approx(2.0)
        # Re-projecting the 3D point with K gives back the pixel.
        assert fx * p.x / p.z + cx == pytest.approx(u)
        assert fy * p.y / p.z + cy == pytest.approx(v)
    assert Projection.from_camera_info(info, 1.0).frame_id == "info_frame"
    # frames at half the calibrated resolution: K scales with them
    half = Projection.from_camera_info(info, 2.0, image_size=(W // 2, H // 2))
    p = half.point(10.0, 20.0)
    assert fx / 2 * p.x / p.z + cx / 2 == pytest.approx(10.0)
    assert fy / 2 * p.y / p.z + cy / 2 == pytest.approx(20.0)
    info.k = [0.0] * 9
    with pytest.raises(ValueError):
        Projection.from_camera_info(info, 1.0)


def test_markers_reject_bad_boxes() -> None:
    """Markers reject bad boxes."""
    with pytest.raises(ValueError):
        glimpse_markers(np.zeros((3, 3)), "x", header(), Projection.image_plane(W, "p"))


def test_overlay_draws_boxes_in_glimpse_colours() -> None:
    """Overlay draws boxes in glimpse colours."""
    img = np.zeros((H, W, 3), np.uint8)
    out = draw_overlay(img, BOXES[:1], "label", [("label", 0.9), ("other", 0.1)])
    assert out.shape == img.shape and not img.any()  # input untouched
    x0, y0, x1, y1 = BOXES[0].astype(int)
    assert tuple(out[y1, (x0 + x1) // 2]) == glimpse_colour(0)  # bottom edge of the box
    assert out[:20, :60].max() > 150  # white label text in the top-left corner
    with pytest.raises(ValueError):
        draw_overlay(np.zeros((H, W), np.uint8), BOXES, "x")


def test_stats_rates_latency_and_stale() -> None:
    """Stats rates latency and stale."""
    now = [100.0]
    stats = NodeStats(stale_timeout_s=2.0, window_s=5.0, clock=lambda: now[0])
    for i in range(10):
        now[0] += 0.1
        stats.record_input()
        if i % 2:
            stats.record_processed(0.01 * i)
    stats.record_dropped(3)
    stats.record_rejected("truncated", "short")
    stats.record_rejected("truncated", "short")
    stats.record_rejected("encoding", "bad")
    values = stats.snapshot()
    assert values["frames_received"] == 10 and values["frames_processed"] == 5
    assert values["dropped_frames"] == 3 and values["rejected_frames"] == 3
    assert values["rejected_truncated"] == 2 and values["rejected_encoding"] == 1
    assert values["latency_p50_ms"] == pytest.approx(50.0)
    assert values["input_rate_hz"] == pytest.approx(10.0)
    status = stats.status("hw")
    assert status.level == DiagnosticStatus.OK
    assert status_values(status)["dropped_frames"] == "3"
    now[0] += 2.5
    assert stats.status().level == DiagnosticStatus.WARN
    assert "stale" in stats.status().message
    for _ in range(20):
        now[0] += 0.1
        stats.record_lost(1)
    assert stats.snapshot()["lost_in_transport"] == 20
    assert "lost in transport" in stats.status().message


def test_drop_oldest_queue() -> None:
    """Drop oldest queue."""
    q: DropOldestQueue[int] = DropOldestQueue(2)
    assert q.put(1) == 0 and q.put(2) == 0 and q.put(3) == 1
    assert q.get(0) == 2 and q.get(0) == 3 and q.get(0.01) is None
    q.put(4)
    assert q.clear() == 1 and len(q) == 0
    with pytest.raises(ValueError):
        DropOldestQueue(0)
