"""A screenshot of each demo at work, as the README shows them, and an animated picture of a
stroke reaching another screen. `make screenshots` writes them to docs/screenshots/
(E2E_SCREENSHOTS_DIR); every other run takes them too, into a temporary folder, so the pages
they show keep rendering. The sites are the screenshots' own (conftest.py: demo_*): fresh
databases holding only the seeded demo content and what these tests add."""

import io
import math
import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from pages import expect_live, log_in_as_staff
from PIL import Image, ImageDraw, ImageFont
from playwright.sync_api import Page, expect
from test_chat import chat_as, members, message, room
from test_sketchpad import at, expect_pixel, expect_ready, pick

VIEWPORT = {"width": 1100, "height": 720}
# The animated picture: each screen's board at this width, side by side, under a caption.
ANIMATION_BOARD_WIDTH = 420
ANIMATION_MAX_BYTES = 2_000_000


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


def test_the_liveblog(new_page, demo_liveblog, shots):
    url = demo_liveblog.urls[0]
    staff = new_page(url)
    log_in_as_staff(staff, url, "/djangocon/")
    expect_live(staff)
    staff.get_by_label("New post").fill("Lightning talks start in five minutes: https://2026.djangocon.eu/")
    staff.get_by_role("button", name="Publish").click()
    reader = new_page(f"{url}/djangocon/")
    expect(reader.locator("#posts article").first).to_contain_text("Lightning talks")
    expect_live(reader)
    screenshot(reader, shots / "liveblog.png")


def test_the_liveblog_fragments_page(new_page, demo_liveblog, shots):
    url = demo_liveblog.urls[0]
    reader = new_page(f"{url}/djangocon/fragments/")
    expect(reader.locator("#connection-state")).to_have_attribute("data-socket-state", "open")
    demo_liveblog.manage("post", "djangocon", "Swapped in by htmx, from HTML the server rendered.")
    expect(reader.locator("#posts article").first).to_contain_text("Swapped in by htmx")
    screenshot(reader, shots / "liveblog-fragments.png")


# (who, what): said in the seeded Lobby, each seen by the other before the next.
CONVERSATION = [
    ("alice", "Morning! Is the demo still at 10:30?"),
    ("bob", "Yes, in room B. I'll put the sketchpad on the big screen."),
    ("alice", "Perfect, I'll follow the chat from my phone."),
]


def test_the_chat(new_page, demo_chat, shots):
    first, second = demo_chat.urls
    pages = {"alice": chat_as(new_page, first, "alice", "lobby"), "bob": chat_as(new_page, second, "bob", "lobby")}
    alice = pages["alice"]
    # The seed's rooms (rooms/demo.py), none of the other tests'.
    joinable = alice.locator(".room-picker [data-join]").evaluate_all("(buttons) => buttons.map((b) => b.dataset.join)")
    assert sorted(joinable) == ["lobby", "random", "staff-room"]
    for speaker, text in CONVERSATION:
        room(pages[speaker], "lobby").get_by_label("Message").fill(text)
        room(pages[speaker], "lobby").get_by_role("button", name="Send").click()
        for page in pages.values():
            expect(message(page, "lobby", text)).to_be_visible()
    # carol comes in and starts to answer: her page has not said she types yet (at most one
    # notice every 2 s a page), so her first keystroke shows at once.
    carol = chat_as(new_page, second, "carol", "lobby")
    expect(members(alice, "lobby")).to_have_text(["alice", "bob", "carol"])
    room(carol, "lobby").get_by_label("Message").fill("Can I come too?")
    expect(room(alice, "lobby").locator(".typing")).to_have_text("carol is typing…")
    screenshot(alice, shots / "chat.png")


Point = tuple[float, float]  # on the board: from 0 to 1 across its width and down its height
# The board is 4:3: a length given as a share of its height is this share of its width.
HEIGHT_TO_WIDTH = 3 / 4


def circle(*, center: Point, radius: float, steps: int) -> list[Point]:
    """A closed circle of ``radius`` (a share of the board's height), in ``steps`` straight moves."""
    x, y = center
    turns = [2 * math.pi * step / steps for step in range(steps + 1)]
    return [(x + radius * HEIGHT_TO_WIDTH * math.cos(turn), y + radius * math.sin(turn)) for turn in turns]


def sun_rays(*, center: Point, inner: float, outer: float, count: int) -> list[list[Point]]:
    """``count`` straight strokes around ``center``, from ``inner`` to ``outer`` away from it."""
    x, y = center
    angles = [2 * math.pi * (ray + 0.5) / count for ray in range(count)]
    return [
        [(x + radius * HEIGHT_TO_WIDTH * math.cos(angle), y + radius * math.sin(angle)) for radius in (inner, outer)]
        for angle in angles
    ]


SUN_CENTER, SUN_RADIUS, SUN_COLOR = (0.8, 0.22), 0.1, "#f2c94c"
# (colour, width, points in board coordinates), colours and widths of the page's palette:
# a house on a lawn, then the sun's rays.
HOUSE = [
    ("#1a7f37", 20, [(0.04, 0.87), (0.96, 0.87)]),
    ("#e16f24", 8, [(0.22, 0.52), (0.22, 0.86), (0.52, 0.86), (0.52, 0.52), (0.22, 0.52)]),
    ("#cf222e", 20, [(0.18, 0.54), (0.37, 0.26), (0.56, 0.54)]),
    ("#8250df", 8, [(0.32, 0.86), (0.32, 0.67), (0.4, 0.67), (0.4, 0.86)]),
    ("#0969da", 8, [(0.44, 0.6), (0.49, 0.6), (0.49, 0.68), (0.44, 0.68), (0.44, 0.6)]),
    *[(SUN_COLOR, 8, ray) for ray in sun_rays(center=SUN_CENTER, inner=0.14, outer=0.19, count=8)],
]


def stroke_draw(page: Page, points: list[Point], *, each_point: Callable[[Point], None] | None = None) -> None:
    """Draw one stroke through ``points`` with the mouse; ``each_point(point)`` after each move, button down."""
    page.mouse.move(*at(page, *points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*at(page, *point), steps=4)
        if each_point:
            each_point(point)
    page.mouse.up()


def canvas_capture(page: Page) -> Image.Image:
    """The board as the page shows it, with the cursors over it, scaled to the animation's width."""
    png = page.screenshot(clip=page.locator("#canvas").bounding_box())
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return image.resize((ANIMATION_BOARD_WIDTH, round(image.height * ANIMATION_BOARD_WIDTH / image.width)))


def frame_compose(*, left: Image.Image, right: Image.Image, captions: tuple[str, str]) -> Image.Image:
    gap, caption_height = 12, 28
    frame = Image.new("RGB", (left.width + gap + right.width, caption_height + left.height), "#f6f8fa")
    draw = ImageDraw.Draw(frame)
    font = ImageFont.load_default(size=15)
    for x, caption, board in [(0, captions[0], left), (left.width + gap, captions[1], right)]:
        draw.text((x + 4, 6), caption, fill="#1f2328", font=font)
        frame.paste(board, (x, caption_height))
    return frame


# Whether every other page's cursor has come to rest, one at each of these board points (0..1), give or take a hundredth.
CURSORS_AT = """(points) => {
  const board = document.getElementById('canvas').getBoundingClientRect();
  const tips = [...document.querySelectorAll('#cursors .cursor')].map((cursor) => cursor.getBoundingClientRect())
    .map((tip) => [(tip.left - board.left) / board.width, (tip.top - board.top) / board.height]);
  return tips.length === points.length
    && points.every(([x, y]) => tips.some(([left, top]) => Math.abs(left - x) < 0.01 && Math.abs(top - y) < 0.01));
}"""


def test_the_sketchpad_and_a_stroke_reaching_another_screen(new_page, demo_sketchpad, shots):
    """On the seeded Sandbox board: one page draws a house, then the sun, which an animated
    picture shows reaching a page of the other server; two other pages' cursors rest on the board."""
    first, second = demo_sketchpad.urls
    artist, watcher, visitor = (new_page(f"{url}/sandbox/") for url in (first, second, first))
    for page in (artist, watcher, visitor):
        # Small enough that the whole board is on screen, for the animation's frames.
        page.set_viewport_size({"width": 640, "height": 720})
        expect_ready(page)

    for color, width, points in HOUSE:
        pick(artist, color, width)
        stroke_draw(artist, points)
        # Its end, drawn last (round caps): the whole stroke has reached the other server's page.
        expect_pixel(watcher, *points[-1], color)

    frames: list[Image.Image] = []

    def frame_capture(point: Point) -> None:
        expect_pixel(watcher, *point, SUN_COLOR)
        captions = ("Drawn on one screen…", "…and there on another, through the other server")
        frames.append(frame_compose(left=canvas_capture(artist), right=canvas_capture(watcher), captions=captions))

    pick(artist, SUN_COLOR, 20)
    stroke_draw(artist, circle(center=SUN_CENTER, radius=SUN_RADIUS, steps=20), each_point=frame_capture)
    animation = shots / "sketchpad.gif"
    # Each frame briefly; the finished drawing for a while before the loop starts again.
    durations = [90] * (len(frames) - 1) + [2500]
    frames[0].save(animation, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True)
    assert Image.open(animation).n_frames == len(frames)
    assert animation.stat().st_size < ANIMATION_MAX_BYTES

    # The two others point at the drawing: their cursors, with their names, on the artist's page.
    resting = {watcher: (0.62, 0.42), visitor: (0.12, 0.36)}
    for page, point in resting.items():
        page.mouse.move(*at(page, 0.5, 0.5))
        page.mouse.move(*at(page, *point), steps=5)
    artist.set_viewport_size(VIEWPORT)
    artist.wait_for_function(CURSORS_AT, arg=list(resting.values()))
    screenshot(artist, shots / "sketchpad.png")
