"""Users, logged-in sessions and rooms for the chat load test. Prints one JSON line:
{"backend", "rooms": [...], "users": [{"username", "cookie"}, ...], "rate_limit": [messages, seconds]},
where "cookie" is the Cookie header that carries the session (the site names its session cookie).

Sessions are made the way django.contrib.auth.login() makes them (user id, backend and the
password hash's HMAC), in the database session store the chat uses, so a socket carrying the
``sessionid`` cookie is logged in. Passwords are unusable: nobody logs in over HTTP.
"""

import argparse

from bench.sitescripts import django_start, line_print

BACKEND = "django.contrib.auth.backends.ModelBackend"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--prefix", default="u")
    parser.add_argument("--rooms", nargs="*", default=[])
    options = parser.parse_args()
    backend = django_start()
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from rooms.models import Room

    store = import_module(settings.SESSION_ENGINE).SessionStore
    User = get_user_model()
    with transaction.atomic():
        for slug in options.rooms:
            Room.objects.get_or_create(slug=slug, defaults={"title": slug})
        names = [f"{options.prefix}{number:05d}" for number in range(options.users)]
        User.objects.bulk_create([User(username=name, password=make_password(None)) for name in names], batch_size=500)
        users = []
        for user in User.objects.filter(username__in=names).order_by("username"):
            session = store()
            session["_auth_user_id"] = str(user.pk)
            session["_auth_user_backend"] = BACKEND
            session["_auth_user_hash"] = user.get_session_auth_hash()
            session.create()
            users.append({"username": user.username, "cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}"})
    line_print(
        data={
            "backend": backend,
            "rooms": options.rooms,
            "users": users,
            "rate_limit": [settings.CHAT_RATE_LIMIT_MESSAGES, settings.CHAT_RATE_LIMIT_SECONDS],
        }
    )


if __name__ == "__main__":
    main()
