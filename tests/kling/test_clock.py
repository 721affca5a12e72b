"""The media clock has one owner (kling.clock), and profiles cannot change it."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import numpy as np
import pytest

from kling.clock import FPS, MFCC_PER_FRAME, SAMPLE_RATE, SAMPLES_PER_FRAME
from kling.config import ProfileError, load_profile

REPO = Path(__file__).resolve().parents[2]


def test_clock_is_consistent_with_syncnets_mfcc():
    assert SAMPLES_PER_FRAME * FPS == SAMPLE_RATE
    from kling.perception.sync.audio import compute_mfcc

    # python_speech_features (the reference's MFCC) adds MFCC_PER_FRAME columns per video frame of audio
    cols = [compute_mfcc(np.zeros(k * SAMPLES_PER_FRAME)).shape[1] for k in (10, 11, 12)]
    assert np.diff(cols).tolist() == [MFCC_PER_FRAME, MFCC_PER_FRAME]


def test_clock_imports_nothing_from_the_project():
    tree = ast.parse((REPO / "kling" / "clock.py").read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert imports == []


def _clock_literals(path: Path) -> list[str]:
    """Code lines (strings and comments aside) that spell the clock as a number: 16000 anywhere, 25 on a line
    that names fps, 640 on a line that names audio or samples (SCRFD's 640 px input is no clock)."""
    out = []
    tokens = list(tokenize.generate_tokens(io.StringIO(path.read_text()).readline))
    by_line: dict[int, list[tokenize.TokenInfo]] = {}
    for t in tokens:
        by_line.setdefault(t.start[0], []).append(t)
    for line, toks in by_line.items():
        nums = {t.string.replace("_", "") for t in toks if t.type == tokenize.NUMBER}
        names = {t.string.lower() for t in toks if t.type in (tokenize.NAME, tokenize.STRING)}  # and dict keys
        fps = any("fps" in n for n in names)
        audio = any("audio" in n or "sampl" in n for n in names)
        if nums & {"16000", "16000.0"} or (nums & {"25", "25.0"} and fps) or ("640" in nums and audio):
            out.append(f"{path.relative_to(REPO)}:{line}")
    return out


def test_no_clock_literals_outside_the_clock():
    files = [p for top in ("kling", "eval", "pipelines") for p in (REPO / top).rglob("*.py")]
    found = [hit for p in files if p != REPO / "kling" / "clock.py" for hit in _clock_literals(p)]
    assert found == [], "use kling.clock (FPS, SAMPLE_RATE, SAMPLES_PER_FRAME) instead of literals"


def test_shipped_profiles_load():
    for name in ("demo", "paper"):
        assert load_profile(name).name == name


def _profile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("section", "key", "value", "unit"), [
    ("normalise", "fps", "30", "25 fps"),
    ("normalise", "sample_rate", "44100", "16000 Hz"),
    ("faces", "fps", "29.97", "25 fps"),
    ("normalise", "fps", "null", "25 fps"),
])
def test_profile_cannot_change_the_clock(tmp_path, section, key, value, unit):
    path = _profile(tmp_path, f"profile: mine\n{section}:\n  {key}: {value}\n")
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    msg = str(err.value)
    shown = {"null": "None"}.get(value, value)
    assert f"{section}.{key} is {shown}" in msg and unit in msg and "kling.clock" in msg and str(path) in msg


def test_profile_may_repeat_the_clock(tmp_path):
    path = _profile(tmp_path, "profile: mine\nnormalise:\n  fps: 25\n  sample_rate: 16000\n  crf: 20\n")
    assert load_profile(path).section("normalise") == {"fps": 25, "sample_rate": 16000, "crf": 20}


def test_curation_configs_default_to_the_clock():
    from kling.curate.normalise import NormaliseConfig
    from kling.curate.quality import QualityConfig
    from kling.perception.faces.tracks import FaceTrackConfig

    n = NormaliseConfig()
    assert (n.fps, n.sample_rate) == (FPS, SAMPLE_RATE)
    assert FaceTrackConfig().fps == QualityConfig().fps == FPS
