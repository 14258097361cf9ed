from django.core.management.base import BaseCommand, CommandError

from blog.selectors import liveblog_get
from blog.services import post_create


class Command(BaseCommand):
    help = "Publish a post to a liveblog from the command line; open pages show it at once."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the liveblog's slug")
        parser.add_argument("text", help="the post's body (plain text)")

    def handle(self, *args, slug, text, **options):
        liveblog = liveblog_get(slug=slug)
        if liveblog is None:
            raise CommandError(f"No liveblog with the slug {slug!r}.")
        if not text.strip():
            raise CommandError("The post is empty.")
        post = post_create(liveblog=liveblog, body=text.strip())
        self.stdout.write(f"Published post {post.pk} to {liveblog.get_absolute_url()}")
