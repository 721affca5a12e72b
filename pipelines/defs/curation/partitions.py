"""One static partition per source video: a new file adds a key and recomputes nothing else.

The key set is read from the profile's source folder when the code location loads (reload it in the UI
after adding videos; the CLI loads fresh each time).
"""

import dagster as dg

from kling.config import load_profile
from kling.curate.sources import profile_videos

video_partitions = dg.StaticPartitionsDefinition([ref.video_id for ref in profile_videos(load_profile())])
