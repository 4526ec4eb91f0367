"""Notices camera frames lost between the publisher and us, and says once how to fix it.

A camera driver publishing 640x480 frames through Fast DDS's default 512 KB shared-memory segment loses most of
them silently (best-effort QoS). DDS numbers every sample of a publisher: gaps in `publication_sequence_number`
(rclpy's MessageInfo) are samples that never reached this subscription.
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
    def __init__(self, warn: Callable[[str], None], min_samples: int = 30, max_lost_share: float = 0.2):
        self.warn, self.min_samples, self.max_lost_share = warn, min_samples, max_lost_share
        self._last = {}                  # publisher gid -> last sequence number
        self.received = self.lost = 0
        self.warned = False
        self._bytes = 0

    def seen(self, info: Optional[dict], size: int) -> None:
        sample = sample_id(info)
        if sample is None:
            return                       # this rmw does not report sequence numbers
        gid, seq = sample
        last = self._last.get(gid)
        self._last[gid] = seq
        self.received += 1
        self._bytes = max(self._bytes, size)
        if last is not None and seq > last + 1:
            self.lost += seq - last - 1
        total = self.received + self.lost
        if not self.warned and total >= self.min_samples and self.lost > self.max_lost_share * total:
            self.warned = True
            self.warn(f"{self.lost} of {total} camera frames ({self._bytes / 1e6:.1f} MB each) were lost in transport "
                      f"before reaching this node: {FIX}")


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
