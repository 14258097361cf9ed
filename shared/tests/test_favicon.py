"""GET /favicon.ico, which browsers ask every site for: the shared icon, not a 404."""

from pathlib import Path

from django.test import Client

import realtime_common
from realtime_common.favicon import FAVICON


def test_favicon_ico_leads_to_the_shared_icon_for_a_while_only(settings):
    settings.STATIC_URL = "/static/"
    response = Client().get("/favicon.ico")
    # 302: the icon's URL is hashed in production, so no browser may keep this answer for good.
    assert (response.status_code, response["Location"]) == (302, "/static/realtime_common/favicon.svg")
    icon = Path(realtime_common.__file__).parent / "static" / FAVICON
    assert icon.read_text().startswith("<svg ")
