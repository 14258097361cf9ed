from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from rooms import demo
from rooms.models import Room


class Command(BaseCommand):
    help = "Create the demo rooms (and, with DEBUG on, the demo users alice, bob and carol). Safe to run again."

    @transaction.atomic
    def handle(self, *args, **options):
        for slug, title, staff_only in demo.ROOMS:
            _, created = Room.objects.get_or_create(slug=slug, defaults={"title": title, "staff_only": staff_only})
            if created:
                self.stdout.write(f"Created room {slug}")
        if settings.DEBUG:
            self.create_demo_users()

    def create_demo_users(self):
        User = get_user_model()
        for username, password, is_staff in demo.USERS:
            if not User.objects.filter(username=username).exists():
                User.objects.create_user(username, password=password, is_staff=is_staff)
                self.stdout.write(f"Created the demo user {username} / {password} (DEBUG only)")
