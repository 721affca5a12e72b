"""Captions are measured, not templated: the head-motion, zoom and speech fields follow the signals (synthetic
series here; demo-corpus clips through the real curation steps below), each field keeps its source, and the
vision backend's reply is validated and merged field by field."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kling.curate.captions import (FIELDS, VLMCaption, caption_video, head_motion_of, head_turn_proxies, merge_vlm,
                                   paragraph, write_captions, zoom_of)
from kling.llm import LLMClient, LLMConfig

T = np.arange(125) / 25.0


def test_head_motion_from_landmark_proxies():
    """Proxies in interocular distances (a turn of d degrees moves the nose tip ~0.5 sin(d) IOD), with jitter."""
    rng = np.random.default_rng(0)
    noise = lambda: rng.normal(0, 0.01, len(T))  # noqa: E731 - landmark jitter
    deg = lambda d, f, t=T: 0.5 * np.sin(np.radians(d)) * np.sin(2 * np.pi * f * t)  # noqa: E731
    nod = head_motion_of(noise(), deg(10, 1.0) + noise())
    shake = head_motion_of(deg(22, 0.8) + noise(), noise())
    still = head_motion_of(rng.normal(0, 0.003, len(T)), noise())
    sway = head_motion_of(deg(4, 0.15) + noise(), deg(2.5, 0.4) + noise())
    assert nod[0] == "nod" and 8 < nod[1] < 12 and nod[2] > 0.5
    assert shake[0] == "shake" and 18 < shake[1] < 26
    assert still[0] == "still"
    assert sway[0] == "subtle"
    assert head_motion_of(np.full(10, np.nan), np.full(10, np.nan))[0] == "unknown"
    # a head that moves only up and down, slowly (not periodic enough to be a nod), is not still
    rng = np.random.default_rng(1)
    drift_down = head_motion_of(rng.normal(0, 0.003, len(T)), np.linspace(0, 0.5 * np.sin(np.radians(15)), len(T)))
    assert drift_down[0] == "subtle", drift_down


def test_landmark_proxies():
    lm = np.zeros((1, 68, 2))
    lm[0, 36:42] = [40, 50]
    lm[0, 42:48] = [60, 50]
    lm[0, 30] = [55, 60]
    yaw, pitch = head_turn_proxies(lm)
    assert yaw[0] == pytest.approx(0.25) and pitch[0] == pytest.approx(0.5)


def test_zoom_from_box_heights():
    assert zoom_of(np.linspace(80, 135, 125))[0] == "in"
    assert zoom_of(np.linspace(135, 80, 125))[0] == "out"
    assert zoom_of(np.full(125, 90.0) + np.random.default_rng(1).normal(0, 1, 125))[0] == "none"


def _fields(**over):
    base = {k: {"value": None, "source": "measured", "confidence": 0.5} for k in FIELDS}
    vals = {"head_motion": "nod", "head_motion_amplitude_deg": 10.0, "gaze": "camera", "zoom": "none",
            "camera_motion": "static", "shot_size": "close-up", "speech_ratio": 0.7, "speech_pauses": 2,
            "speech_rate_sps": 4.0, "who_speaks": "the subject", "n_people": 1, "defects": [], "emotion": "neutral",
            "hair_colour": "brown", "clothing_colours": ["blue"], "scene": "plain grey background",
            "lighting": "bright, evenly lit"}
    vals.update(over)
    for k, v in vals.items():
        base[k]["value"] = v
    return base


def test_paragraph_says_what_was_measured():
    assert "nods (about 10 degrees)" in paragraph(_fields())
    still = paragraph(_fields(head_motion="still", head_motion_amplitude_deg=0.3))
    assert "nod" not in still and "keeps the head still" in still
    assert "zooms in" in paragraph(_fields(zoom="in"))
    assert "is silent" in paragraph(_fields(speech_ratio=0.0))


def test_vlm_merge_keeps_sources():
    merged = merge_vlm(_fields(), VLMCaption(age_group="adult", hair_colour="auburn", caption="A woman nods."))
    assert merged["age_group"] == {"value": "adult", "source": "vlm", "confidence": 0.7}
    assert merged["hair_colour"]["source"] == "vlm" and merged["caption"]["value"] == "A woman nods."
    assert merged["head_motion"]["source"] == "measured" and merged["scene"]["source"] == "measured"


@pytest.fixture(scope="module")
def curated(demo_corpus, tmp_path_factory):
    """normalise..quality on three demo clips (nod, still, zoom_in) through the real curation steps."""
    from kling.config import load_profile
    from kling.curate.runner import Workspace
    from kling.curate.sources import VideoRef
    from kling.curate.steps import run_video

    ws = Workspace(tmp_path_factory.mktemp("captions_ws"))
    prof = load_profile("demo")
    for cid in ("ava_nod", "cal_still", "bo_zoom"):
        run_video(ws, VideoRef(cid, demo_corpus.path(cid)), prof,
                  steps=["normalise", "shots", "face_tracks", "speech", "quality"])
    return ws


def test_demo_clips_are_captioned_from_their_signals(curated, demo_corpus):
    nod = caption_video(curated, "ava_nod")
    still = caption_video(curated, "cal_still")
    zoom = caption_video(curated, "bo_zoom")
    assert set(nod["head_motion"]) == {"nod"} and "nods" in nod["caption"].iloc[0]
    assert set(still["head_motion"]) == {"still"} and "nod" not in still["caption"].iloc[0]
    assert set(zoom["zoom"]) == {"in"} and set(nod["zoom"]) == {"none"}
    assert (nod["head_motion__source"] == "measured").all() and nod["head_motion__conf"].iloc[0] > 0.5
    truth = demo_corpus.clip("ava_nod").speech_segments
    speech_s = sum(b - a for a, b in truth)
    assert nod["speech_ratio"].iloc[0] == pytest.approx(speech_s / demo_corpus.clip("ava_nod").duration_s, abs=0.15)
    assert nod["hair_colour"].iloc[0] == "brown" and json.loads(nod["clothing_colours"].iloc[0]) == ["blue"]


def test_vision_backend_merges_and_failure_is_reported(curated):
    from kling.curate.captions import CaptionError
    from tests.support.chat_server import ChatServer

    reply = {"age_group": "adult", "hair_colour": "dark brown", "clothing_colours": ["navy"], "emotion": "happy",
             "gaze": "camera", "gestures": None, "scene": "studio", "lighting": "soft",
             "caption": "A woman with long hair nods while talking to the camera."}
    with ChatServer() as srv:
        url = srv.script("vlm", {"text": json.dumps(reply)})
        client = LLMClient(LLMConfig(backend="openai", base_url=url, model="vlm", backoff_s=0.01))
        path = write_captions(curated, "ava_nod", client, n_frames=3)
        df = pd.read_parquet(path)
        assert df["caption_status"].iloc[0] == "vlm"
        assert df["age_group"].iloc[0] == "adult" and df["age_group__source"].iloc[0] == "vlm"
        assert df["head_motion"].iloc[0] == "nod" and df["head_motion__source"].iloc[0] == "measured"
        _, body = srv.requests[-1]
        images = [p for p in body["messages"][-1]["content"] if p["type"] == "image_url"]
        assert len(images) == 3 and '"head_motion": "nod"' in body["messages"][-1]["content"][0]["text"]
        url = srv.script("vlmdown", {"status": 500, "body": "down"})
        bad = LLMClient(LLMConfig(backend="openai", base_url=url, model="vlm", max_attempts=1))
        with pytest.raises(CaptionError, match="HTTP 500"):
            write_captions(curated, "cal_still", bad)
        assert not curated.output("captions", "cal_still", ".parquet").exists()
        fb = LLMClient(LLMConfig(backend="openai", base_url=url, model="vlm", max_attempts=1, fallback="offline"))
        df = pd.read_parquet(write_captions(curated, "cal_still", fb))
        assert df["caption_status"].iloc[0] == "measured (fallback)" and "HTTP 500" in df["caption_reason"].iloc[0]


def test_captions_become_the_training_text(curated):
    """The captions step's tables are what a training window says (kling.train.avatar_shards.clip_text)."""
    from kling.curate.captions import read_captions
    from kling.train.avatar_shards import clip_text

    write_captions(curated, "ava_nod")
    write_captions(curated, "cal_still")
    captions = read_captions(curated)
    nod_clip = next(c for c in captions if c.startswith("ava_nod"))
    assert "nods" in clip_text(nod_clip, "ava_nod", captions)
    still_clip = next(c for c in captions if c.startswith("cal_still"))
    assert "nod" not in clip_text(still_clip, "cal_still", captions)
    assert clip_text("bo_zoom-s0-t0", "bo_zoom", captions) == clip_text("x", "y")  # not captioned: the neutral prompt
