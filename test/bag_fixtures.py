"""Write small ROS 2 bags with rosbags (no ROS needed): images, compressed images, CameraInfo."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

H, W = 24, 32
K = [40.0, 0.0, 15.5, 0.0, 41.0, 11.5, 0.0, 0.0, 1.0]


@dataclass
class BagContent:
    """What was written: RGB frames and stamps per image topic."""

    raw_rgb: list[np.ndarray]
    raw_stamps: list[float]
    compressed_rgb: list[np.ndarray]
    compressed_stamps: list[float]


def frame(i: int, offset: int = 0) -> np.ndarray:
    """A distinct (H, W, 3) uint8 RGB frame: gradients plus a frame-dependent offset."""
    y, x = np.mgrid[0:H, 0:W]
    return np.stack([(x * 7 + i * 20 + offset) % 256, (y * 9 + i * 3) % 256,
                     np.full((H, W), (50 + 40 * i) % 256)], axis=2).astype(np.uint8)


def write_bag(path: Path, storage: str, n: int = 5, with_compressed: bool = True) -> BagContent:
    """Write ``/cam/image_raw`` (bgr8), ``/cam/camera_info`` and ``/cam/image_raw/compressed``."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    types = ts.types
    Image, Compressed = types["sensor_msgs/msg/Image"], types["sensor_msgs/msg/CompressedImage"]
    Info, Roi = types["sensor_msgs/msg/CameraInfo"], types["sensor_msgs/msg/RegionOfInterest"]
    Header, Time = types["std_msgs/msg/Header"], types["builtin_interfaces/msg/Time"]
    String = types["std_msgs/msg/String"]

    def header(t: float) -> object:
        sec = int(t)
        return Header(stamp=Time(sec=sec, nanosec=int(round((t - sec) * 1e9))),
                      frame_id="cam_optical")

    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    content = BagContent([], [], [], [])
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        c_raw = writer.add_connection("/cam/image_raw", Image.__msgtype__, typestore=ts)
        c_info = writer.add_connection("/cam/camera_info", Info.__msgtype__, typestore=ts)
        c_other = writer.add_connection("/chatter", String.__msgtype__, typestore=ts)
        c_comp = (writer.add_connection("/cam/image_raw/compressed", Compressed.__msgtype__,
                                        typestore=ts) if with_compressed else None)
        for i in range(n):
            t = 100.0 + 0.1 * i
            rec_ns = int(5e9) + i * 100_000_000  # receive time: 5 s + i/10
            info = Info(header=header(t), height=H, width=W, distortion_model="plumb_bob",
                        d=np.zeros(5), k=np.array(K), r=np.eye(3).ravel(),
                        p=np.array([40.0, 0, 15.5, 0, 0, 41.0, 11.5, 0, 0, 0, 1, 0]),
                        binning_x=0, binning_y=0,
                        roi=Roi(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            writer.write(c_info, rec_ns, ts.serialize_cdr(info, Info.__msgtype__))
            rgb = frame(i)
            bgr = np.ascontiguousarray(rgb[..., ::-1])
            msg = Image(header=header(t), height=H, width=W, encoding="bgr8", is_bigendian=0,
                        step=W * 3, data=bgr.reshape(-1))
            writer.write(c_raw, rec_ns + 1, ts.serialize_cdr(msg, Image.__msgtype__))
            writer.write(c_other, rec_ns + 2,
                         ts.serialize_cdr(String(data=f"hello {i}"), String.__msgtype__))
            content.raw_rgb.append(rgb)
            content.raw_stamps.append(t)
            if c_comp is not None:
                tc = 200.0 + 0.1 * i
                rgb_c = frame(i, offset=5)
                png = cv2.imencode(".png", rgb_c[..., ::-1])[1].reshape(-1)
                comp = Compressed(header=header(tc), format="png", data=png)
                writer.write(c_comp, rec_ns + 3, ts.serialize_cdr(comp, Compressed.__msgtype__))
                content.compressed_rgb.append(rgb_c)
                content.compressed_stamps.append(tc)
    return content


def image_cdr(i: int, t: float) -> bytes:
    """CDR of a bgr8 ``sensor_msgs/Image`` of :func:`frame` ``i`` stamped ``t`` seconds."""
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    types = ts.types
    Image, Header = types["sensor_msgs/msg/Image"], types["std_msgs/msg/Header"]
    sec = int(t)
    header = Header(stamp=types["builtin_interfaces/msg/Time"](
        sec=sec, nanosec=int(round((t - sec) * 1e9))), frame_id="cam_optical")
    bgr = np.ascontiguousarray(frame(i)[..., ::-1])
    msg = Image(header=header, height=H, width=W, encoding="bgr8", is_bigendian=0, step=W * 3,
                data=bgr.reshape(-1))
    return ts.serialize_cdr(msg, Image.__msgtype__)


def string_cdr(text: str) -> bytes:
    """CDR of a ``std_msgs/String`` (another type's bytes under the Image type name)."""
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    return ts.serialize_cdr(ts.types["std_msgs/msg/String"](data=text), "std_msgs/msg/String")


def write_raw_bag(path: Path, storage: str, payloads: list[bytes], times_ns: list[int],
                  msgtype: str = "sensor_msgs/msg/Image", topic: str = "/cam/image_raw") -> None:
    """A bag whose ``topic`` of type ``msgtype`` holds ``payloads`` as written, unchecked."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conn = writer.add_connection(topic, msgtype, typestore=ts)
        for raw, t in zip(payloads, times_ns):
            writer.write(conn, t, raw)
