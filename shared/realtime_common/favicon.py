"""GET /favicon.ico: the sites' icon. Pages link it (realtime_common/base.html), but browsers
still ask for /favicon.ico on pages that link none (the admin's, a JSON answer): without
this, every such page load logs a 404."""

from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import redirect
from django.templatetags.static import static

# One icon for every site, in realtime_common's static files.
FAVICON = "realtime_common/favicon.svg"


def favicon_redirect(request: HttpRequest) -> HttpResponseRedirect:
    # Temporary (302), not permanent: the static URL is hashed in production and changes with
    # the icon, so a browser must not keep this answer longer than the icon itself.
    return redirect(static(FAVICON))
