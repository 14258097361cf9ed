import pytest

from blog.models import Liveblog


@pytest.fixture
def liveblog(transactional_db):
    return Liveblog.objects.create(slug="launch", title="Launch day")
