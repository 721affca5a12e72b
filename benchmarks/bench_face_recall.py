"""Face detector recall by framing and face size, on real faces placed into frames of known geometry.

    python benchmarks/bench_face_recall.py [--detectors dlib,dlib-multiscale] [--quick] [--json out.json]

Labelled set (built in memory, deterministic): real faces from ../shared/data (faces/*.png|jpeg that hold one
face at their own framing, and frames of clips/*.mp4). Each source's true face box is dlib HOG's box found
at native scale with one upsampling. The source picture is rescaled so that this box is W px wide
(W in --widths, default 40 60 90 120 200 320) and placed into a frame of each size in --sizes (default
256x256, 512x512, 576x768, 1920x1080, 3840x2160) over a textured backdrop; below the picture its bottom rows
are stretched down to the frame's lower edge as a torso. The true box is where the face was put.
Framing follows from face width over the frame's short side: close-up >= 0.25, half-body 0.08-0.25,
full-body < 0.08. Combinations where the face would not fit (width > 0.7 x short side) are skipped.

A face counts as found when a detection's centre lies inside the true box and its width is 0.5-2x the
true width; other detections are counted as false positives. Reported per detector: found rate per
framing, per face width and per (frame size, width); false positives; seconds per frame per frame size.

Also (no labels beyond "one face"): the shared photos as they are (full_body_1.png, full_body_2.png,
full3.png, full4.jpeg) with every box found, and time per frame on the 512x512 HDTF close-up clips
(detector alone on decoded frames, chunks of 32, best of --repeat, the detectors interleaved).
Detector names: "dlib" = DlibDetector() as it stands (detect_side 320: the figures before the change);
"dlib-multiscale" = kling.perception.faces.multiscale.MultiScaleDetector around it; "scrfd",
"scrfd-multiscale" the same for SCRFD when its weights resolve (else skipped with the reason).
`--demo` adds the demo corpus' close-ups: per clip, frames where the detectors' boxes differ.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_curation import REPO_ROOT, Timer, load_text, machine_state  # noqa: E402
from kling.clock import FPS  # noqa: E402

DATA = REPO_ROOT.parent / "shared" / "data"
SOURCE_PHOTOS = ["happy.png", "sad.png", "people_0.png", "full3.png", "full4.jpeg"]
AS_IS_PHOTOS = ["full_body_1.png", "full_body_2.png", "full3.png", "full4.jpeg"]
CLIP_FRAMES = (0, 90, 180)
SIZES = [(256, 256), (512, 512), (576, 768), (1920, 1080), (3840, 2160)]  # (width, height)
WIDTHS = [40, 60, 90, 120, 200, 320]


def framing_of(face_w: float, frame_wh: tuple[int, int]) -> str:
    r = face_w / min(frame_wh)
    return "close-up" if r >= 0.25 else "half-body" if r >= 0.08 else "full-body"


# --- labelled set -------------------------------------------------------------------------------------------

def _rgb(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def truth_box(img: np.ndarray) -> tuple[float, float, float, float] | None:
    """dlib HOG at native scale, one upsampling: the largest face's box (x0, y0, x1, y1)."""
    import cv2
    import dlib

    rects = dlib.get_frontal_face_detector()(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), 1)
    if not rects:
        return None
    r = max(rects, key=lambda r: r.area())
    return (r.left(), r.top(), r.right() + 1, r.bottom() + 1)


def load_sources(data: Path, clip_frames=CLIP_FRAMES) -> list[dict]:
    from kling.io.decode import iter_frames

    out = []
    for name in SOURCE_PHOTOS:
        p = data / "faces" / name
        if p.is_file():
            img = _rgb(p)
            out.append({"name": name, "image": img, "box": truth_box(img)})
    for clip in sorted((data / "clips").glob("*.mp4")):
        seen = 0  # decode only up to the last frame needed
        for chunk in iter_frames(clip, fps=FPS, chunk_size=32):
            for j, f in enumerate(chunk.frames):
                if seen + j in clip_frames:
                    out.append({"name": f"{clip.stem}#{seen + j}", "image": f.copy(), "box": truth_box(f)})
            seen += len(chunk.frames)
            if seen > max(clip_frames):
                break
    missing = [s["name"] for s in out if s["box"] is None]
    if missing:
        print(f"sources without a native-scale face (left out): {missing}")
    return [s for s in out if s["box"] is not None]


def backdrop(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A room-like textured background: gradient, low-frequency colour noise, a few soft-edged blocks."""
    import cv2

    top, bottom = rng.uniform(60, 220, 3), rng.uniform(40, 200, 3)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = np.broadcast_to((1 - t) * top + t * bottom, (h, w, 3)).copy()
    cell = max(8, min(w, h) // 12)
    noise = rng.standard_normal((h // cell + 2, w // cell + 2, 3)).astype(np.float32)
    img += 18 * cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(6):  # furniture / windows: straight edges at many scales
        x0, y0 = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        bw, bh = int(rng.uniform(0.05, 0.4) * w), int(rng.uniform(0.05, 0.4) * h)
        img[y0 : y0 + bh, x0 : x0 + bw] = img[y0 : y0 + bh, x0 : x0 + bw] * 0.5 + rng.uniform(30, 230, 3) * 0.5
    img += rng.normal(0, 3, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def place(src: dict, face_w: int, frame_wh: tuple[int, int], seed: int) -> tuple[np.ndarray, tuple] | None:
    """The source rescaled to a face `face_w` wide, placed in a frame; (frame, true box) or None if it cannot fit."""
    import cv2

    w, h = frame_wh
    if face_w > 0.7 * min(w, h):
        return None
    rng = np.random.default_rng(seed)
    img, (bx0, by0, bx1, by1) = src["image"], src["box"]
    s = face_w / (bx1 - bx0)
    sh, sw = img.shape[:2]
    scaled = cv2.resize(img, (max(1, round(sw * s)), max(1, round(sh * s))),
                        interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    fx0, fy0, fx1, fy1 = bx0 * s, by0 * s, bx1 * s, by1 * s
    fw, fh = fx1 - fx0, fy1 - fy0
    framing = framing_of(face_w, frame_wh)
    # where the face's centre goes: close-up mid-frame, half-body upper third, full-body upper sixth
    cy_frac = {"close-up": rng.uniform(0.38, 0.5), "half-body": rng.uniform(0.2, 0.32),
               "full-body": rng.uniform(0.08, 0.16)}[framing]
    cx = rng.uniform(0.5 * fw + 0.02 * w, w - 0.5 * fw - 0.02 * w)
    cy = float(np.clip(cy_frac * h, 0.5 * fh + 2, h - 0.5 * fh - 2))
    ox, oy = round(cx - (fx0 + fx1) / 2), round(cy - (fy0 + fy1) / 2)  # scaled-source origin in the frame
    frame = backdrop(w, h, rng)
    # the part of the scaled source that lands in the frame
    x0, y0 = max(0, ox), max(0, oy)
    x1, y1 = min(w, ox + scaled.shape[1]), min(h, oy + scaled.shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    frame[y0:y1, x0:x1] = scaled[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    if y1 < h:  # torso: the picture's bottom rows stretched to the frame's lower edge
        strip = frame[y1 - 1 : y1, x0:x1].astype(np.float32)
        torso = np.repeat(strip, h - y1, axis=0)
        torso *= np.linspace(1.0, 0.8, h - y1, dtype=np.float32)[:, None, None]
        frame[y1:h, x0:x1] = np.clip(torso, 0, 255).astype(np.uint8)
    box = (fx0 + ox, fy0 + oy, fx1 + ox, fy1 + oy)
    return frame, box


def iter_cases(sources: list[dict], sizes, widths):
    """The labelled frames one at a time (a 4K frame is 25 MB: never all in memory)."""
    for si, (w, h) in enumerate(sizes):
        for wi, fw in enumerate(widths):
            for k, src in enumerate(sources):
                placed = place(src, fw, (w, h), seed=10_000 * si + 100 * wi + k)
                if placed is None:
                    continue
                frame, box = placed
                yield {"source": src["name"], "size": f"{w}x{h}", "width": fw,
                       "framing": framing_of(fw, (w, h)), "frame": frame, "box": box}


# --- scoring ------------------------------------------------------------------------------------------------

def match(dets, box) -> tuple[bool, int]:
    """(found, false positives): found if a detection's centre is inside `box` with width 0.5-2x."""
    bx0, by0, bx1, by1 = box
    bw = bx1 - bx0
    found, fp = False, 0
    for d in dets:
        cx, cy, dw = (d.x0 + d.x1) / 2, (d.y0 + d.y1) / 2, d.x1 - d.x0
        if not found and bx0 <= cx <= bx1 and by0 <= cy <= by1 and 0.5 * bw <= dw <= 2 * bw:
            found = True
        else:
            fp += 1
    return found, fp


def make_detectors(names: list[str]) -> dict:
    from kling.perception.faces.detect import DlibDetector
    from kling.weights import WeightsUnavailable

    out = {}
    for name in names:
        base_name, _, wrap = name.partition("-")
        try:
            if base_name == "dlib":
                base = DlibDetector()
            elif base_name == "scrfd":
                from kling.perception.faces.scrfd import ScrfdDetector, resolve_scrfd_weights

                base = ScrfdDetector(resolve_scrfd_weights())
            else:
                raise ValueError(f"unknown detector {name!r}")
        except WeightsUnavailable as exc:
            print(f"{name}: skipped ({exc})")
            continue
        if wrap == "multiscale":
            from kling.perception.faces.multiscale import MultiScaleDetector

            base = MultiScaleDetector(base)
        elif wrap:
            raise ValueError(f"unknown detector {name!r}")
        out[name] = base
    return out


def recall(detectors: dict, cases) -> dict:
    """Every detector on every case (cases generated lazily, each shared by all detectors)."""
    rows = {name: [] for name in detectors}
    for c in cases:
        for name, det in detectors.items():
            t = time.perf_counter()
            dets = det.detect(c["frame"][None])[0]
            dt = time.perf_counter() - t
            found, fp = match(dets, c["box"])
            rows[name].append({"source": c["source"], "size": c["size"], "width": c["width"],
                               "framing": c["framing"], "found": found, "fp": fp, "s": dt,
                               "box": [round(v, 1) for v in c["box"]]})
    return rows


def summarise(rows: list[dict]) -> dict:
    def rate(sel):
        return {"found": sum(r["found"] for r in sel), "n": len(sel),
                "rate": round(sum(r["found"] for r in sel) / len(sel), 3) if sel else None}

    by = lambda key: {k: rate([r for r in rows if r[key] == k])  # noqa: E731
                      for k in dict.fromkeys(r[key] for r in rows)}
    cell = defaultdict(dict)
    for r in rows:
        cell[r["size"]].setdefault(r["width"], []).append(r)
    secs = defaultdict(list)
    for r in rows:
        secs[r["size"]].append(r["s"])
    return {"all": rate(rows), "framing": by("framing"), "width": by("width"),
            "size_width": {s: {w: rate(v)["rate"] for w, v in d.items()} for s, d in cell.items()},
            "false_positives": sum(r["fp"] for r in rows),
            "s_per_frame_by_size": {s: round(float(np.median(v)), 4) for s, v in secs.items()}}


def as_is_photos(detectors: dict, data: Path) -> dict:
    out = {}
    for name in AS_IS_PHOTOS:
        p = data / "faces" / name
        if not p.is_file():
            continue
        img = _rgb(p)
        out[name] = {"shape": list(img.shape[:2])}
        for dn, det in detectors.items():
            t = time.perf_counter()
            dets = det.detect(img[None])[0]
            out[name][dn] = {"boxes": [[round(v) for v in (d.x0, d.y0, d.x1, d.y1)] for d in dets],
                             "s": round(time.perf_counter() - t, 3)}
    return out


def closeup_speed(detectors: dict, data: Path, repeat: int) -> dict:
    from kling.io.decode import iter_frames

    clips = sorted((data / "clips").glob("*.mp4"))
    chunks = [c.frames for clip in clips for c in iter_frames(clip, fps=FPS, chunk_size=32)]
    n = sum(len(c) for c in chunks)
    best = {name: float("inf") for name in detectors}
    found = {}
    for name, det in detectors.items():  # warm-up (thread pools, first-call costs), and the found counts
        found[name] = sum(bool(d) for c in chunks for d in det.detect(c))
    for _ in range(repeat):  # interleaved so that load changes hit every detector alike
        for name, det in detectors.items():
            with Timer() as t:
                for c in chunks:
                    det.detect(c)
            best[name] = min(best[name], t.wall)
    return {"clips": [c.name for c in clips], "frames": n,
            "ms_per_frame": {k: round(1000 * v / n, 2) for k, v in best.items()},
            "frames_with_face": found}


def demo_closeups(detectors: dict) -> dict:
    """Per demo clip: frames with a face per detector, and frames whose boxes differ from the first detector's."""
    import tempfile

    from kling.demo import generate_corpus
    from kling.io.decode import iter_frames

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        m = generate_corpus(tmp)
        for c in m.clips:
            frames = np.concatenate([ch.frames for ch in iter_frames(m.path(c.id), fps=FPS)])
            per = {name: det.detect(frames) for name, det in detectors.items()}
            names = list(per)
            ref = per[names[0]]
            row = {"frames": len(frames), "with_face": {k: sum(bool(d) for d in v) for k, v in per.items()}}
            for other in names[1:]:
                row[f"differ_{other}"] = sum(
                    [tuple(np.round(d.box, 2)) for d in a] != [tuple(np.round(d.box, 2)) for d in b]
                    for a, b in zip(ref, per[other]))
            out[c.id] = row
    return out


def _print_table(name: str, s: dict, widths: list[int]) -> None:
    print(f"\n{name}: found {s['all']['found']}/{s['all']['n']} ({s['all']['rate']}), "
          f"false positives {s['false_positives']}")
    print("  by framing: " + ", ".join(f"{k} {v['found']}/{v['n']} ({v['rate']})" for k, v in s["framing"].items()))
    print("  by face width: " + ", ".join(f"{k}px {v['found']}/{v['n']} ({v['rate']})" for k, v in s["width"].items()))
    print("  found rate, frame size x face width:")
    print("  " + "size".ljust(11) + "".join(f"{w:>7}" for w in widths) + "   s/frame")
    for size, d in s["size_width"].items():
        cells = "".join(f"{'-' if d.get(w) is None else f'{d[w]:.2f}':>7}" for w in widths)
        print(f"  {size:<11}{cells}   {s['s_per_frame_by_size'][size]:.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detectors", default="dlib,dlib-multiscale,scrfd,scrfd-multiscale")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--widths", type=int, nargs="*", default=WIDTHS)
    ap.add_argument("--sizes", nargs="*", default=[f"{w}x{h}" for w, h in SIZES])
    ap.add_argument("--quick", action="store_true", help="one frame per clip instead of three")
    ap.add_argument("--repeat", type=int, default=3, help="close-up timing repetitions (best kept)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["recall", "photos", "speed"])
    ap.add_argument("--demo", action="store_true", help="also compare detections on the demo corpus")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if not (args.data / "faces").is_dir():
        print(f"skipped: no test data at {args.data}")
        return 0
    state0 = machine_state()
    print(load_text(state0))
    names = [n for n in args.detectors.split(",") if n]
    dets = make_detectors(names)
    for k, d in dets.items():
        print(f"{k}: {d.info()}")
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    report: dict = {"machine_before": state0, "detectors": {k: d.info() for k, d in dets.items()}}
    if "recall" not in args.skip:
        sources = load_sources(args.data, CLIP_FRAMES[:1] if args.quick else CLIP_FRAMES)
        res = recall(dets, iter_cases(sources, sizes, args.widths))
        n = len(next(iter(res.values()), []))
        print(f"labelled set: {n} frames from {len(sources)} sources")
        report["recall"] = {}
        for name, rows in res.items():
            s = summarise(rows)
            report["recall"][name] = {"summary": s, "rows": rows}
            _print_table(name, s, args.widths)
    if "photos" not in args.skip:
        report["photos"] = as_is_photos(dets, args.data)
        print("\nphotos as they are:")
        for photo, d in report["photos"].items():
            print(f"  {photo} {d['shape']}: " + "; ".join(
                f"{k} {v['boxes'] or 'no face'} ({v['s']:.2f} s)" for k, v in d.items() if k != "shape"))
    if "speed" not in args.skip:
        report["closeup_speed"] = sp = closeup_speed(dets, args.data, args.repeat)
        print(f"\nclose-up speed ({sp['frames']} frames of {', '.join(sp['clips'])}, best of {args.repeat}): "
              + ", ".join(f"{k} {v} ms/frame ({sp['frames_with_face'][k]} with a face)"
                          for k, v in sp["ms_per_frame"].items()))
    if args.demo:
        report["demo"] = demo_closeups(dets)
        print("\ndemo corpus:")
        for cid, row in report["demo"].items():
            print(f"  {cid}: {row}")
    report["machine_after"] = machine_state()
    print(load_text(report["machine_after"]))
    if args.json:
        from kling.atomic import atomic_write_json

        atomic_write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
