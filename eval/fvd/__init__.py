"""FVD as common_metrics_on_video_quality's videogpt method: I3D (Kinetics-400) written here, its
preprocessing, the clip-sampling protocol. Entry point: ``compute_fvd``."""

from eval.fvd.fvd import compute_fvd, fvd_of_features, protocol, video_clip_features

__all__ = ["compute_fvd", "fvd_of_features", "protocol", "video_clip_features"]
