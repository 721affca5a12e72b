"""The curation stage's configuration: which profile, and where its files live."""

from pathlib import Path

import dagster as dg

from kling.config import Profile, load_profile
from kling.curate.runner import Workspace
from kling.paths import Layout


class CurationSettings(dg.ConfigurableResource):
    """Profile name or YAML path (default: $KLING_PROFILE, else demo) and the output root."""

    profile: str = ""
    output_dir: str = ""

    def load(self) -> Profile:
        return load_profile(self.profile or None)

    def workspace(self) -> Workspace:
        profile = self.load()
        return Workspace(Path(self.output_dir) if self.output_dir else Layout.default().curation(profile.name))


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"curation": CurationSettings()})
