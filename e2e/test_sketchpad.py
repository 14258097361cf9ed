"""Browser tests of the sketchpad: two daphne processes on one Redis, the thumbnail
worker beside them, and pages in separate browser contexts. What is on a board is
checked on the canvas's pixels, as people see it."""

import re
import statistics
import uuid

import pytest
from playwright.sync_api import Page, expect

# Two of the palette's colours (boards/templates/boards/board.html), and the board's.
RED, BLUE, WHITE = "#cf222e", "#0969da", "#ffffff"
# The palette's widths, in thousandths of the board's width.
FINE, MEDIUM, THICK, BROAD = 3, 8, 20, 48

# The colour of a 2D context's pixel, as "#rrggbb".
COLOR_AT = """(context, x, y) => '#' + [...context.getImageData(x, y, 1, 1).data.slice(0, 3)]
  .map((value) => value.toString(16).padStart(2, '0')).join('')"""

# The colour of the board's canvas at a point given in board coordinates (0..1).
CANVAS_PIXEL = f"""([x, y]) => {{
  const canvas = document.getElementById('canvas');
  return ({COLOR_AT})(canvas.getContext('2d'), Math.floor(x * canvas.width), Math.floor(y * canvas.height));
}}"""

# The colour of a board's gallery thumbnail at its centre, once loaded; null before.
THUMBNAIL_CENTRE = f"""(slug) => {{
  const image = document.querySelector(`[data-board="${{slug}}"] img.thumbnail`);
  if (image.hidden || !image.complete || !image.naturalWidth) return null;
  const canvas = document.createElement('canvas');
  [canvas.width, canvas.height] = [image.naturalWidth, image.naturalHeight];
  const context = canvas.getContext('2d');
  context.drawImage(image, 0, 0);
  return ({COLOR_AT})(context, canvas.width / 2, canvas.height / 2);
}}"""


def create_board(page: Page) -> str:
    """Create a board from the gallery page; returns its path, with the page on it."""
    page.get_by_label("New board").fill(f"Board {uuid.uuid4().hex[:8]}")
    page.get_by_role("button", name="Create board").click()
    expect(page).to_have_url(re.compile(r"/board-[0-9a-f]{8}-[0-9a-f]{6}/$"))
    expect_ready(page)
    return re.sub(r"^https?://[^/]+", "", page.url)


def two_on_a_new_board(new_page, site) -> tuple[Page, Page, str]:
    """Alice creates a board on one daphne process and Bob opens it on the other;
    returns both pages, ready, and the board's path."""
    first, second = site.urls
    alice = new_page(first)
    path = create_board(alice)
    bob = new_page(f"{second}{path}")
    expect_ready(bob)
    return alice, bob, path


def expect_ready(page: Page) -> None:
    """Connected, and the board's snapshot is drawn."""
    expect(page.locator("#board")).to_have_attribute("aria-busy", "false")


# Whether two "#rrggbb" colours are the same, give or take 2 per channel: where a stroke's segments overlap, the
# canvas blends its colour over itself with 8-bit rounding (#cf222e can come out #cf212e; only 0 and 255 are exact).
COLOR_NEAR = """(a, b) => a !== null
  && [1, 3, 5].every((i) => Math.abs(parseInt(a.slice(i, i + 2), 16) - parseInt(b.slice(i, i + 2), 16)) <= 2)"""


def expect_pixel(page: Page, x: float, y: float, color: str) -> None:
    page.wait_for_function(
        f"([x, y, color]) => ({COLOR_NEAR})(({CANVAS_PIXEL})([x, y]), color)", arg=[x, y, color], timeout=10_000
    )


def at(page: Page, x: float, y: float) -> tuple[float, float]:
    """Board coordinates to the page's coordinates, for the mouse."""
    box = page.locator("#canvas").bounding_box()
    return box["x"] + x * box["width"], box["y"] + y * box["height"]


def pick(page: Page, color: str, width: int) -> None:
    """Chooses a colour and a width of the palette, by their values."""
    page.locator(f'#tools input[name="color"][value="{color}"]').check()
    page.locator(f'#tools input[name="width"][value="{width}"]').check()


def draw_line(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*at(page, *start))
    page.mouse.down()
    page.mouse.move(*at(page, *end), steps=10)
    page.mouse.up()


def draw_stroke(page: Page, color: str, width: int, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A line in a colour and a width picked from the palette first."""
    pick(page, color, width)
    draw_line(page, start, end)


def test_a_stroke_appears_on_another_screen_while_it_is_drawn_and_for_late_joiners(new_page, sketchpad_site):
    alice, bob, path = two_on_a_new_board(new_page, sketchpad_site)

    pick(alice, RED, THICK)
    alice.mouse.move(*at(alice, 0.2, 0.5))
    alice.mouse.down()
    alice.mouse.move(*at(alice, 0.5, 0.5), steps=10)
    # Alice has not let go of the button: the stroke is still being drawn.
    expect_pixel(bob, 0.35, 0.5, RED)
    alice.mouse.move(*at(alice, 0.8, 0.5), steps=10)
    expect_pixel(bob, 0.7, 0.5, RED)
    alice.mouse.up()

    carol = new_page(f"{sketchpad_site.urls[0]}{path}")
    expect_ready(carol)
    for x in [0.2, 0.5, 0.8]:
        expect_pixel(carol, x, 0.5, RED)
    expect_pixel(carol, 0.5, 0.3, WHITE)


def test_the_drawing_scales_with_the_window(new_page, sketchpad_site):
    alice = new_page(sketchpad_site.urls[0])
    create_board(alice)
    draw_stroke(alice, BLUE, THICK, (0.1, 0.1), (0.9, 0.9))
    expect_pixel(alice, 0.5, 0.5, BLUE)
    wide = alice.evaluate("document.getElementById('canvas').width")

    alice.set_viewport_size({"width": 480, "height": 800})
    alice.wait_for_function("(wide) => document.getElementById('canvas').width < wide", arg=wide)
    for point in [0.2, 0.5, 0.8]:
        expect_pixel(alice, point, point, BLUE)
    expect_pixel(alice, 0.8, 0.2, WHITE)


# The board's canvas and the column it is in (main's content box), in CSS pixels.
BOARD_AND_COLUMN = """() => {
  const canvas = document.getElementById('canvas').getBoundingClientRect();
  const main = document.querySelector('main');
  const padding = parseFloat(getComputedStyle(main).paddingRight);
  return {top: canvas.top, bottom: canvas.bottom, right: canvas.right, width: canvas.width, height: canvas.height,
          columnRight: main.getBoundingClientRect().right - padding};
}"""


@pytest.mark.parametrize(
    ("width", "height", "fills"),
    [
        (600, 1000, "width"),
        (1200, 1000, "width"),
        # A phone turned sideways: too short for a board as wide as the column, it is as tall as fits.
        (667, 375, "height"),
    ],
)
def test_the_board_fills_the_column_at_four_by_three(new_page, sketchpad_site, width, height, fills):
    page = new_page(sketchpad_site.urls[0])
    page.set_viewport_size({"width": width, "height": height})
    create_board(page)
    box = page.evaluate(BOARD_AND_COLUMN)
    # The whole board in the window as the page opens: a board you cannot see whole is hard to draw on.
    assert box["top"] >= 0
    assert box["bottom"] <= height
    assert box["height"] == pytest.approx(box["width"] * 3 / 4, abs=1)
    if fills == "width":
        # Its right edge is the column's (give or take the frame's border).
        assert box["right"] == pytest.approx(box["columnRight"], abs=2)
        # Tools above the board on a narrow window, beside it on a wide one: there it is still most of the width.
        assert box["width"] >= 0.75 * width
    else:
        # As large as the window's height below the site's header allows, not a thumbnail.
        assert box["height"] >= 0.6 * height
    # Its drawing surface too (a pixel per device pixel): a point of the board lands where it was drawn.
    pixels = page.evaluate("() => [document.getElementById('canvas').width, document.getElementById('canvas').height]")
    assert pixels[1] == pytest.approx(pixels[0] * 3 / 4, abs=1)


def test_a_stroke_drawn_on_a_phone_lands_at_the_same_place_of_the_board_on_a_wide_screen(new_page, sketchpad_site):
    alice, bob, _ = two_on_a_new_board(new_page, sketchpad_site)
    alice.set_viewport_size({"width": 390, "height": 844})
    bob.set_viewport_size({"width": 1280, "height": 1000})

    draw_stroke(alice, RED, THICK, (0.2, 0.2), (0.8, 0.6))
    draw_stroke(bob, BLUE, THICK, (0.2, 0.8), (0.8, 0.8))
    for page in [alice, bob]:
        # On the line from (0.2, 0.2) to (0.8, 0.6), and off it.
        expect_pixel(page, 0.5, 0.4, RED)
        expect_pixel(page, 0.5, 0.8, BLUE)
        expect_pixel(page, 0.5, 0.6, WHITE)


def test_the_palette_chooses_the_colour_and_width_of_what_is_drawn_by_mouse_or_keyboard(new_page, sketchpad_site):
    alice, bob, _ = two_on_a_new_board(new_page, sketchpad_site)
    # Big enough that the fine width is over two pixels wide: its middle pixel is then its colour, not a blend.
    bob.set_viewport_size({"width": 1280, "height": 1000})
    colours, widths = (alice.get_by_role("group", name=name) for name in ["Colour", "Width"])

    # With the mouse.
    colours.get_by_role("radio", name="Red").click()
    widths.get_by_role("radio", name="Broad").click()
    draw_line(alice, (0.1, 0.3), (0.9, 0.3))
    # With the keyboard: the arrow keys move the choice within a group, as in every group of radio buttons.
    colours.get_by_role("radio", name="Green").focus()
    alice.keyboard.press("ArrowRight")
    expect(colours.get_by_role("radio", name="Blue")).to_be_checked()
    widths.get_by_role("radio", name="Medium").focus()
    alice.keyboard.press("ArrowLeft")
    expect(widths.get_by_role("radio", name="Fine")).to_be_checked()
    draw_line(alice, (0.1, 0.7), (0.9, 0.7))

    # A broad red line: red two hundredths of the board's height from its middle. A fine blue one: white there.
    expect_pixel(bob, 0.5, 0.3, RED)
    expect_pixel(bob, 0.5, 0.32, RED)
    expect_pixel(bob, 0.5, 0.7, BLUE)
    expect_pixel(bob, 0.5, 0.72, WHITE)


# Moves the pointer that is down on the canvas through `points` (board coordinates), one pointermove each:
# dispatched in the page, as 10,000 moves through Playwright's mouse would take minutes.
MOVE_THROUGH = """([pointerId, points]) => {
  const canvas = document.getElementById('canvas');
  const rect = canvas.getBoundingClientRect();
  for (const [x, y] of points) {
    const at = { clientX: rect.left + x * rect.width, clientY: rect.top + y * rect.height };
    canvas.dispatchEvent(new PointerEvent('pointermove', { pointerId, isPrimary: true, buttons: 1, ...at }));
  }
}"""


def test_a_stroke_longer_than_the_server_allows_keeps_its_colour_to_its_end(new_page, sketchpad_site):
    """Past 10,000 points (the server's limit) the page carries the stroke on in a new one: in the
    stroke's colour and width, not the palette's, chosen meanwhile."""
    alice, bob, _ = two_on_a_new_board(new_page, sketchpad_site)
    pick(alice, RED, BROAD)
    alice.evaluate("""() => document.getElementById('canvas')
      .addEventListener('pointerdown', (event) => { window.pointerId = event.pointerId; }, { once: true })""")
    alice.mouse.move(*at(alice, 0.05, 0.05))
    alice.mouse.down()
    # 10,000 points, each its own at the server's four decimals: rows of 500 across the top of the board.
    zigzag = [[0.05 + (i % 500) * 0.0018, 0.05 + (i // 500) * 0.01] for i in range(10_000)]
    pointer_id = alice.evaluate("window.pointerId")
    alice.evaluate(MOVE_THROUGH, [pointer_id, zigzag])
    # Blue chosen while the stroke goes on: it is for the next stroke.
    alice.evaluate(f"() => document.querySelector('#tools input[value=\"{BLUE}\"]').click()")
    alice.evaluate(MOVE_THROUGH, [pointer_id, [[0.1 + i * 0.004, 0.8] for i in range(201)]])
    alice.mouse.up()
    for page in [alice, bob]:
        expect_pixel(page, 0.5, 0.8, RED)
        expect_pixel(page, 0.5, 0.82, RED)  # broad: two hundredths of the board's height from its middle


# Every pointerdown on the canvas, by its pointer's type ("mouse", "touch" or "pen"), kept in the page.
WATCH_POINTERS = """() => {
  window.pointerTypes = [];
  const canvas = document.getElementById('canvas');
  canvas.addEventListener('pointerdown', (event) => window.pointerTypes.push(event.pointerType));
}"""


def draw_line_as(page: Page, pointer: str, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A line drawn as a finger ("touch") or a pen ("pen") would, through Chromium's input events (DevTools
    protocol): the page gets pointer events of that type, as from a real screen or tablet."""
    cdp = page.context.new_cdp_session(page)
    steps = 10
    points = [
        at(page, *(a + (b - a) * step / steps for a, b in zip(start, end, strict=True))) for step in range(steps + 1)
    ]
    if pointer == "touch":
        for kind, point in [("touchStart", points[0]), *(("touchMove", point) for point in points[1:])]:
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": point[0], "y": point[1]}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        return
    # A pen is a mouse event of pointerType "pen"; the left button is the pen's tip on the tablet.
    pen = {"pointerType": "pen", "button": "left", "clickCount": 1}
    (x, y), *moves = points
    cdp.send("Input.dispatchMouseEvent", {"type": "mousePressed", "x": x, "y": y, "buttons": 1, **pen})
    for x, y in moves:
        cdp.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y, "buttons": 1, **pen})
    cdp.send("Input.dispatchMouseEvent", {"type": "mouseReleased", "x": x, "y": y, "buttons": 0, **pen})


@pytest.mark.parametrize("pointer", ["touch", "pen"])
def test_a_stroke_drawn_with_a_finger_or_a_pen_reaches_another_screen(browser, new_page, sketchpad_site, pointer):
    first, second = sketchpad_site.urls
    bob = new_page(first)
    path = create_board(bob)
    # A touch screen's browser: with has_touch, Chromium turns touches into pointer events.
    context = browser.new_context(has_touch=True)
    try:
        alice = context.new_page()
        alice.goto(f"{second}{path}")
        expect_ready(alice)
        alice.evaluate(WATCH_POINTERS)
        pick(alice, RED, THICK)
        draw_line_as(alice, pointer, (0.1, 0.5), (0.9, 0.5))
        # All of it: the page scrolled nothing away (touch-action: none) and got every move.
        for x in [0.1, 0.5, 0.9]:
            expect_pixel(bob, x, 0.5, RED)
        assert alice.evaluate("window.pointerTypes") == [pointer]
    finally:
        context.close()


def test_undo_and_clear_reach_every_screen(new_page, sketchpad_site):
    alice, bob, path = two_on_a_new_board(new_page, sketchpad_site)

    draw_stroke(alice, RED, THICK, (0.1, 0.3), (0.9, 0.3))
    draw_stroke(bob, BLUE, THICK, (0.1, 0.7), (0.9, 0.7))
    for page in [alice, bob]:
        expect_pixel(page, 0.5, 0.3, RED)
        expect_pixel(page, 0.5, 0.7, BLUE)

    # Alice's undo takes back her stroke only, everywhere.
    alice.get_by_role("button", name="Undo").click()
    for page in [alice, bob]:
        expect_pixel(page, 0.5, 0.3, WHITE)
        expect_pixel(page, 0.5, 0.7, BLUE)
    expect(alice.get_by_role("button", name="Undo")).to_be_disabled()
    expect(bob.get_by_role("button", name="Undo")).to_be_enabled()

    draw_stroke(alice, RED, THICK, (0.1, 0.3), (0.9, 0.3))
    expect_pixel(bob, 0.5, 0.3, RED)
    # Only the board's creator (alice made it) and staff may clear it, and only they see the button.
    expect(bob.get_by_role("button", name="Clear board")).to_have_count(0)
    alice.get_by_role("button", name="Clear board").click()
    for page in [alice, bob]:
        expect_pixel(page, 0.5, 0.3, WHITE)
        expect_pixel(page, 0.5, 0.7, WHITE)
    late = new_page(f"{sketchpad_site.urls[0]}{path}")
    expect_ready(late)
    expect_pixel(late, 0.5, 0.7, WHITE)
    expect_pixel(late, 0.5, 0.3, WHITE)


def test_a_page_that_was_offline_gets_the_board_as_it_is_now(new_page, sketchpad_site):
    alice, bob, path = two_on_a_new_board(new_page, sketchpad_site)
    draw_stroke(alice, RED, THICK, (0.1, 0.3), (0.9, 0.3))
    expect_pixel(bob, 0.5, 0.3, RED)

    bob.context.set_offline(True)
    expect(bob.locator("#connection-state")).to_have_attribute("data-socket-state", "reconnecting")
    alice.get_by_role("button", name="Undo").click()
    draw_stroke(alice, BLUE, THICK, (0.1, 0.7), (0.9, 0.7))
    expect_pixel(alice, 0.5, 0.7, BLUE)
    bob.context.set_offline(False)

    expect_ready(bob)
    expect_pixel(bob, 0.5, 0.7, BLUE)
    expect_pixel(bob, 0.5, 0.3, WHITE)


def test_the_gallery_shows_a_new_thumbnail_after_drawing_without_a_reload(new_page, sketchpad_site):
    first, second = sketchpad_site.urls
    alice = new_page(first)
    path = create_board(alice)
    slug = path.strip("/")
    gallery = new_page(second)
    card = gallery.locator(f'[data-board="{slug}"]')
    expect(card.get_by_text("No preview yet")).to_be_visible()
    expect(gallery.locator("#connection-state")).to_have_attribute("data-socket-state", "open")

    draw_stroke(alice, RED, BROAD, (0.3, 0.5), (0.7, 0.5))
    gallery.wait_for_function(
        f"(slug) => ({COLOR_NEAR})(({THUMBNAIL_CENTRE})(slug), '{RED}')", arg=slug, timeout=10_000
    )
    expect(card.get_by_text("No preview yet")).to_be_hidden()
    first_src = card.locator("img").get_attribute("src")

    draw_stroke(alice, BLUE, BROAD, (0.5, 0.3), (0.5, 0.7))
    gallery.wait_for_function(
        f"(slug) => ({COLOR_NEAR})(({THUMBNAIL_CENTRE})(slug), '{BLUE}')", arg=slug, timeout=10_000
    )
    assert card.locator("img").get_attribute("src") != first_src


# From now on, every Content-Security-Policy violation on the page, kept in the page.
WATCH_VIOLATIONS = """() => {
  window.violations = [];
  document.addEventListener('securitypolicyviolation', (event) => window.violations.push(event.effectiveDirective));
}"""

# Whether the first cursor drawn on the page points at [x, y] of the board (0..1), give or take a hundredth.
CURSOR_POINTS_AT = """([x, y]) => {
  const cursor = document.querySelector('#cursors .cursor');
  if (!cursor) return false;
  const board = document.getElementById('canvas').getBoundingClientRect();
  const tip = cursor.getBoundingClientRect();
  return Math.abs((tip.left - board.left) / board.width - x) < 0.01
    && Math.abs((tip.top - board.top) / board.height - y) < 0.01;
}"""


def test_a_cursor_shows_on_the_other_screens_with_a_name_and_goes_when_it_leaves_the_board(new_page, sketchpad_site):
    alice, bob, _ = two_on_a_new_board(new_page, sketchpad_site)
    for page in [alice, bob]:
        page.evaluate(WATCH_VIOLATIONS)

    alice.mouse.move(*at(alice, 0.1, 0.1))
    alice.mouse.move(*at(alice, 0.25, 0.5), steps=10)
    cursor = bob.locator("#cursors .cursor")
    expect(cursor).to_have_count(1)
    expect(cursor.locator(".cursor-name")).to_have_text(re.compile(r"^[A-Z][a-z]+ [A-Z][a-z]+$"))
    # Eased to where Alice's pointer came to rest, in her colour (never transparent).
    bob.wait_for_function(CURSOR_POINTS_AT, arg=[0.25, 0.5])
    label_color = cursor.locator(".cursor-name").evaluate("(label) => getComputedStyle(label).backgroundColor")
    assert re.fullmatch(r"rgb\(\d+, \d+, \d+\)", label_color), label_color
    # Alice's page draws no cursor of its own.
    expect(alice.locator("#cursors .cursor")).to_have_count(0)

    alice.mouse.move(*at(alice, 0.8, 0.3), steps=5)
    bob.wait_for_function(CURSOR_POINTS_AT, arg=[0.8, 0.3])
    # Off the board (above it, on the toolbar): gone from Bob's screen.
    alice.mouse.move(*at(alice, 0.8, -0.2), steps=5)
    expect(cursor).to_have_count(0)
    for page in [alice, bob]:
        assert page.evaluate("window.violations") == [], f"the CSP refused something on {page.url}"


def test_two_tabs_of_one_browser_are_two_cursors_on_another_screen(new_page, sketchpad_site):
    alice, bob, path = two_on_a_new_board(new_page, sketchpad_site)
    # Alice's second tab: her browser's, so the same author, on the other daphne process.
    alice_tab = alice.context.new_page()
    alice_tab.goto(f"{sketchpad_site.urls[1]}{path}")
    expect_ready(alice_tab)

    alice.mouse.move(*at(alice, 0.1, 0.1))
    alice.mouse.move(*at(alice, 0.2, 0.2), steps=5)
    alice_tab.mouse.move(*at(alice_tab, 0.6, 0.6))
    alice_tab.mouse.move(*at(alice_tab, 0.7, 0.7), steps=5)
    cursors = bob.locator("#cursors .cursor")
    expect(cursors).to_have_count(2)
    expect(cursors.locator(".cursor-name").nth(0)).to_have_text(cursors.locator(".cursor-name").nth(1).inner_text())
    # One tab's pointer leaves the board: the other tab's cursor stays where it was.
    alice.mouse.move(*at(alice, 0.2, -0.2), steps=5)
    expect(cursors).to_have_count(1)
    bob.wait_for_function(CURSOR_POINTS_AT, arg=[0.7, 0.7])


PROBE = """window.sketchpadProbe = (event, stroke, count) => {
  (window.probed ??= []).push([event, count, performance.timeOrigin + performance.now()]);
};"""


@pytest.mark.bench
def test_bench_delay_from_a_point_drawn_to_its_appearance_on_another_screen(new_page, sketchpad_site, record_property):
    alice, bob, _ = two_on_a_new_board(new_page, sketchpad_site)
    for page in [alice, bob]:
        page.add_init_script(PROBE)
        page.reload()
        expect_ready(page)

    points = 40
    alice.mouse.move(*at(alice, 0.1, 0.5))
    alice.mouse.down()
    for step in range(1, points):
        alice.mouse.move(*at(alice, 0.1 + 0.8 * step / points, 0.5))
        # One move a frame, as a hand moves a pointer.
        alice.evaluate("() => new Promise(requestAnimationFrame)")
    alice.mouse.up()
    captured = {count: time for event, count, time in alice.evaluate("window.probed") if event == "captured"}
    bob.wait_for_function("(count) => window.probed?.at(-1)?.[1] === count", arg=len(captured))

    drawn = {}
    for _, count, time in bob.evaluate("window.probed"):
        for point in range(len(drawn) + 1, count + 1):
            drawn[point] = time
    delays = [drawn[point] - captured[point] for point in captured]
    median = statistics.median(delays)
    record_property("median_delay_ms", round(median, 1))
    print(
        f"\nsketchpad: a point drawn in one browser appears in another (other daphne, via Redis) after "
        f"median {median:.1f} ms, 90th percentile {statistics.quantiles(delays, n=10)[-1]:.1f} ms, "
        f"over {len(delays)} points"
    )
    assert len(delays) == len(captured) >= points / 2
