"""Settings of the sketchpad site; everything it shares with the other sites is in realtime_common."""

from pathlib import Path

from realtime_common.settings import *  # noqa: F403
from realtime_common.settings import site_settings

globals().update(
    site_settings(name="sketchpad", app="boards", base_dir=Path(__file__).resolve().parent.parent, workers=True)
)

# The channel the thumbnail worker listens on: `manage.py runworker --layer worker thumbnails`.
THUMBNAIL_CHANNEL = "thumbnails"
# A page whose live cursor has not moved for this many seconds (no cursor frame)
# has it taken off every other page, and its place among the board's cursors
# freed (boards/cursors.py). Tests shorten it.
CURSOR_IDLE_SECONDS = 10.0
