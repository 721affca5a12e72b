"""Every shipped profile's generated systems and avatar training sections are valid configurations."""

import pytest

from kling.config import PROFILES_DIR, load_profile
from kling.generate.system import SystemConfig
from kling.train.avatar import AvatarTrainConfig
from kling.train.super_resolution import SuperResolutionTrainConfig
from kling.train.vae import VaeTrainConfig


@pytest.mark.parametrize("name", sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))
def test_profile_systems_and_trainers_parse(name):
    profile = load_profile(name)
    systems = {k: SystemConfig.from_profile(v or {}) for k, v in (profile.section("generation").get("systems") or {}).items()}
    assert systems
    training = profile.section("training")
    for key, cls in (("avatar_vae", VaeTrainConfig), ("avatar", AvatarTrainConfig), ("super_resolution", SuperResolutionTrainConfig)):
        cls(**(training.get(key) or {}))
    if name == "demo":  # the demo compares the full cascade (with super-resolution) with the chunked baseline
        assert systems["cascade.tiny"].cascade.super_resolution and systems["chunked.tiny"].cascade is None
