"""Image frames of a ROS 2 bag (sqlite3 or mcap storage) read with ``rosbags``, without ROS.

The bag's ``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage`` topic is decoded like the node
decodes it (:mod:`glimpse_ros.sources.image_decoding`) and keeps its original header stamp and
frame id. CameraInfo messages recorded on the image topic's sibling ``camera_info``
(image_transport's convention: ``/cam/image_raw`` -> ``/cam/camera_info``) go with the frames that
follow them.

A message that is not a decodable frame (bytes that are not CDR, another type's CDR under the
image type's name, an image the node would reject) is skipped with a warning and counted per
reason in :attr:`BagSource.rejections`; so is a CameraInfo that cannot be deserialised. The frame
rate comes from the header stamps (:mod:`glimpse_ros.sources.bag_rate`), not from
``metadata.yaml``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from glimpse_ros.sources.bag_rate import SAMPLE, estimate_fps
from glimpse_ros.sources.frame import Frame
from glimpse_ros.sources.image_decoding import (DEFAULT_MAX_PIXELS, ImageConversionError,
                                                compressed_to_rgb, image_to_rgb)
from glimpse_ros.sources.rejections import Rejections

LOG = logging.getLogger(__name__)
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
BAG_SUFFIXES = (".mcap", ".db3")


def is_bag(path: str | Path) -> bool:
    """True for a bag folder (holding ``metadata.yaml``) or a storage file inside one."""
    p = Path(path).expanduser()
    if p.is_dir():
        return (p / "metadata.yaml").is_file()
    return p.is_file() and p.suffix in BAG_SUFFIXES and (p.parent / "metadata.yaml").is_file()


def camera_info_sibling(image_topic: str) -> str:
    """image_transport's CameraInfo topic for ``image_topic`` (``.../image_raw[/compressed]``)."""
    base = image_topic.removesuffix("/compressed")
    namespace = base.rsplit("/", 1)[0] if "/" in base else ""
    return f"{namespace}/camera_info"


class BagSource:
    """The frames of one image topic of a ROS 2 bag, in recording order."""

    def __init__(self, path: str | Path, size: tuple[int, int] | None = None, topic: str = "",
                 camera_info_topic: str = "", max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        """Open the bag and choose its topics.

        Args:
            path: bag folder (with ``metadata.yaml``) or a ``.mcap`` / ``.db3`` file inside it.
            size: (width, height) to resize every frame to; None keeps the recorded size.
            topic: image topic; "" = the bag's image topic with the most messages.
            camera_info_topic: CameraInfo topic; "" = the image topic's sibling ``camera_info``
                when recorded, else the bag's only CameraInfo topic, else none.
            max_pixels: frames over this many pixels are skipped (as the node rejects them).

        Raises:
            ValueError: not a readable bag, no such topic, or no image topic (names them).
        """
        from rosbags.rosbag2 import Reader
        from rosbags.typesys import Stores, get_typestore

        p = Path(path).expanduser()
        self.path = p if p.is_dir() else p.parent
        self.size, self.max_pixels = size, max_pixels
        self.typestore = get_typestore(Stores.LATEST)
        self._reader_cls = Reader
        try:
            with Reader(self.path) as reader:
                connections = list(reader.connections)
        except Exception as err:  # rosbags raises its own error types per storage plugin
            raise ValueError(f"{self.path}: not a readable ROS 2 bag ({err})") from err
        images = {}
        for c in connections:
            if c.msgtype in (IMAGE, COMPRESSED):
                images[c.topic] = (c.msgtype, images.get(c.topic, (None, 0))[1] + c.msgcount)
        infos = sorted({c.topic for c in connections if c.msgtype == CAMERA_INFO})
        if topic and topic not in images:
            raise ValueError(f"{self.path}: no Image/CompressedImage topic {topic!r} "
                             f"(image topics: {', '.join(sorted(images)) or 'none'})")
        if not images:
            topics = ", ".join(sorted({c.topic for c in connections}))
            raise ValueError(f"{self.path}: the bag has no sensor_msgs Image or CompressedImage "
                             f"topic (topics: {topics})")
        # most messages first; on a tie prefer raw images to their compressed copy
        self.topic = topic or max(images, key=lambda t: (images[t][1], images[t][0] == IMAGE, t))
        self.msgtype, self.count = images[self.topic]
        if camera_info_topic and camera_info_topic not in infos:
            raise ValueError(f"{self.path}: no CameraInfo topic {camera_info_topic!r} "
                             f"(CameraInfo topics: {', '.join(infos) or 'none'})")
        sibling = camera_info_sibling(self.topic)
        self.camera_info_topic = (camera_info_topic or (sibling if sibling in infos else "")
                                  or (infos[0] if len(infos) == 1 else ""))
        samples = self._sample()
        if len(samples) < SAMPLE:  # the whole topic was read: its true message count
            self.count = len(samples)
        self.fps = estimate_fps(samples, f"{self.path} {self.topic}")
        self.rejections = Rejections(LOG)

    @property
    def rejected(self) -> int:
        """Messages of the image topic skipped so far."""
        return self.rejections.total

    def _sample(self) -> list[tuple[int, bytes]]:
        """(receive time ns, raw CDR) of the image topic's first :data:`SAMPLE` messages."""
        samples: list[tuple[int, bytes]] = []
        try:
            with self._reader_cls(self.path) as reader:
                connections = [c for c in reader.connections if c.topic == self.topic]
                for _, timestamp, raw in reader.messages(connections=connections):
                    samples.append((timestamp, bytes(raw[:16])))
                    if len(samples) >= SAMPLE:
                        break
        except Exception as err:  # noqa: BLE001 - storage plugins raise their own types
            raise ValueError(f"{self.path}: cannot read the messages of {self.topic} "
                             f"({err})") from err
        return samples

    def items(self) -> Iterator[Frame]:
        """Yield the frames of the image topic with their stamps, frame ids and CameraInfo.

        Messages that cannot be decoded are skipped with a warning and counted in
        :attr:`rejections`; a storage error part-way (a truncated file) ends the frames there,
        counted as ``storage``.
        """
        info = None
        index = 0
        with self._reader_cls(self.path) as reader:
            wanted = {self.topic, self.camera_info_topic}
            connections = [c for c in reader.connections if c.topic in wanted]
            messages = reader.messages(connections=connections)
            while True:
                try:
                    conn, timestamp, raw = next(messages)
                except StopIteration:
                    return
                except Exception as err:  # noqa: BLE001 - storage plugins raise their own types
                    self.rejections.add("storage", f"{self.path} after message {index}",
                                        f"the storage cannot be read further ({err})")
                    return
                where = f"{self.path} message {index} of {conn.topic}"
                try:
                    msg = self.typestore.deserialize_cdr(raw, conn.msgtype)
                except Exception as err:  # noqa: BLE001 - rosbags' SerdeError and friends
                    if conn.msgtype != CAMERA_INFO:
                        self.rejections.add("not_cdr", where,
                                            f"not a {conn.msgtype} in CDR ({err})")
                        index += 1
                    else:
                        LOG.warning("skipping %s: not a %s in CDR (%s)", where, conn.msgtype, err)
                    continue
                if conn.msgtype == CAMERA_INFO:
                    info = msg
                    continue
                frame = self._frame(msg, timestamp, index, where, info)
                index += 1
                if frame is not None:
                    yield frame

    def _frame(self, msg, timestamp: int, index: int, where: str, info) -> Frame | None:
        """The decoded frame of one deserialised image message; None (counted) if rejected."""
        try:
            rgb = (compressed_to_rgb(msg, self.max_pixels) if msg.__msgtype__ == COMPRESSED
                   else image_to_rgb(msg, self.max_pixels))
        except ImageConversionError as err:
            self.rejections.add(err.reason, where, str(err))
            return None
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        if stamp <= 0.0:  # no (or a pre-epoch) stamp recorded: the bag's receive time
            stamp = timestamp * 1e-9
        return Frame(rgb=self._resize(rgb), index=index, stamp=stamp,
                     frame_id=msg.header.frame_id, camera_info=info)

    def frames(self) -> Iterator[np.ndarray]:
        """Yield (H, W, 3) uint8 RGB frames once through the topic."""
        for frame in self.items():
            yield frame.rgb

    def _resize(self, rgb: np.ndarray) -> np.ndarray:
        if self.size is not None and (rgb.shape[1], rgb.shape[0]) != self.size:
            return cv2.resize(rgb, self.size, interpolation=cv2.INTER_LINEAR)
        return rgb
