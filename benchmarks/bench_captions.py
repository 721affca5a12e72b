"""Per-field accuracy of the offline captions on the demo corpus, against the corpus' ground truth.

    python benchmarks/bench_captions.py [--corpus DIR] [--workspace DIR] [--clips ID ...] [--json OUT]

1. The demo corpus (kling.demo.generate_corpus: reused when DIR already holds an up-to-date one; a temporary
   folder without --corpus, holding only --clips when given).
2. Curation of every clip through the library's per-video steps (kling.curate.steps.run_video: normalise ->
   shots -> face_tracks -> speech -> quality) into --workspace (the step cache answers for work already done
   there) or a temporary Workspace. lip_sync is not run: it needs a trained sync expert, so the demo's
   AV-offset defect is not judged here.
3. Captions with the offline backend (kling.curate.captions.caption_video, client None), timed per video.
4. Each caption row (one per candidate clip: a face track inside one shot) compared with the ground truth of
   the corpus manifest (corpus.json), its per-frame sidecar (<clip>.truth.json) and the recipe's identities:

   head_motion       motion label: nod -> nod, shake -> shake, still -> still, sway -> subtle, zoom_in -> still
                     (the camera moves, the head does not)
   amplitude         nod / shake clips: |measured - motion_params.amplitude_deg| <= AMP_TOL of the truth
   zoom, camera      zoom_in -> "in" / "moving", every other clip -> "none" / "static"
   speech_ratio      |measured - truth| <= RATIO_TOL, truth = the speech segments' share of the clip's time span
   speech_pauses     gaps >= PAUSE_S between the truth segments inside the clip (the captions count VAD gaps of
                     4 frames = 0.16 s)
   who_speaks        "the subject" when the truth has speech in the clip, else "none"
   n_people          1 per shot with an identity (every captioned demo clip has one face)
   hair / clothing   the recipe's identity colours (face.hair, face.shirt) named by kling.perception.appearance
                     .colour_name; "base" ignores a dark/light qualifier (dark grey = grey)
   gaze              "camera" iff the truth's median |yaw| and |pitch| over the clip are both < GAZE_DEG
   defects           exactly the quality-stage defects the truth implies: blur -> blurry, silent -> no_speech,
                     nothing for a clean clip (a spurious defect counts as wrong)
   caption text      the paragraph names the true head motion, says "zooms in" iff the camera zooms and
                     "is silent" iff the clip has no speech
   videos            a video gets captions iff its truth has a face (scene_noface: curation rejects it)

Fields the corpus has no truth for (age group, emotion, gestures, shot size, scene, lighting, language, speech
rate and level) are listed with their values, not scored. Times: caption seconds per clip (caption_video of a
video / its rows) and the curation step seconds per video (0 when cached). The machine's load is printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_curation import load_text, machine_state  # noqa: E402

CURATION_STEPS = ["normalise", "shots", "face_tracks", "speech", "quality"]  # lip_sync needs a trained expert
HEAD_TRUTH = {"nod": "nod", "shake": "shake", "still": "still", "sway": "subtle", "zoom_in": "still"}
MOTION_PHRASE = {"nod": "nods", "shake": "shakes the head", "still": "keeps the head still",
                 "subtle": "moves the head a little"}
DEFECT_TRUTH = {"blur": "blurry", "silent": "no_speech"}  # corpus defect -> quality reason code
AMP_TOL, RATIO_TOL, PAUSE_S, GAZE_DEG = 0.2, 0.1, 0.16, 15.0
UNSCORED = ["age_group", "emotion", "gestures", "shot_size", "scene", "lighting", "speech_language",
            "speech_rate_sps", "speech_energy_db"]


def base_colour(name: str | None) -> str | None:
    return None if name is None else name.replace("dark ", "").replace("light ", "")


def clip_truth(clip, frame_truth: dict, recipe: dict, a: int, b: int) -> dict:
    """What the ground truth says about frames [a, b) of a corpus clip."""
    from kling.perception.appearance import colour_name

    fps = clip.fps
    t0, t1 = a / fps, b / fps
    shot = int(np.bincount(np.asarray(frame_truth["shot"][a:b], int)).argmax())
    identity = clip.identities[shot] if shot < len(clip.identities) else clip.identity
    face = recipe["identities"][identity]["face"] if identity else None
    segs = [(max(t0, s), min(t1, e)) for s, e in clip.speech_segments if min(t1, e) > max(t0, s)]
    ratio = sum(e - s for s, e in segs) / (t1 - t0)
    yaw = float(np.median(frame_truth["yaw"][a:b]))
    pitch = float(np.median(frame_truth["pitch"][a:b]))
    head = HEAD_TRUTH.get(clip.motion)
    return {
        "identity": identity,
        "head_motion": head,
        "amplitude_deg": clip.motion_params.get("amplitude_deg") if head in ("nod", "shake") else None,
        "zoom": "in" if clip.motion == "zoom_in" else "none",
        "camera_motion": "moving" if clip.motion == "zoom_in" else "static",
        "speech_ratio": round(ratio, 3),
        "speech_pauses": sum(1 for (_, e0), (s1, _) in zip(segs, segs[1:]) if s1 - e0 >= PAUSE_S),
        "who_speaks": "the subject" if ratio > 0 else "none",
        "n_people": 1 if identity else 0,
        "hair_colour": colour_name(face["hair"]) if face else None,
        "clothing_colours": [colour_name(face["shirt"])] if face else [],
        "gaze": "camera" if abs(yaw) < GAZE_DEG and abs(pitch) < GAZE_DEG else "away",
        "defects": sorted(DEFECT_TRUTH[d] for d in clip.defects if d in DEFECT_TRUTH),
    }


def _value(r, k):
    """A caption cell as plain Python: None for missing (None, NaN, pd.NA), lists decoded from their JSON text."""
    import pandas as pd

    v = getattr(r, k)
    if v is None or (not isinstance(v, (list, str)) and pd.isna(v)):
        return None
    if k in ("clothing_colours", "defects"):
        return json.loads(v)
    return v.item() if isinstance(v, np.generic) else v


def score_row(r, truth: dict) -> tuple[dict, dict]:
    """({field: True/False, or None where not scored}, measured values) for one caption row."""
    m = {k: _value(r, k) for k in ["head_motion", "head_motion_amplitude_deg", "zoom", "camera_motion", "speech_ratio",
                                   "speech_pauses", "who_speaks", "n_people", "hair_colour", "clothing_colours",
                                   "gaze", "defects", "caption", *UNSCORED]}
    m["amplitude_deg"] = m.pop("head_motion_amplitude_deg")
    m["defects"] = sorted(m["defects"] or [])
    m["clothing_colours"] = m["clothing_colours"] or []
    text, amp, want = str(m["caption"] or ""), m["amplitude_deg"], truth["amplitude_deg"]
    words = MOTION_PHRASE.get(truth["head_motion"])
    ok = {
        "head_motion": m["head_motion"] == truth["head_motion"],
        "amplitude": None if want is None else (amp is not None and abs(amp - want) <= AMP_TOL * want),
        "zoom": m["zoom"] == truth["zoom"],
        "camera_motion": m["camera_motion"] == truth["camera_motion"],
        "speech_ratio": m["speech_ratio"] is not None and abs(m["speech_ratio"] - truth["speech_ratio"]) <= RATIO_TOL,
        "speech_pauses": m["speech_pauses"] == truth["speech_pauses"],
        "who_speaks": m["who_speaks"] == truth["who_speaks"],
        "n_people": m["n_people"] == truth["n_people"],
        "hair_colour": m["hair_colour"] == truth["hair_colour"],
        "hair_colour_base": base_colour(m["hair_colour"]) == base_colour(truth["hair_colour"]),
        "clothing_colours": m["clothing_colours"] == truth["clothing_colours"],
        "gaze": (m["gaze"] == "camera") == (truth["gaze"] == "camera"),
        "defects": m["defects"] == truth["defects"],
        "caption_text": (words is not None and words in text
                         and (("zooms in" in text) == (truth["zoom"] == "in"))
                         and (("is silent" in text) == (truth["who_speaks"] == "none"))),
    }
    return ok, m


def run(corpus_dir: Path, ws_dir: Path, clip_ids: list[str] | None, profile_name: str, fresh_corpus: bool) -> dict:
    from kling.config import load_profile
    from kling.curate.captions import CaptionError, caption_video
    from kling.curate.runner import Workspace
    from kling.curate.sources import VideoRef
    from kling.curate.steps import run_video
    from kling.demo import generate_corpus, load_recipe

    t = time.perf_counter()
    # a temporary corpus holds only the clips asked for; an existing folder is reused whole (never cut down)
    manifest = generate_corpus(corpus_dir, clip_ids=clip_ids if fresh_corpus else None)
    corpus_s = time.perf_counter() - t
    recipe = load_recipe()
    clips = [c for c in manifest.clips if clip_ids is None or c.id in clip_ids]
    if clip_ids and len(clips) != len(set(clip_ids)):
        raise SystemExit(f"unknown clip ids: {sorted(set(clip_ids) - {c.id for c in clips})}")
    profile = load_profile(profile_name)
    ws = Workspace(ws_dir)
    videos, rows = [], []
    for clip in clips:
        records = run_video(ws, VideoRef(clip.id, manifest.path(clip.id)), profile, steps=CURATION_STEPS)
        # seconds as recorded when the step ran (also for a cached record, whose run was earlier)
        curation = {r.step: {"seconds": r.seconds, "status": r.status, "reason": r.reason, "cached": bool(r.cached)}
                    for r in records}
        rejected = next((f"{r.step}: {r.reason}" for r in records if r.status != "ok"), None)
        t = time.perf_counter()
        try:
            df = caption_video(ws, clip.id)
            error = None
        except CaptionError as exc:
            df, error = None, str(exc)
        caption_s = time.perf_counter() - t
        n = 0 if df is None else len(df)
        videos.append({"video": clip.id, "motion": clip.motion, "defects": clip.defects, "has_face": clip.has_face,
                       "captioned": n > 0, "captions_iff_face": (n > 0) == clip.has_face, "clips": n,
                       "curation_rejected": rejected, "no_caption_reason": error, "caption_s": round(caption_s, 3),
                       "caption_s_per_clip": round(caption_s / n, 3) if n else None,
                       "curation_s": round(sum(s["seconds"] for s in curation.values()), 2),
                       "curation_cached": all(s["cached"] for s in curation.values()), "curation": curation})
        if df is None:
            continue
        frame_truth = json.loads((Path(manifest.root) / clip.truth_file).read_text())
        for r in df.itertuples(index=False):
            truth = clip_truth(clip, frame_truth, recipe, int(r.start_frame), int(r.end_frame))
            ok, measured = score_row(r, truth)
            rows.append({"video": clip.id, "clip_id": r.clip_id, "motion": clip.motion, "ok": ok,
                         "measured": measured, "truth": truth})
    fields = list(rows[0]["ok"]) if rows else []
    accuracy = {}
    for f in fields:
        scored = [x["ok"][f] for x in rows if x["ok"][f] is not None]
        accuracy[f] = {"correct": int(sum(scored)), "scored": len(scored),
                       "accuracy": round(sum(scored) / len(scored), 3) if scored else None}
    iff = [v["captions_iff_face"] for v in videos]
    accuracy["videos_captioned_iff_face"] = {"correct": int(sum(iff)), "scored": len(iff),
                                             "accuracy": round(sum(iff) / len(iff), 3) if iff else None}
    amp_err = [abs(x["measured"]["amplitude_deg"] - x["truth"]["amplitude_deg"]) for x in rows
               if x["truth"]["amplitude_deg"] is not None and x["measured"]["amplitude_deg"] is not None]
    ratio_err = [abs(x["measured"]["speech_ratio"] - x["truth"]["speech_ratio"]) for x in rows]
    per_clip = [v["caption_s_per_clip"] for v in videos if v["caption_s_per_clip"] is not None]
    return {
        "corpus": {"dir": str(corpus_dir), "recipe_hash": manifest.recipe_hash, "generated": manifest.generated,
                   "seconds": round(corpus_s, 1)},
        "workspace": str(ws_dir), "profile": profile.name, "backend": "offline", "steps": CURATION_STEPS,
        "tolerances": {"amplitude_rel": AMP_TOL, "speech_ratio_abs": RATIO_TOL, "pause_s": PAUSE_S,
                       "gaze_deg": GAZE_DEG},
        "accuracy": accuracy,
        "errors": {"amplitude_abs_deg": [round(e, 2) for e in amp_err],
                   "speech_ratio_mean_abs": round(float(np.mean(ratio_err)), 3) if ratio_err else None},
        "timing": {"caption_s_per_clip_mean": round(statistics.mean(per_clip), 3) if per_clip else None,
                   "caption_s_per_clip_median": round(statistics.median(per_clip), 3) if per_clip else None,
                   "caption_s_total": round(sum(v["caption_s"] for v in videos), 2),
                   "curation_s_total": round(sum(v["curation_s"] for v in videos), 1),
                   "curation_all_cached": all(v["curation_cached"] for v in videos)},
        "videos": videos, "clips": rows,
    }


def print_report(res: dict) -> None:
    def mark(ok) -> str:
        return "*" if ok is False else ""

    print(f"{'clip':<20}{'motion':<8}{'head':<8}{'amp':>10}{'zoom':>6}{'ratio':>12}{'pauses':>7}  "
          f"{'hair':<20}{'clothes':<10}{'defects':<12}who")
    for x in res["clips"]:
        m, t, ok = x["measured"], x["truth"], x["ok"]
        amp = "-" if m["amplitude_deg"] is None else f"{m['amplitude_deg']:.1f}"
        if t["amplitude_deg"] is not None:
            amp += f"/{t['amplitude_deg']:.0f}"
        print(f"{x['clip_id'][:19]:<20}{x['motion']:<8}{m['head_motion'] + mark(ok['head_motion']):<8}"
              f"{amp + mark(ok['amplitude']):>10}{m['zoom'] + mark(ok['zoom']):>6}"
              f"{m['speech_ratio']:>6.2f}/{t['speech_ratio']:.2f}{mark(ok['speech_ratio']):1}"
              f"{m['speech_pauses']:>4}/{t['speech_pauses']}{mark(ok['speech_pauses']):1}  "
              f"{str(m['hair_colour']) + '/' + str(t['hair_colour']) + mark(ok['hair_colour']):<20}"
              f"{','.join(m['clothing_colours']) + mark(ok['clothing_colours']):<10}"
              f"{(','.join(m['defects']) or '-') + mark(ok['defects']):<12}{m['who_speaks']}{mark(ok['who_speaks'])}")
    print("(measured/truth; * = wrong)")
    for v in res["videos"]:
        if not v["captioned"]:
            print(f"{v['video']}: no captions (truth defects {v['defects']}; curation rejected it at "
                  f"{v['curation_rejected']}): {v['no_caption_reason']}")
    print(f"\nper-field accuracy, offline backend, {len(res['clips'])} clips of {len(res['videos'])} videos:")
    for f, a in res["accuracy"].items():
        acc = "n/a" if a["accuracy"] is None else f"{a['accuracy']:.2f}"
        print(f"  {f:<28}{acc:>6}  ({a['correct']}/{a['scored']})")
    e, t = res["errors"], res["timing"]
    print(f"amplitude |error| (deg, nod/shake clips): {e['amplitude_abs_deg']}; "
          f"speech ratio mean |error|: {e['speech_ratio_mean_abs']}")
    print(f"not scored (no truth in the demo corpus): {', '.join(UNSCORED)}")
    print(f"caption seconds per clip: mean {t['caption_s_per_clip_mean']}, median {t['caption_s_per_clip_median']} "
          f"(total {t['caption_s_total']} s); curation steps {t['curation_s_total']} s"
          + (" (all from the step cache: seconds of the earlier run)" if t["curation_all_cached"] else ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=None,
                    help="demo corpus folder, generated there or reused when up to date (default: a temp folder)")
    ap.add_argument("--workspace", type=Path, default=None,
                    help="curation workspace, reused through the step cache (default: a temp folder)")
    ap.add_argument("--clips", nargs="+", default=None, help="corpus clip ids to caption (default: all)")
    ap.add_argument("--profile", default="demo", help="curation profile name or YAML path")
    ap.add_argument("--json", type=Path, default=None, help="write every figure to this JSON file")
    args = ap.parse_args(argv)

    before = machine_state()
    print(f"bench_captions: offline captions vs demo-corpus truth; {load_text(before)}")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_captions_") as tmp:
        corpus = args.corpus or Path(tmp) / "corpus"
        ws = args.workspace or Path(tmp) / "ws"
        res = run(corpus, ws, args.clips, args.profile, fresh_corpus=args.corpus is None)
    after = machine_state()
    print_report(res)
    print(f"after: {load_text(after)}; bench wall {time.perf_counter() - t0:.0f}s")
    if args.json:
        from kling.atomic import atomic_write_json

        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, {"benchmark": "captions", "machine_before": before, "machine_after": after,
                                      **res})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
