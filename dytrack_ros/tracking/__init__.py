"""The per-sequence tracker (crops, exit policy, box mapping, lost state)."""
from .tracker import (IDLE, LOST, STATE_NAMES, TRACKING, DyTracker, InvalidBoxError, InvalidFrameError,
                      TrackerParams, TrackResult, validate_box, validate_frame)

__all__ = ["IDLE", "LOST", "STATE_NAMES", "TRACKING", "DyTracker", "InvalidBoxError", "InvalidFrameError",
           "TrackerParams", "TrackResult", "validate_box", "validate_frame"]
