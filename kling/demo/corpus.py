"""Recipe (datasets/demo/corpus.yaml) -> <out_dir>/<clip_id>.mp4 + ground-truth <out_dir>/corpus.json.

Idempotent: when corpus.json carries the same recipe hash and generator version and every listed file
still has its recorded sha256, nothing is written. Otherwise every clip is regenerated, each file via a
temp file and a rename, and the manifest is written last, so a crash never leaves a manifest that
vouches for missing or partial files.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from kling.atomic import atomic_write_json
from kling.demo.clip import ClipPlan, iter_clip_frames, plan_clip
from kling.demo.motion import MOTION_PARAMS
from kling.hashing import config_hash, file_sha256
from kling.io.encode import VideoWriter

log = logging.getLogger(__name__)

GENERATOR_VERSION = "2"  # bump when the renderer, synthesis or encoder changes output for the same recipe (2: reproducible x264)
MANIFEST_NAME = "corpus.json"
AV_OFFSET_CONVENTION = "positive = audio lags video (audio delayed by av_offset_frames frames)"
DEFAULT_RECIPE = Path(__file__).resolve().parents[2] / "datasets" / "demo" / "corpus.yaml"


@dataclass
class ClipRecord:
    id: str
    file: str  # relative to the corpus folder
    sha256: str
    truth_file: str  # per-frame ground truth (mouth, pose, blink) as JSON
    truth_sha256: str
    identity: str | None  # the one person in the clip; None for no face or several
    identities: list[str]  # per shot, in order
    duration_s: float
    n_frames: int
    width: int
    height: int
    fps: float
    sample_rate: int
    has_face: bool
    defects: list[str]
    av_offset_frames: int
    motion: str
    motion_params: dict[str, Any]
    scene_cut_frames: list[int]  # first frame of each new shot
    speech_segments: list[list[float]]  # [start_s, end_s] on the file's audio timeline
    blink_frames: list[int]  # blink onsets
    blur_sigma: float


@dataclass
class CorpusManifest:
    root: str
    recipe_hash: str
    generator_version: str
    seed: int
    fps: float
    sample_rate: int
    av_offset_convention: str
    clips: list[ClipRecord] = field(default_factory=list)
    generated: bool = False  # this call wrote files (False: an up-to-date corpus was reused)
    elapsed_s: float = 0.0

    def clip(self, clip_id: str) -> ClipRecord:
        for c in self.clips:
            if c.id == clip_id:
                return c
        raise KeyError(clip_id)

    def path(self, clip_id: str) -> Path:
        return Path(self.root) / self.clip(clip_id).file

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("root", "generated", "elapsed_s"):  # run facts, not corpus facts
            d.pop(k)
        return d

    @classmethod
    def load(cls, out_dir: str | Path) -> "CorpusManifest":
        out_dir = Path(out_dir)
        d = json.loads((out_dir / MANIFEST_NAME).read_text())
        clips = [ClipRecord(**c) for c in d.pop("clips")]
        return cls(root=str(out_dir), clips=clips, **d)


HALF_BODY_SWITCH = "half_body"  # recipe key: true adds the `half_body_clips` list to `clips`


def load_recipe(
    recipe_path: str | Path | None = None, seed: int | None = None, half_body: bool | None = None
) -> dict[str, Any]:
    """Parse the recipe; `seed` overrides the recipe's seed, `half_body` the recipe's half-body switch.

    The optional `half_body_clips` list joins `clips` only when the switch is on; both keys are removed
    from the returned recipe, so a recipe with the switch off hashes as if the list were not there.
    """
    path = Path(recipe_path) if recipe_path is not None else DEFAULT_RECIPE
    recipe = yaml.safe_load(path.read_text())
    extra = recipe.pop("half_body_clips", None) or []
    on = bool(recipe.pop(HALF_BODY_SWITCH, False)) if half_body is None else bool(half_body)
    recipe.pop(HALF_BODY_SWITCH, None)
    if on:
        recipe["clips"] = list(recipe.get("clips", [])) + list(extra)
    for key in ("seed", "fps", "size", "sample_rate", "identities", "clips"):
        if key not in recipe:
            raise ValueError(f"{path}: recipe lacks {key!r}")
    ids = [c["id"] for c in recipe["clips"]]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate clip ids")
    if seed is not None:
        recipe = copy.deepcopy(recipe)
        recipe["seed"] = int(seed)
    return recipe


def recipe_hash(recipe: dict[str, Any]) -> str:
    return config_hash({"recipe": recipe, "generator_version": GENERATOR_VERSION})


def _is_current(out_dir: Path, rhash: str) -> CorpusManifest | None:
    """The existing manifest when it matches `rhash` and all its files are intact, else None."""
    try:
        m = CorpusManifest.load(out_dir)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if m.recipe_hash != rhash or m.generator_version != GENERATOR_VERSION:
        return None
    for c in m.clips:
        for name, sha in ((c.file, c.sha256), (c.truth_file, c.truth_sha256)):
            p = out_dir / name
            if not p.is_file() or file_sha256(p) != sha:
                return None
    return m


def _truth(plan: ClipPlan) -> dict[str, Any]:
    r4 = lambda a: [round(float(v), 4) for v in a]  # noqa: E731
    shot_of = np.zeros(plan.n_frames, np.int32)
    for k, s in enumerate(plan.shots):
        shot_of[s.start : s.end] = k
    return {
        "id": plan.id,
        "fps": plan.fps,
        "mouth_open": r4(plan.mouth),
        **{k: r4(v) for k, v in plan.tracks.items()},
        "shot": shot_of.tolist(),
    }


def write_clip(plan: ClipPlan, out_dir: Path, crf: int = 18, preset: str = "medium") -> ClipRecord:
    """Encode one planned clip (streamed in chunks) and its ground-truth sidecar; return its record."""
    video = out_dir / f"{plan.id}.mp4"
    truth = out_dir / f"{plan.id}.truth.json"
    with VideoWriter(video, fps=plan.fps, width=plan.size, height=plan.frame_height, sample_rate=plan.sample_rate,
                     crf=crf, preset=preset) as w:
        w.write_audio(plan.audio)
        for chunk in iter_clip_frames(plan):
            w.write(chunk)
    atomic_write_json(truth, _truth(plan))
    names = [s.identity for s in plan.shots]
    faces = sorted({n for n in names if n is not None})
    return ClipRecord(
        id=plan.id, file=video.name, sha256=file_sha256(video), truth_file=truth.name,
        truth_sha256=file_sha256(truth), identity=faces[0] if len(faces) == 1 else None,
        identities=[n for n in names if n is not None], duration_s=plan.n_frames / plan.fps,
        n_frames=plan.n_frames, width=plan.size, height=plan.frame_height, fps=plan.fps,
        sample_rate=plan.sample_rate, has_face=plan.has_face, defects=list(plan.defects),
        av_offset_frames=plan.av_offset_frames, motion=plan.motion,
        motion_params=copy.deepcopy(MOTION_PARAMS[plan.motion]),
        scene_cut_frames=[s.start for s in plan.shots[1:]],
        speech_segments=[[a, b] for a, b in plan.speech_segments], blink_frames=list(plan.blink_onsets),
        blur_sigma=plan.blur_sigma,
    )


def generate_corpus(
    out_dir: str | Path,
    recipe_path: str | Path | None = None,
    seed: int | None = None,
    force: bool = False,
    clip_ids: list[str] | None = None,
    half_body: bool | None = None,
) -> CorpusManifest:
    """Generate (or reuse) the demo corpus in `out_dir`; `clip_ids` restricts it to a subset;
    `half_body` overrides the recipe's switch for its half-body clips."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    recipe = load_recipe(recipe_path, seed, half_body)
    if clip_ids is not None:
        missing = set(clip_ids) - {c["id"] for c in recipe["clips"]}
        if missing:
            raise KeyError(f"unknown clip ids: {sorted(missing)}")
        recipe["clips"] = [c for c in recipe["clips"] if c["id"] in set(clip_ids)]
    rhash = recipe_hash(recipe)
    if not force:
        current = _is_current(out_dir, rhash)
        if current is not None:
            log.info("demo corpus in %s is up to date (recipe %s)", out_dir, rhash)
            return current
    out_dir.mkdir(parents=True, exist_ok=True)
    old = None
    try:
        old = CorpusManifest.load(out_dir)
    except (OSError, ValueError, TypeError, KeyError):
        pass
    records = []
    for spec in recipe["clips"]:
        plan = plan_clip(spec, recipe, recipe["seed"])
        records.append(write_clip(plan, out_dir, crf=int(recipe.get("crf", 18)),
                                  preset=str(recipe.get("preset", "medium"))))
        log.info("demo clip %s: %d frames, defects=%s", plan.id, plan.n_frames, plan.defects or "none")
    manifest = CorpusManifest(
        root=str(out_dir), recipe_hash=rhash, generator_version=GENERATOR_VERSION, seed=int(recipe["seed"]),
        fps=float(recipe["fps"]), sample_rate=int(recipe["sample_rate"]),
        av_offset_convention=AV_OFFSET_CONVENTION, clips=records, generated=True,
    )
    atomic_write_json(out_dir / MANIFEST_NAME, manifest.to_json())
    if old is not None:  # files of clips the new recipe no longer has
        keep = {r.file for r in records} | {r.truth_file for r in records}
        for c in old.clips:
            for name in (c.file, c.truth_file):
                if name not in keep:
                    (out_dir / name).unlink(missing_ok=True)
    manifest.elapsed_s = time.perf_counter() - t0
    return manifest
