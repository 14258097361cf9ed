import pytest

from blog.models import Liveblog


@pytest.fixture
def liveblog(transactional_db):
    # Markup in the title: the pages must show it as text.
    return Liveblog.objects.create(slug="launch", title="Launch <day>", description="All of it")
