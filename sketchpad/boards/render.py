"""A board as a PNG, drawn with Pillow, for the gallery's thumbnails."""

import io

from PIL import Image, ImageDraw

# Widths are in thousandths of the board's width, as on the page's canvas.
BOARD_UNITS = 1000
# Drawn this many times larger and scaled down, for smooth edges.
SUPERSAMPLE = 4
BACKGROUND = "#ffffff"


def strokes_png(*, strokes: list[dict], size: tuple[int, int]) -> bytes:
    """The strokes, in order, on a white board of ``size`` pixels."""
    width, height = size[0] * SUPERSAMPLE, size[1] * SUPERSAMPLE
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        line_width = max(1, round(stroke["width"] * width / BOARD_UNITS))
        points = [(x * width, y * height) for x, y in stroke["points"]]
        if len(points) > 1:
            draw.line(points, fill=stroke["color"], width=line_width, joint="curve")
        # Round ends, like the canvas's lineCap; a single point is a dot.
        radius = line_width / 2
        for x, y in {points[0], points[-1]}:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=stroke["color"])
    image = image.resize(size, Image.Resampling.LANCZOS)
    png = io.BytesIO()
    image.save(png, format="PNG", optimize=True)
    return png.getvalue()
