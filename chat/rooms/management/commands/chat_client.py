import asyncio
import getpass
import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from rooms.client import ClientStopped, client_run, login_open


class Command(BaseCommand):
    help = (
        "Chat from the terminal: log in to the chat site at --url, join --room, print its messages and "
        "who comes and goes, and send each line typed (Ctrl-D ends). The password comes from --password, "
        "else $CHAT_PASSWORD, else a prompt."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8002", help="where the site's pages are")
        parser.add_argument("--user", required=True)
        parser.add_argument("--password")
        parser.add_argument("--room", default="lobby", help="the room's slug")

    def handle(self, *args, url, user, password, room, **options):
        password = password or os.environ.get("CHAT_PASSWORD") or getpass.getpass(f"Password for {user}: ")
        try:
            # The site's cookie names (realtime_common.settings.cookie_names): this site is that one.
            login = login_open(
                base_url=url,
                username=user,
                password=password,
                session_cookie=settings.SESSION_COOKIE_NAME,
                csrf_cookie=settings.CSRF_COOKIE_NAME,
            )
        except OSError as error:
            raise CommandError(f"Could not log in at {url}: {error}") from None
        except ClientStopped as error:
            raise CommandError(str(error)) from None
        try:
            asyncio.run(client_run(login=login, room=room, stdin=sys.stdin, out=self.stdout))
        except ClientStopped as error:
            raise CommandError(str(error)) from None
        except KeyboardInterrupt:
            pass  # Ctrl-C: as good as Ctrl-D
