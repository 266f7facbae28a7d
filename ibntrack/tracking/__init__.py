"""Identification and tracking: Kalman motion model, association costs, track life cycle, tracker."""

from ibntrack.tracking.kalman import KalmanFilter
from ibntrack.tracking.track import Track, TrackState
from ibntrack.tracking.tracker import MultiObjectTracker, TrackerConfig

__all__ = ["KalmanFilter", "MultiObjectTracker", "Track", "TrackState", "TrackerConfig"]
