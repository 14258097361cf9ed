"""Each site's icon: pages link it, so a page load asks for nothing the site lacks (no 404 for
/favicon.ico in the console), and /favicon.ico, which browsers ask for on pages that link no
icon (the admin's), leads to it."""

import pytest
from playwright.sync_api import Page

SITES = ["liveblog_site", "chat_site", "sketchpad_site"]


@pytest.mark.parametrize("site", SITES)
def test_a_page_load_fetches_the_site_s_icon_and_nothing_it_lacks(page: Page, request, site):
    url = request.getfixturevalue(site).urls[0]
    failed: list[str] = []
    page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
    # The browser asks for the icon once the page has loaded: wait for that answer.
    with page.expect_response(lambda response: "favicon" in response.url) as icon:
        page.goto(f"{url}/")
    assert icon.value.ok, f"{icon.value.url}: {icon.value.status}"
    assert icon.value.header_value("content-type") == "image/svg+xml"
    assert failed == []


@pytest.mark.parametrize("site", SITES)
def test_favicon_ico_leads_to_the_icon(page: Page, request, site):
    answer = page.request.get(f"{request.getfixturevalue(site).urls[0]}/favicon.ico")
    assert answer.ok
    assert answer.headers["content-type"] == "image/svg+xml"
    assert answer.text().startswith("<svg ")
