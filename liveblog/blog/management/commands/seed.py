from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from blog.models import Liveblog
from blog.services import post_create

DEMO_LIVEBLOGS = [
    (
        "djangocon",
        "DjangoCon, live",
        "Talks as they happen.",
        [
            "Doors are open. Coffee is hot.",
            "Keynote: Reinventing Django for the real-time web. Slides: https://www.djangoproject.com/",
            "Q&A: yes, it all runs as many processes as you like, with Redis in the middle.",
        ],
    ),
    ("release-day", "Release day", "Follow the release as it ships.", ["Release branch cut."]),
]


class Command(BaseCommand):
    help = "Create demo liveblogs (and, with DEBUG on, the staff account editor/editor). Safe to run again."

    @transaction.atomic
    def handle(self, *args, **options):
        for slug, title, description, bodies in DEMO_LIVEBLOGS:
            liveblog, created = Liveblog.objects.get_or_create(
                slug=slug, defaults={"title": title, "description": description}
            )
            if created:
                for body in bodies:
                    post_create(liveblog=liveblog, body=body)
                self.stdout.write(f"Created liveblog {slug} with {len(bodies)} posts")
        if settings.DEBUG:
            self.create_demo_editor()

    def create_demo_editor(self):
        User = get_user_model()
        if not User.objects.filter(username="editor").exists():
            User.objects.create_user("editor", password="editor", is_staff=True, is_superuser=True)
            self.stdout.write("Created the staff account editor / editor (DEBUG only)")
