"""Lip-sync metrics: Sync-C / Sync-D faithful to joonson/syncnet_python, and a self-trained sync expert."""

from eval.sync.score import PROTOCOL_VERSION, SyncResult, TrackSyncResult

__all__ = ["PROTOCOL_VERSION", "SyncResult", "TrackSyncResult"]
