"""The visual expert's measurements on the reference image(s): faces (count, position, size, head pose),
hair and clothing colour, scene and lighting, shot size. Faces come from kling.perception.faces (dlib HOG +
68 landmarks; pose by solvePnP)."""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from kling.director.schema import FaceReading, VisualReading
from kling.perception.appearance import region_colour, scene_and_lighting


class VisualInputError(ValueError):
    """A reference image that cannot be read."""


def read_image(path: str | Path) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise VisualInputError(f"reference image not found: {p}")
    bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if bgr is None:
        raise VisualInputError(f"{p}: not an image OpenCV can read")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@functools.lru_cache(maxsize=1)
def _detector():
    from kling.perception.faces.detect import load_detector

    return load_detector("dlib", detect_side=None, upsample=1, landmarks=True, threads=1)


def analyse_images(paths: list[str | Path]) -> VisualReading:
    """Measure the reference images. Raises VisualInputError when one cannot be read."""
    from kling.perception.faces.pose import head_pose

    if not paths:
        raise VisualInputError("no reference image given")
    faces, notes, boxes_all = [], [], []
    hair = cloth = None
    first = None
    for k, p in enumerate(paths):
        img = read_image(p)
        first = img if first is None else first
        h, w = img.shape[:2]
        dets = _detector().detect(img[None])[0]
        boxes = []
        for d in sorted(dets, key=lambda d: -d.area):
            bw, bh = d.x1 - d.x0, d.y1 - d.y0
            yaw = pitch = roll = None
            if d.lm68 is not None:
                ypr = head_pose(np.asarray(d.lm68, np.float32)[None], w, h)[0]
                if np.isfinite(ypr).all():
                    yaw, pitch, roll = (round(float(v), 1) for v in ypr)
            faces.append(FaceReading(image=k, cx=round((d.x0 + d.x1) / 2 / w, 3), cy=round((d.y0 + d.y1) / 2 / h, 3),
                                     height_frac=round(bh / h, 3), yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll))
            boxes.append((d.x0 - 0.3 * bw, d.y0 - 0.5 * bh, d.x1 + 0.3 * bw, d.y1 + 0.2 * bh))
            if k == 0 and hair is None:  # the main face of the first image describes the subject
                hair = region_colour(img, d.x0 + 0.2 * bw, d.y0 - 0.35 * bh, d.x1 - 0.2 * bw, d.y0 - 0.05 * bh)
                cloth = region_colour(img, d.x0 - 0.1 * bw, d.y1 + 0.45 * bh, d.x1 + 0.1 * bw, d.y1 + 0.9 * bh)
        boxes_all.append(boxes)
        if not dets:
            notes.append(f"image {k}: no face found")
    n_faces = sum(1 for f in faces if f.image == 0)
    if n_faces > 1:
        notes.append(f"image 0: {n_faces} faces; the largest is taken as the subject")
    main = max((f for f in faces if f.image == 0), key=lambda f: f.height_frac, default=None)
    size = "unknown" if main is None else ("close-up" if main.height_frac > 0.35 else
                                            ("medium" if main.height_frac > 0.15 else "wide"))
    scene, lighting = scene_and_lighting(first, boxes_all[0])
    return VisualReading(n_images=len(paths), faces=faces, n_faces=n_faces, shot_size=size, hair_colour=hair,
                         clothing_colour=cloth, scene=scene, lighting=lighting, notes=notes)
