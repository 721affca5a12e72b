"""Face crops as the reference's ``run_pipeline.crop_video`` makes them, from one track's boxes.

Per frame: box half size s = max(w, h) / 2 and centre (x, y); the three series are median filtered with
``scipy.signal.medfilt(kernel_size=13)`` (which zero-pads the ends, so the first and last six frames are
pulled towards smaller/left-upper boxes; the reference does the same and we keep it). With crop scale
cs = 0.4 and padding p = int(s * (1 + 2cs)) of grey (110) around the frame, the crop is rows
[int(y + p - s), int(y + p + s(1 + 2cs))) and columns [int(x + p - s(1 + cs)), int(x + p + s(1 + cs)))
of the padded frame (the mouth sits in the lower part), resized to 224x224 with cv2's default bilinear.

Differences from the reference, on purpose: we never pad the whole frame (only the crop window is read,
with grey outside the frame, which gives the same pixels), and the crops stay in memory in RGB order
(the reference writes them to an XVID .avi and re-reads them through JPEG files: both lossy).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CROP_SCALE = 0.4
CROP_SIZE = 224
PAD_VALUE = 110
MEDFILT_KERNEL = 13


@dataclass(frozen=True)
class TrackBoxes:
    """One face track on the 25 fps timeline: contiguous frames and their (x0, y0, x1, y1) boxes."""

    track_id: int
    frames: np.ndarray  # (n,) int, consecutive
    boxes: np.ndarray  # (n, 4) float

    @property
    def start(self) -> int:
        return int(self.frames[0])

    @property
    def end(self) -> int:  # exclusive
        return int(self.frames[-1]) + 1


def fill_track(track_id: int, frames: np.ndarray, boxes: np.ndarray) -> TrackBoxes:
    """Sort, drop duplicate frames and linearly interpolate missing ones (the reference interpolates
    its tracks with interp1d over the frame range)."""
    frames = np.asarray(frames, dtype=np.int64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(frames, kind="stable")
    frames, boxes = frames[order], boxes[order]
    keep = np.r_[True, np.diff(frames) > 0]
    frames, boxes = frames[keep], boxes[keep]
    full = np.arange(frames[0], frames[-1] + 1)
    if len(full) != len(frames):
        boxes = np.stack([np.interp(full, frames, boxes[:, j]) for j in range(4)], axis=1)
    return TrackBoxes(int(track_id), full, boxes)


def medfilt(x: np.ndarray, kernel_size: int) -> np.ndarray:
    """scipy.signal.medfilt of a 1-D series (zero-padded ends, odd kernel), in numpy: the same numbers, without
    importing scipy.signal (0.6 s of every command's start)."""
    if kernel_size % 2 != 1:
        raise ValueError("kernel_size must be odd")
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return x
    padded = np.pad(x, kernel_size // 2)
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, kernel_size), axis=-1)


def smooth_boxes(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(s, x, y): half size and centre per frame, each median filtered as the reference does."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.maximum(b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]) / 2
    y = (b[:, 1] + b[:, 3]) / 2
    x = (b[:, 0] + b[:, 2]) / 2
    return tuple(medfilt(v, MEDFILT_KERNEL) for v in (s, x, y))  # type: ignore[return-value]


def _window(frame: np.ndarray, r0: int, r1: int, c0: int, c1: int, pad: int, fill: int) -> np.ndarray:
    """frame padded by `pad` of `fill` on every side, sliced [r0:r1, c0:c1] with numpy's clipping,
    without building the padded frame."""
    h, w = frame.shape[:2]
    ph, pw = h + 2 * pad, w + 2 * pad
    r0, r1 = min(max(r0, 0), ph), min(max(r1, 0), ph)  # numpy slice clipping (indices are >= 0 here)
    c0, c1 = min(max(c0, 0), pw), min(max(c1, 0), pw)
    out = np.full((max(r1 - r0, 0), max(c1 - c0, 0), frame.shape[2]), fill, dtype=frame.dtype)
    fr0, fr1 = max(r0 - pad, 0), min(r1 - pad, h)
    fc0, fc1 = max(c0 - pad, 0), min(c1 - pad, w)
    if fr1 > fr0 and fc1 > fc0:
        out[fr0 + pad - r0 : fr1 + pad - r0, fc0 + pad - c0 : fc1 + pad - c0] = frame[fr0:fr1, fc0:fc1]
    return out


def crop_face(frame: np.ndarray, s: float, x: float, y: float, crop_scale: float = CROP_SCALE,
              size: int = CROP_SIZE, pad_value: int = PAD_VALUE) -> np.ndarray:
    """One (size, size, 3) crop of `frame` (H, W, 3) around a smoothed box (half size s, centre x, y)."""
    cs = crop_scale
    bsi = int(s * (1 + 2 * cs))
    my, mx = y + bsi, x + bsi
    face = _window(frame, int(my - s), int(my + s * (1 + 2 * cs)), int(mx - s * (1 + cs)), int(mx + s * (1 + cs)),
                   bsi, pad_value)
    if face.shape[0] == 0 or face.shape[1] == 0:
        raise ValueError(f"empty face crop (box half size {s:.2f})")
    return cv2.resize(face, (size, size))


class TrackCropper:
    """Crops one smoothed track out of frames arriving in timeline order (chunks of a decoder)."""

    def __init__(self, track: TrackBoxes, crop_scale: float = CROP_SCALE, size: int = CROP_SIZE):
        self.track = track
        self.s, self.x, self.y = smooth_boxes(track.boxes)
        self.crop_scale = crop_scale
        self.size = size

    def crops(self, frames: np.ndarray, start: int) -> np.ndarray:
        """Crops for the frames of this chunk (frames[i] is timeline frame start + i) inside the track."""
        lo, hi = max(start, self.track.start), min(start + len(frames), self.track.end)
        if hi <= lo:
            return np.zeros((0, self.size, self.size, 3), dtype=np.uint8)
        out = np.empty((hi - lo, self.size, self.size, 3), dtype=np.uint8)
        for k, f in enumerate(range(lo, hi)):
            j = f - self.track.start
            out[k] = crop_face(frames[f - start], self.s[j], self.x[j], self.y[j], self.crop_scale, self.size)
        return out
