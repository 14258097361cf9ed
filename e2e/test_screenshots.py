"""A screenshot of each demo at work, as the README shows them. `make screenshots`
writes them to docs/screenshots/ (E2E_SCREENSHOTS_DIR); every other run takes them
too, into a temporary folder, so the pages they show keep rendering."""

import os
import struct
from pathlib import Path

import pytest
from pages import expect_live, log_in_as_staff
from playwright.sync_api import Page, expect
from test_chat import chat_as, room, say
from test_sketchpad import BLUE, CANVAS_PIXEL, RED, create_board, draw_line

VIEWPORT = {"width": 1100, "height": 720}


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("E2E_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page: Page, path: Path) -> None:
    page.set_viewport_size(VIEWPORT)
    page.screenshot(path=path)
    width, height = struct.unpack(">II", path.read_bytes()[16:24])  # the PNG's IHDR
    assert (width, height) == (VIEWPORT["width"], VIEWPORT["height"])


def test_the_liveblog(new_page, liveblog_site, shots):
    url = liveblog_site.urls[0]
    staff = new_page(url)
    log_in_as_staff(staff, url, "/djangocon/")
    expect_live(staff)
    staff.get_by_label("New post").fill("Lightning talks start in five minutes: https://2026.djangocon.eu/")
    staff.get_by_role("button", name="Publish").click()
    reader = new_page(f"{url}/djangocon/")
    expect(reader.locator("#posts article").first).to_contain_text("Lightning talks")
    expect_live(reader)
    screenshot(reader, shots / "liveblog.png")


def test_the_liveblog_fragments_page(new_page, liveblog_site, shots):
    url = liveblog_site.urls[0]
    reader = new_page(f"{url}/djangocon/fragments/")
    expect(reader.locator("#connection-state")).to_have_attribute("data-socket-state", "open")
    liveblog_site.manage("post", "djangocon", "Swapped in by htmx: no script of ours on this page.")
    expect(reader.locator("#posts article").first).to_contain_text("Swapped in by htmx")
    screenshot(reader, shots / "liveblog-fragments.png")


def test_the_chat(new_page, chat, shots):
    url = chat.urls[0]
    chat.manage(
        "shell",
        "-c",
        "from rooms.models import Room; Room.objects.get_or_create(slug='tour', defaults={'title': 'Tour'})",
    )
    alice = chat_as(new_page, url, "alice", "tour")
    bob = chat_as(new_page, chat.urls[-1], "bob", "tour")
    say(alice, "tour", "Hello from one server")
    say(bob, "tour", "and hello from the other")
    expect(room(alice, "tour").locator(".message")).to_have_count(2)
    expect(room(alice, "tour").locator(".members li")).to_have_text(["alice", "bob"])
    screenshot(alice, shots / "chat.png")


def test_the_sketchpad(new_page, sketchpad_site, shots):
    url = sketchpad_site.urls[0]
    artist = new_page(f"{url}/")
    path = create_board(artist)
    expect_live(artist)
    viewer = new_page(f"{url}{path}")
    expect_live(viewer)
    artist.locator("#color").fill(RED)
    draw_line(artist, (0.15, 0.3), (0.85, 0.3))
    artist.locator("#color").fill(BLUE)
    draw_line(artist, (0.2, 0.75), (0.8, 0.5))
    # Both strokes have reached the other screen.
    for point, colour in [((0.5, 0.3), RED), ((0.5, 0.625), BLUE)]:
        viewer.wait_for_function(f"() => ({CANVAS_PIXEL})({list(point)}) === '{colour}'")
    screenshot(viewer, shots / "sketchpad.png")
