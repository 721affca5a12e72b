"""Face framing shared by the shards and generation: crop, landmark mapping and paste-back."""

from __future__ import annotations

import numpy as np

from kling.models.framing import crop, face_window, paste, to_window


def test_window_crop_and_points_agree():
    img = np.zeros((200, 300, 3), np.uint8)
    img[90:110, 140:160] = 255  # a bright square at the box centre
    win = face_window((120, 80, 180, 140), scale=2.0)
    assert win[2] == 120.0
    out = crop(img, win, 60)
    c = to_window(np.array([150.0, 100.0]), win, 60)
    assert out[int(c[1]), int(c[0])].min() > 200 and out[2, 2].max() == 0


def test_window_outside_the_image_replicates_edges_and_paste_restores():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    win = face_window((0, 0, 60, 60))  # reaches past the top-left corner
    face = crop(img, win, 64)
    assert face.shape == (64, 64, 3)
    back = paste(img, np.full_like(face, 7), win)
    assert back.shape == img.shape and (back[100:, 120:] == img[100:, 120:]).all()  # far from the window: untouched
    inner = to_window(np.array([[20.0, 20.0]]), win, 64)[0]
    assert abs(int(back[20, 20, 0]) - 7) <= 2 and 0 <= inner[0] < 64
