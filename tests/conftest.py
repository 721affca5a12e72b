"""Shared fixtures. Tests make their own data; ../shared/data is optional and skipped when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("KLING_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real clips and faces of ../shared/data, or skip."""
    if not (SHARED_DATA / "clips").is_dir():
        pytest.skip(f"shared test data absent ({SHARED_DATA})")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test writes under its own KLING_HOME / KLING_WEIGHTS, never the user's cache."""
    home = tmp_path_factory.mktemp("kling_home")
    monkeypatch.setenv("KLING_HOME", str(home))
    monkeypatch.setenv("KLING_WEIGHTS", str(home / "weights"))
    yield


def _built_once(tmp_path_factory, name: str, build) -> Path:
    """A folder that `build(folder)` fills once per test session, shared by pytest-xdist's workers (a worker
    that finds it being built waits for it): the demo corpus and its sync expert cost minutes each."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the session's folder, above the workers'
    folder, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            folder.mkdir(exist_ok=True)
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory):
    """The default demo corpus, generated once per test session (about a minute of CPU).

    Returns the manifest object of kling.demo.generate_corpus; the clips are in manifest's directory.
    """
    from kling.demo import generate_corpus
    from kling.demo.corpus import CorpusManifest

    return CorpusManifest.load(_built_once(tmp_path_factory, "demo_corpus", generate_corpus))


@pytest.fixture(scope="session")
def demo_expert(demo_corpus, tmp_path_factory):
    """The sync expert trained once per session on the demo corpus' in-sync single-person clips (the demo
    profile's recipe); returns (checkpoint folder, {held-out clip id: injected AV offset in frames})."""
    from kling.train.sync_expert import TrainConfig, clip_from_video, train_expert

    train, held_out = [], {}
    for c in demo_corpus.clips:
        if not c.has_face or "silent" in c.defects or c.identity is None or c.scene_cut_frames:
            continue
        if c.id.endswith("_halfbody"):  # the close-up recipe this fixture has always trained (the demo's own
            continue                    # expert, trained by the pipeline, does include the half-body clips)
        if c.av_offset_frames or c.id == "bo_talk":
            held_out[c.id] = c.av_offset_frames
            continue
        train.append(c.id)
    out = _built_once(tmp_path_factory, "sync_expert", lambda folder: train_expert(
        [clip_from_video(demo_corpus.path(c), clip_id=c) for c in train], folder, TrainConfig(steps=250, threads=2)))
    return out, held_out
