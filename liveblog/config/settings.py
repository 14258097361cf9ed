"""Settings of the liveblog site; everything it shares with the other sites is in realtime_common."""

from pathlib import Path

from realtime_common.settings import *  # noqa: F403
from realtime_common.settings import site_settings

globals().update(site_settings(name="liveblog", app="blog", base_dir=Path(__file__).resolve().parent.parent))

LOGIN_URL = "admin:login"
