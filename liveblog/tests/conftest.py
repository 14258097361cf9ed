import pytest
from channels.testing import WebsocketCommunicator

from blog.models import Liveblog


@pytest.fixture
def liveblog(transactional_db):
    return Liveblog.objects.create(slug="launch", title="Launch day")


@pytest.fixture
async def connect():
    """Open sockets like a page on this site would; all are closed after the test."""
    # Imported here, not at the top: the Origin validator reads ALLOWED_HOSTS when
    # built, and the test environment adds "testserver" to it only now.
    from config.asgi import application

    communicators = []

    async def open_socket(path: str, *, origin: bytes = b"http://testserver") -> tuple[WebsocketCommunicator, bool]:
        communicator = WebsocketCommunicator(application, path, headers=[(b"origin", origin)])
        connected, _ = await communicator.connect()
        communicators.append(communicator)
        return communicator, connected

    yield open_socket
    for communicator in communicators:
        await communicator.disconnect()
