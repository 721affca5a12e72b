"""A clip shorter than face tracking needs is `too_short`, with the minimum stated, in every metric that reads
faces (as in curation), not "no face"."""

from __future__ import annotations

import numpy as np

from kling.io.encode import write_video
from kling.perception.faces.tracks import FaceTrackConfig, no_track_reason, shot_aware_tracks


def _short_clip(path, n_frames):
    """A clear, frontal demo face (dlib finds it in every frame), too few frames for a track."""
    from kling.demo import load_recipe
    from kling.demo.face import Identity, Pose, render_frame
    from kling.demo.raster import render_background

    p = load_recipe()["identities"]["ava"]["face"]
    ident = Identity(name="ava", **{k: tuple(v) if isinstance(v, list) else v for k, v in p.items()})
    bg = render_background(256, (190, 200, 212), (118, 128, 142), seed=3, height=256)
    frame = render_frame(ident, Pose(), bg.astype(np.float32)).astype(np.uint8)
    frames = np.repeat(frame[None], n_frames, axis=0)
    write_video(path, frames, fps=25, audio=np.zeros(n_frames * 640, np.float32))
    return path


def test_no_track_reason_states_the_minimum():
    need = FaceTrackConfig().min_len
    code, detail = no_track_reason({"n_frames": 12}, FaceTrackConfig())
    assert code == "too_short" and f"12 frames < {need} needed by face_tracks" in detail
    assert no_track_reason({"n_frames": 1}, FaceTrackConfig())[1].startswith("1 frame <")
    assert no_track_reason({"n_frames": 200, "frames_with_detection": 0}, FaceTrackConfig())[0] == "no_face"


def test_metrics_say_too_short(tmp_path):
    from eval.adherence.measured import VideoSignals, check
    from eval.identity.evaluate import identity_consumer
    from kling.io.frames import decode_once
    from kling.perception.sync import evaluator_for
    from tests.support.sync import write_official_format_weights

    clip = _short_clip(tmp_path / "short.mp4", 12)
    tracks = shot_aware_tracks(clip, "dlib")
    assert len(tracks) == 0
    ev = evaluator_for("syncnet_v2", write_official_format_weights(tmp_path / "syncnet_v2.model"))
    sync = decode_once(clip, {"s": ev.consumer(clip, tracks, np.zeros(12 * 640, np.float32))})["s"]
    assert sync.status == "unavailable" and sync.reason.startswith("too_short: 12 frames <"), sync.reason
    ref = tmp_path / "ref.png"
    import cv2

    from kling.io.decode import read_frames

    cv2.imwrite(str(ref), read_frames(clip)[0][..., ::-1])
    ident = decode_once(clip, {"i": identity_consumer(clip, [str(ref)], "dlib", detector="dlib", face_tracks=tracks)})["i"]
    assert ident.status == "unavailable" and ident.reason.startswith("too_short:"), ident.reason
    sig = VideoSignals(25.0, 12, 256, 256, *[np.full(12, np.nan)] * 5, np.zeros(12, np.int64), None, "no audio")
    assert check(sig, "head_motion", "nod", 0, 0.48).reason.startswith("too_short: 12 frames")
