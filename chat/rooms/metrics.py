"""The chat's own metrics, beside every site's (realtime_common.metrics); counted with its site_inc."""

from prometheus_client import Counter, Gauge

MESSAGES_STORED = Counter("chat_messages_stored", "Chat messages stored (a resend of a stored one is not).", ["site"])
MEMBERS_PRESENT = Gauge(
    "chat_members_present",
    "Members present in rooms through this process's sockets: each user counted once per room, summed over rooms.",
    ["site"],
)
TYPING_NOTICES = Counter("chat_typing_notices", "Typing notices taken from pages (within their rate).", ["site"])
