"""FID: pytorch-fid's Inception written here, resize protocols, content-addressed feature cache, float64
Fréchet distance. Entry point: ``compute_fid``; per-video features for windows: ``video_features``."""

from eval.fid.fid import compute_fid, fid_of_features, protocol, video_features
from eval.fid.result import DistanceResult

__all__ = ["DistanceResult", "compute_fid", "fid_of_features", "protocol", "video_features"]
