"""Lip-sync metrics: Sync-C / Sync-D faithful to joonson/syncnet_python, and a self-trained sync expert.

Entry points: pipeline.SyncEvaluator (.official / .evaluate_video / .evaluate_cropped / .evaluate_many),
pipeline.evaluate_videos, expert.train_expert / clip_from_video / expert_evaluator, filter.lip_sync_decision.
"""

from eval.sync.score import EXPERT_PROTOCOL_VERSION, PROTOCOL_VERSION, SyncResult, TrackSyncResult

__all__ = ["EXPERT_PROTOCOL_VERSION", "PROTOCOL_VERSION", "SyncResult", "TrackSyncResult"]
