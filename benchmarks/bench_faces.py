"""Face-track throughput (frames/s) against decode-only throughput of the same clip, in one process.

    python benchmarks/bench_faces.py [CLIP.mp4 ...] [--detector auto|dlib|scrfd] [--repeat 3] [--json out.json]

Per clip (default ../shared/data/clips/*.mp4 next to the repository root; "skipped: no clips" when absent):
  decode : kling.io.decode.iter_frames at 25 fps with the face step's chunk size;
  detect : the detector alone on frames already in memory (one chunk at a time; decode excluded);
  tracks : kling.perception.faces.tracks.compute_face_tracks (decode overlapped with detection, tracking, table).
The ratios tracks/decode and tracks/detect say how far the step is from its floors. Best of --repeat, with the
load average printed; ratios only, never pass/fail.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_curation import DEFAULT_CLIPS_DIR, FPS, Timer, default_clips, load_text, machine_state  # noqa: E402


def bench_clip(path: Path, config, detector, repeat: int) -> dict:
    from kling.perception.faces.tracks import compute_face_tracks
    from kling.io.decode import iter_frames

    dec, det, trk = [], [], []
    n = 0
    for _ in range(repeat):
        with Timer() as t:
            chunks = list(iter_frames(path, fps=FPS, chunk_size=config.chunk_size, max_side=config.max_side))
        dec.append(t)
        n = sum(len(c) for c in chunks)
        with Timer() as t:
            for c in chunks:
                detector.detect(c.frames)
        det.append(t)
        del chunks
        with Timer() as t:
            result = compute_face_tracks(path, detector=detector, config=config)
        trk.append(t)

    def best(ts):
        b = min(ts, key=lambda x: x.wall)
        return {"wall_s": b.wall, "cpu_s": b.cpu, "frames_per_s": n / b.wall}

    d, e, k = best(dec), best(det), best(trk)
    return {"clip": str(path), "name": path.name, "frames": n, "decode": d, "detect": e, "tracks": k,
            "tracks_to_decode": k["frames_per_s"] / d["frames_per_s"],
            "tracks_to_detect": k["frames_per_s"] / e["frames_per_s"],
            "face_found_rate": result.summary["face_found_rate"], "n_tracks": result.summary["n_tracks"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path)
    ap.add_argument("--detector", default="auto", choices=["auto", "dlib", "scrfd"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    paths = args.paths or default_clips()
    if not paths:
        print(f"skipped: no clips (looked in {DEFAULT_CLIPS_DIR})")
        return 0
    from kling.perception.faces.tracks import FaceTrackConfig, detector_for

    config = FaceTrackConfig(detector=args.detector)
    with Timer() as t_load:
        detector = detector_for(config)
    info = detector.info() if hasattr(detector, "info") else {}
    before = machine_state()
    print(f"bench_faces: detector={info.get('name', '?')} (loaded in {t_load.wall:.2f}s) "
          f"threads={getattr(detector, 'threads', '?')}; {load_text(before)}")
    rows = [bench_clip(Path(p).resolve(), config, detector, max(1, args.repeat)) for p in paths]
    hdr = f"{'clip':<26}{'frames':>7}{'decode f/s':>12}{'detect f/s':>12}{'tracks f/s':>12}{'trk/dec':>9}{'trk/det':>9}"
    print(hdr + "\n" + "-" * len(hdr))
    for r in rows:
        print(f"{r['name'][:25]:<26}{r['frames']:>7}{r['decode']['frames_per_s']:>12.1f}"
              f"{r['detect']['frames_per_s']:>12.1f}{r['tracks']['frames_per_s']:>12.1f}"
              f"{r['tracks_to_decode']:>9.3f}{r['tracks_to_detect']:>9.3f}")
    after = machine_state()
    print(f"after: {load_text(after)}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"benchmark": "faces", "detector": info, "clips": rows,
                                         "machine_before": before, "machine_after": after}, indent=2, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
