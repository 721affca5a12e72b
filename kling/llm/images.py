"""Images for vision models: RGB arrays as base64 data URLs in the OpenAI message format."""

from __future__ import annotations

import base64

import cv2
import numpy as np


def jpeg_data_url(frame: np.ndarray, max_side: int = 512, quality: int = 85) -> str:
    """RGB uint8 frame -> data:image/jpeg;base64 URL, downscaled so its long side is at most max_side."""
    h, w = frame.shape[:2]
    if max(h, w) > max_side:
        s = max_side / max(h, w)
        frame = cv2.resize(frame, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def image_part(frame: np.ndarray, max_side: int = 512) -> dict:
    """One image content part of a chat message."""
    return {"type": "image_url", "image_url": {"url": jpeg_data_url(frame, max_side)}}


def user_message(text: str, frames: list[np.ndarray] = (), max_side: int = 512) -> dict:
    """A user turn: text, then the frames in order (a plain string when there are none)."""
    if not frames:
        return {"role": "user", "content": text}
    return {"role": "user", "content": [{"type": "text", "text": text}] + [image_part(f, max_side) for f in frames]}
