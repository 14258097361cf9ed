"""What `manage.py seed` creates: the rooms always, the demo users only with DEBUG on."""

# (slug, title, staff_only)
ROOMS = [
    ("lobby", "Lobby", False),
    ("random", "Random", False),
    ("staff-room", "Staff room", True),
]

# (username, password, is_staff). Known passwords: never created, nor shown, with DEBUG off.
USERS = [
    ("alice", "alice", False),
    ("bob", "bob", False),
    ("carol", "carol", True),
]
