"""The sketchpad's own metrics, beside every site's (realtime_common.metrics); counted with its site_inc."""

from prometheus_client import Counter, Histogram

STROKES_STORED = Counter("sketchpad_strokes_stored", "Finished strokes stored.", ["site"])
CURSOR_FRAMES_RELAYED = Counter(
    "sketchpad_cursor_frames_relayed", "Cursor frames relayed to a board's other pages (once per frame).", ["site"]
)
# Counted by the worker (`manage.py runworker --layer worker thumbnails`).
THUMBNAILS_RENDERED = Counter("sketchpad_thumbnails_rendered", "Board thumbnails rendered and stored.", ["site"])
THUMBNAIL_RENDER_SECONDS = Histogram(
    "sketchpad_thumbnail_render_seconds",
    "Time to render one board's thumbnail: read its strokes, draw the PNG, store it.",
    ["site"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
