"""The synthetic demo corpus against the real models it is made for: dlib's HOG face detector, 68-point
landmarks and ResNet face descriptor, and silero-vad. Fast tests use a six-clip subset of the default
recipe (three identities, the offset, silent and face-less clips) plus un-encoded renders of the rest;
the whole corpus is checked by the slow test."""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scipy.signal import find_peaks

from kling.demo import AV_OFFSET_CONVENTION, GENERATOR_VERSION, generate_corpus, load_recipe
from kling.demo.clip import plan_clip, render_clip_frame
from kling.demo.speech import frame_values, silence, synthesize_speech
from kling.hashing import file_sha256
from kling.io.audio import read_audio
from kling.io.decode import read_frames
from kling.io.probe import probe

SUBSET = ["ava_talk", "bo_talk", "cal_talk", "cal_offset", "bo_silent", "scene_noface"]
MAX_LAG = 10


# --- models ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dlib_models():
    import dlib

    with warnings.catch_warnings():  # face_recognition_models imports the deprecated pkg_resources
        warnings.simplefilter("ignore")
        import face_recognition_models as frm
    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(frm.pose_predictor_model_location()),
        dlib.face_recognition_model_v1(frm.face_recognition_model_location()),
    )


@pytest.fixture(scope="module")
def vad_model():
    from silero_vad import load_silero_vad

    return load_silero_vad()


def _vad(model, audio: np.ndarray) -> list[tuple[float, float]]:
    from silero_vad import get_speech_timestamps

    ts = get_speech_timestamps(torch.from_numpy(audio), model, sampling_rate=16000, return_seconds=True)
    return [(t["start"], t["end"]) for t in ts]


def _coverage(truth, found) -> float:
    """Fraction of the ground-truth speech time that the detector marks as speech."""
    total = sum(b - a for a, b in truth)
    hit = sum(max(0.0, min(b, fb) - max(a, fa)) for a, b in truth for fa, fb in found)
    return hit / total


def _analyse(frames: np.ndarray, models, every_descriptor: int = 15) -> dict:
    """Per frame: face found (HOG, upsample 0), inner-lip gap / inter-ocular distance; a few descriptors."""
    det, sp, enc = models
    found, gap, desc, boxes = [], [], [], []
    for i, f in enumerate(frames):
        rects = det(f, 0)
        found.append(bool(rects))
        if not rects:
            gap.append(np.nan)
            boxes.append(np.nan)
            continue
        r = max(rects, key=lambda r: r.area())
        boxes.append(r.width())
        shape = sp(f, r)
        p = np.array([[q.x, q.y] for q in shape.parts()], float)
        inter_ocular = np.linalg.norm(p[36] - p[45])
        gap.append(np.mean([np.linalg.norm(p[a] - p[b]) for a, b in ((61, 67), (62, 66), (63, 65))]) / inter_ocular)
        if i % every_descriptor == 5:
            desc.append(np.array(enc.compute_face_descriptor(f, shape)))
    return {"found": np.array(found), "gap": np.array(gap), "desc": desc, "box": np.array(boxes)}


def _lag_corr(a: np.ndarray, b: np.ndarray, lag: int) -> float:
    """corr(a[t], b[t + lag]): positive lag = b (audio) lags a (video)."""
    x, y = (a[: len(a) - lag], b[lag:]) if lag >= 0 else (a[-lag:], b[: len(b) + lag])
    return float(np.corrcoef(x, y)[0, 1])


def _best_lag(a, b) -> tuple[int, dict[int, float]]:
    a = np.where(np.isnan(a), np.nanmean(a), a)
    r = {lag: _lag_corr(a, b, lag) for lag in range(-MAX_LAG, MAX_LAG + 1)}
    return max(r, key=r.get), r


def _identity_distances(records, analyses) -> tuple[list[float], list[float]]:
    """Clip-mean descriptor distances for same / different identity pairs (single-identity clips)."""
    means = {r.id: (r.identity, np.mean(analyses[r.id]["desc"], 0)) for r in records}
    ids = sorted(means)
    same, diff = [], []
    for k, a in enumerate(ids):
        for b in ids[k + 1 :]:
            d = float(np.linalg.norm(means[a][1] - means[b][1]))
            (same if means[a][0] == means[b][0] else diff).append(d)
    return same, diff


# --- the six-clip corpus, encoded and decoded ----------------------------------------------------------------

@pytest.fixture(scope="module")
def subset(tmp_path_factory, dlib_models):
    out = tmp_path_factory.mktemp("demo_subset")
    t0 = time.perf_counter()
    manifest = generate_corpus(out, clip_ids=SUBSET)
    gen_s = time.perf_counter() - t0
    decoded, analyses = {}, {}
    for rec in manifest.clips:
        frames = read_frames(manifest.path(rec.id))
        audio = read_audio(manifest.path(rec.id))
        decoded[rec.id] = (frames, audio)
        analyses[rec.id] = _analyse(frames, dlib_models)
    print(f"\n[demo] subset of {len(SUBSET)} clips generated in {gen_s:.1f} s; detection rates: "
          + ", ".join(f"{k}={v['found'].mean():.3f}" for k, v in analyses.items()))
    return manifest, decoded, analyses


def test_manifest_and_files(subset):
    manifest, decoded, _ = subset
    data = json.loads((Path(manifest.root) / "corpus.json").read_text())
    assert data["generator_version"] == GENERATOR_VERSION and data["recipe_hash"] == manifest.recipe_hash
    assert data["av_offset_convention"] == AV_OFFSET_CONVENTION
    assert [c["id"] for c in data["clips"]] == SUBSET
    for rec in manifest.clips:
        path = manifest.path(rec.id)
        assert file_sha256(path) == rec.sha256
        info = probe(path)
        assert (info.video_codec, info.audio_codec) == ("h264", "aac")
        assert (info.width, info.height, info.fps) == (rec.width, rec.height, 25.0)
        assert (info.audio_sample_rate, info.audio_channels) == (16000, 1)
        assert 4.0 <= rec.duration_s <= 8.0 and rec.n_frames == round(rec.duration_s * 25)
        assert len(decoded[rec.id][0]) == rec.n_frames
        truth = json.loads((Path(manifest.root) / rec.truth_file).read_text())
        assert len(truth["mouth_open"]) == len(truth["yaw"]) == rec.n_frames
    by_id = {r.id: r for r in manifest.clips}
    assert by_id["cal_offset"].av_offset_frames == 5 and by_id["cal_offset"].defects == ["av_offset"]
    assert by_id["bo_silent"].defects == ["silent"] and by_id["bo_silent"].speech_segments == []
    assert by_id["scene_noface"].has_face is False and by_id["scene_noface"].defects == ["no_face"]
    assert by_id["scene_noface"].motion == "none" and by_id["scene_noface"].identity is None
    assert by_id["ava_talk"].defects == [] and by_id["ava_talk"].motion == "sway"
    assert {r.identity for r in manifest.clips if r.has_face} == {"ava", "bo", "cal"}


def test_hog_detector_finds_every_face(subset):
    manifest, _, analyses = subset
    for rec in manifest.clips:
        rate = analyses[rec.id]["found"].mean()
        if rec.has_face:
            assert rate >= 0.95, (rec.id, rate)
        else:
            assert rate <= 0.02, (rec.id, rate)


def test_identities_separated_by_dlib_descriptor(subset):
    manifest, _, analyses = subset
    same, diff = _identity_distances([r for r in manifest.clips if r.identity], analyses)
    print(f"\n[demo] descriptor distance same identity max {max(same):.3f}, different min {min(diff):.3f}")
    assert len(same) >= 2 and len(diff) >= 3
    assert max(same) < 0.4 < 0.6 < min(diff)  # dlib's 0.6 threshold, with a margin on both sides


def test_lips_follow_audio_and_offset_is_measurable(subset):
    """Inner-lip gap from 68-point landmarks vs audio RMS per frame: in sync at lag 0, the offset clip at
    its recorded lag (positive = audio lags video)."""
    manifest, decoded, analyses = subset
    for rec in manifest.clips:
        if not rec.has_face or "silent" in rec.defects:
            continue
        frames, audio = decoded[rec.id]
        rms = frame_values(audio, 25, 16000, len(frames), rms=True)
        lag, r = _best_lag(analyses[rec.id]["gap"], rms)
        assert lag == rec.av_offset_frames, (rec.id, lag, r[lag])
        assert r[lag] > 0.5, (rec.id, r[lag])
        if rec.av_offset_frames:
            assert r[0] < r[lag] - 0.2


def test_vad_hears_speech_but_not_in_the_silent_clip(subset, vad_model):
    manifest, decoded, _ = subset
    for rec in manifest.clips:
        audio = decoded[rec.id][1]
        found = _vad(vad_model, audio)
        if "silent" in rec.defects:
            assert found == [] and np.abs(audio).max() < 0.01
        else:
            assert _coverage(rec.speech_segments, found) > 0.7, (rec.id, found, rec.speech_segments)


def test_encoded_bytes_are_deterministic_and_rerun_is_idempotent(subset, tmp_path):
    manifest, _, _ = subset
    mtimes = {p: p.stat().st_mtime_ns for p in Path(manifest.root).iterdir()}
    again = generate_corpus(manifest.root, clip_ids=SUBSET)
    assert again.generated is False and again.recipe_hash == manifest.recipe_hash
    assert {p: p.stat().st_mtime_ns for p in Path(manifest.root).iterdir()} == mtimes

    # the same clip generated elsewhere (another subset, so another recipe hash) is byte-identical
    other = generate_corpus(tmp_path, clip_ids=["scene_noface"])
    assert other.generated and other.recipe_hash != manifest.recipe_hash
    assert other.clip("scene_noface").sha256 == manifest.clip("scene_noface").sha256

    # a damaged file is noticed and regenerated; a missing manifest too; a new seed changes the corpus
    path = other.path("scene_noface")
    with open(path, "ab") as fh:
        fh.write(b"junk")
    fixed = generate_corpus(tmp_path, clip_ids=["scene_noface"])
    assert fixed.generated and file_sha256(path) == other.clip("scene_noface").sha256
    os.remove(tmp_path / "corpus.json")
    assert generate_corpus(tmp_path, clip_ids=["scene_noface"]).generated
    reseeded = generate_corpus(tmp_path, clip_ids=["scene_noface"], seed=7)
    assert reseeded.generated and reseeded.seed == 7 and reseeded.recipe_hash != other.recipe_hash
    assert reseeded.clip("scene_noface").sha256 != other.clip("scene_noface").sha256
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left behind


# --- un-encoded renders: determinism, render parameters, defects, motion ------------------------------------

@pytest.fixture(scope="module")
def recipe():
    return load_recipe()


def _spec(recipe, clip_id):
    return next(c for c in recipe["clips"] if c["id"] == clip_id)


def test_same_seed_same_arrays(recipe):
    spec = _spec(recipe, "ava_talk")
    a, b = plan_clip(spec, recipe, 123), plan_clip(spec, recipe, 123)
    c = plan_clip(spec, recipe, 124)
    assert np.array_equal(a.audio, b.audio) and np.array_equal(a.mouth, b.mouth)
    assert all(np.array_equal(a.tracks[k], b.tracks[k]) for k in a.tracks)
    fa = np.stack([render_clip_frame(a, i) for i in range(0, a.n_frames, 10)])
    fb = np.stack([render_clip_frame(b, i) for i in range(0, b.n_frames, 10)])
    assert np.array_equal(fa, fb)
    assert not np.array_equal(a.audio, c.audio)
    assert not np.array_equal(fa, np.stack([render_clip_frame(c, i) for i in range(0, c.n_frames, 10)]))


def test_render_mouth_follows_audio_envelope(recipe):
    for cid in ("ava_talk", "cal_offset"):
        plan = plan_clip(_spec(recipe, cid), recipe, recipe["seed"])
        rms = frame_values(plan.audio, plan.fps, plan.sample_rate, plan.n_frames, rms=True)
        lag, r = _best_lag(plan.mouth.astype(float), rms)
        assert lag == plan.av_offset_frames and r[lag] > 0.9, (cid, lag, r[lag])


def test_speech_synthesis_and_silence(vad_model):
    for seed, f0 in ((1, 110), (2, 205)):
        sp = synthesize_speech(5.0, seed, f0=f0)
        assert sp.audio.dtype == np.float32 and sp.audio.size == 80000 and np.abs(sp.audio).max() <= 0.51
        assert len(sp.segments) >= 2 and _coverage(sp.segments, _vad(vad_model, sp.audio)) > 0.7
        # pauses between phrases are quiet
        a, b = sp.segments[0][1], sp.segments[1][0]
        pause = sp.audio[int(a * 16000) + 160 : int(b * 16000) - 160]
        assert np.sqrt(np.mean(pause**2)) < 0.01
        # syllables (loudness peaks) come at 3-6 per second of speech
        peaks, _ = find_peaks(frame_values(sp.envelope, 100, 16000, 500), prominence=0.1)
        assert 3.0 <= len(peaks) / sum(b - a for a, b in sp.segments) <= 6.0
    assert _vad(vad_model, silence(4.0, 3).audio) == []


def test_blur_clip_is_soft_but_still_a_face(recipe, dlib_models):
    det = dlib_models[0]
    sharp = plan_clip(_spec(recipe, "ava_talk"), recipe, recipe["seed"])
    blurred = plan_clip(_spec(recipe, "ava_blur"), recipe, recipe["seed"])
    assert blurred.defects == ["blur"] and blurred.blur_sigma > 0

    def lap(frame):
        return cv2.Laplacian(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()

    idx = range(0, 100, 10)
    s = np.mean([lap(render_clip_frame(sharp, i)) for i in idx])
    bl_frames = [render_clip_frame(blurred, i) for i in idx]
    b = np.mean([lap(f) for f in bl_frames])
    assert b < 0.05 * s, (b, s)
    assert np.mean([bool(det(f, 0)) for f in bl_frames]) >= 0.9  # rejected for blur, not for "no face"


def test_scene_cut_at_recorded_frame(recipe):
    plan = plan_clip(_spec(recipe, "bo_cal_cut"), recipe, recipe["seed"])
    assert plan.defects == ["scene_cut"] and [s.identity for s in plan.shots] == ["bo", "cal"]
    cut = plan.shots[1].start
    frames = [render_clip_frame(plan, i).astype(np.float32) for i in range(cut - 3, cut + 3)]
    jumps = [np.abs(frames[k + 1] - frames[k]).mean() for k in range(5)]
    assert np.argmax(jumps) == 2 and jumps[2] > 5 * max(jumps[:2] + jumps[3:])


def test_motion_labels_are_measurable(recipe, dlib_models):
    """Nodding moves the nose tip up and down with the pitch, shaking sideways with the yaw, the still
    clip has no head motion at all (what is left is landmark jitter), zooming grows the face box."""
    det, sp, _ = dlib_models

    def measure(cid):
        plan = plan_clip(_spec(recipe, cid), recipe, recipe["seed"])
        rows = []
        for i in range(0, plan.n_frames, 3):
            f = render_clip_frame(plan, i)
            r = max(det(f, 0), key=lambda r: r.area())
            p = np.array([[q.x, q.y] for q in sp(f, r).parts()], float)
            nose = p[30] / np.linalg.norm(p[36] - p[45])  # in inter-ocular units
            rows.append((i, nose[0], nose[1], r.width()))
        return plan, np.array(rows)

    plan, still = measure("cal_still")
    assert plan.motion == "still"
    assert all(np.ptp(plan.tracks[k]) == 0 for k in ("yaw", "pitch", "roll", "tx", "ty", "scale"))
    for cid, axis, col in (("ava_nod", "pitch", 2), ("bo_shake", "yaw", 1)):
        plan, m = measure(cid)
        truth = plan.tracks[axis][m[:, 0].astype(int)]
        assert plan.motion == cid.split("_")[1] and np.corrcoef(truth, m[:, col])[0, 1] > 0.8, cid
        assert m[:, col].std() > 2 * still[:, col].std(), cid
    plan, m = measure("bo_zoom")
    assert plan.motion == "zoom_in" and m[-1, 3] > 1.4 * m[0, 3]
    assert np.corrcoef(m[:, 0], m[:, 3])[0, 1] > 0.9  # detector box sizes come in pyramid steps


# --- the whole default corpus (slow: renders and encodes everything, ~1 min) -------------------------------

@pytest.mark.slow
def test_full_default_corpus(demo_corpus, dlib_models, vad_model):
    manifest = demo_corpus
    assert 10 <= len(manifest.clips) <= 16  # 13 close-up clips + 2 half-body
    # close-ups here (HOG at full resolution, no upsampling); the half-body clips have their own tests below
    clips = [r for r in manifest.clips if not r.id.endswith("_halfbody")]
    assert len(clips) >= len(manifest.clips) - 2
    analyses, rates = {}, {}
    for rec in clips:
        frames = read_frames(manifest.path(rec.id))
        audio = read_audio(manifest.path(rec.id))
        a = analyses[rec.id] = _analyse(frames, dlib_models)
        rates[rec.id] = float(a["found"].mean())
        if rec.has_face:
            assert rates[rec.id] >= 0.95, (rec.id, rates[rec.id])
        else:
            assert rates[rec.id] <= 0.02
        found = _vad(vad_model, audio)
        if "silent" in rec.defects:
            assert found == []
        else:
            assert _coverage(rec.speech_segments, found) > 0.6, (rec.id, found, rec.speech_segments)
        if rec.has_face and "silent" not in rec.defects and "scene_cut" not in rec.defects:
            rms = frame_values(audio, 25, 16000, len(frames), rms=True)
            lag, r = _best_lag(a["gap"], rms)
            assert lag == rec.av_offset_frames and r[lag] > 0.5, (rec.id, lag, r[lag])
    print(f"\n[demo] full corpus generated in {manifest.elapsed_s:.1f} s; detection rates: {rates}")
    clean = [r for r in clips if r.identity and "blur" not in r.defects]
    same, diff = _identity_distances(clean, analyses)
    assert max(same) < 0.4 < 0.6 < min(diff), (max(same), min(diff))
    labels = {r.motion for r in manifest.clips}
    assert {"sway", "nod", "shake", "still", "zoom_in", "none"} <= labels
    defects = {d for r in manifest.clips for d in r.defects}
    assert defects == {"av_offset", "silent", "no_face", "blur", "scene_cut"}


# --- half-body clips (in the demo by default; a switch of the recipe) ---------------------------------------------

@pytest.fixture(scope="module")
def multiscale_detector():
    from kling.perception.faces.detect import DlibDetector
    from kling.perception.faces.multiscale import MultiScaleDetector

    return MultiScaleDetector(DlibDetector())


def test_half_body_clips_are_in_the_demo_and_switchable(recipe, tmp_path):
    import yaml

    from kling.demo import recipe_hash
    from kling.demo.corpus import DEFAULT_RECIPE

    raw = yaml.safe_load(DEFAULT_RECIPE.read_text())
    assert raw["half_body"] is True and raw["half_body_clips"]
    hb_ids = [c["id"] for c in raw["half_body_clips"]]
    assert [c["id"] for c in recipe["clips"]][-len(hb_ids):] == hb_ids
    assert "half_body" not in recipe and "half_body_clips" not in recipe
    # switched off, the recipe hashes as if the option were not in the file (the close-up corpus of before)
    bare = {k: v for k, v in raw.items() if k not in ("half_body", "half_body_clips")}
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump(bare))
    off = load_recipe(half_body=False)
    assert recipe_hash(load_recipe(tmp_path / "bare.yaml")) == recipe_hash(off) != recipe_hash(recipe)
    recipe = off
    on = load_recipe(half_body=True)
    assert [c["id"] for c in on["clips"]] == [c["id"] for c in recipe["clips"]] + hb_ids
    assert recipe_hash(on) != recipe_hash(recipe)
    raw["half_body"] = True
    (tmp_path / "on.yaml").write_text(yaml.safe_dump(raw))
    assert recipe_hash(load_recipe(tmp_path / "on.yaml")) == recipe_hash(on)


def test_half_body_renders_find_the_small_face(multiscale_detector):
    """Every 25th frame of each half-body clip, un-encoded: a portrait frame, a torso, a face of ~70-120 px
    that the detector's 320 px copy cannot see and the multi-scale wrapper finds in every frame."""
    from kling.perception.faces.detect import DlibDetector

    on = load_recipe(half_body=True)
    raw_ids = [c["id"] for c in on["clips"]][len(load_recipe(half_body=False)["clips"]):]
    assert len(raw_ids) == 2
    base = DlibDetector()
    for cid in raw_ids:
        plan = plan_clip(_spec(on, cid), on, on["seed"])
        frames = np.stack([render_clip_frame(plan, i) for i in range(0, plan.n_frames, 25)])
        w, h = _spec(on, cid)["frame"]
        assert frames.shape[1:] == (h, w, 3) and plan.framing == "half_body"
        assert not any(base.detect(frames[:3]))  # the path this clip exists for
        dets = multiscale_detector.detect(frames)
        assert all(len(d) == 1 for d in dets), cid
        widths = np.array([d[0].x1 - d[0].x0 for d in dets])
        assert 55 <= widths.min() and widths.max() <= 130, (cid, widths)
        # the torso: shirt colour below the face down to the bottom edge
        col = frames[0][int(0.9 * h), w // 2].astype(float)
        assert np.abs(col - np.array(plan.identities[plan.shots[0].identity].shirt)).max() < 60


@pytest.mark.slow
def test_half_body_clip_encoded_face_in_every_frame(tmp_path, multiscale_detector):
    manifest = generate_corpus(tmp_path, clip_ids=["ava_halfbody"], half_body=True)
    rec = manifest.clip("ava_halfbody")
    info = probe(manifest.path("ava_halfbody"))
    assert (info.width, info.height) == (rec.width, rec.height) == (384, 512)
    frames = read_frames(manifest.path("ava_halfbody"))
    assert len(frames) == rec.n_frames
    dets = multiscale_detector.detect(frames)
    assert all(len(d) == 1 for d in dets)
