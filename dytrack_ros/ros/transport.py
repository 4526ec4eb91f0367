"""Notices camera frames lost between the publisher and us, and says once how to fix it.

A camera driver publishing 640x480 frames through Fast DDS's default 512 KB shared-memory segment (or over a
congested link) loses most of them silently (best-effort QoS). DDS counts the samples of a publisher that never
reached this subscription (the message-lost event, SAMPLE_LOST in DDS). It is the right count: gaps in the
sequence numbers we take would also count the frames our own depth-1 image queue replaced while the node was busy,
which is deliberate (newest frame wins) and was reported as transport loss under CPU load.
"""
from __future__ import annotations

import collections
from typing import Callable, Optional

FIX = ("set FASTDDS_DEFAULT_PROFILES_FILE=<share>/dytrack_ros/config/fastdds_large_data.xml on the camera's "
       "publisher (or FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA on both sides); see README 'Camera-sized images'")


def sample_id(info: Optional[dict]):
    """(publisher GID, sequence number) that DDS gave a sample, from rclpy's MessageInfo; None when the rmw does
    not report sequence numbers."""
    seq = (info or {}).get("publication_sequence_number")
    return (str(info.get("publisher_gid")), seq) if seq else None


class TransportWatch:
    """Warns once when more than `max_lost_share` of the camera's frames were lost before reaching us."""

    def __init__(self, warn: Callable[[str], None], min_samples: int = 30, max_lost_share: float = 0.2):
        self.warn, self.min_samples, self.max_lost_share = warn, min_samples, max_lost_share
        self.received = self.lost = 0
        self.warned = False

    def received_frame(self) -> None:
        self.received += 1
        self._check()

    def on_message_lost(self, status) -> None:
        """The rmw's message-lost event (rclpy QoSMessageLostInfo): total_count is every sample lost so far."""
        self.lost = int(status.total_count)
        self._check()

    def _check(self) -> None:
        total = self.received + self.lost
        if not self.warned and total >= self.min_samples and self.lost > self.max_lost_share * total:
            self.warned = True
            # (their size is unknown: the frames that do arrive may be small ones from the same publisher)
            self.warn(f"{self.lost} of {total} camera frames were lost in transport before reaching this node: {FIX}")


class DuplicateFilter:
    """One message that reached us through two subscriptions of the same topic (the init topic has a transient-local
    one for latched boxes and a volatile one for ordinary publishers) is seen once: DDS names every sample by its
    publisher and sequence number."""

    def __init__(self, size: int = 32):
        self._seen = collections.deque(maxlen=size)

    def first_time(self, info: Optional[dict]) -> bool:
        key = sample_id(info)
        if key is None:
            return True                  # this rmw does not say: accept
        if key in self._seen:
            return False
        self._seen.append(key)
        return True
