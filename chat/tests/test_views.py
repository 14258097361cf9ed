import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from realtime_common.layers import channel_layers
from realtime_common.testing.servers import free_port
from rooms.models import Room

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-password-for-tests"


@pytest.fixture
def alice_account():
    return get_user_model().objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def alice_client(client, alice_account):
    client.force_login(alice_account)
    return client


@pytest.mark.parametrize("path", ["/", "/chat/"])
def test_pages_send_anonymous_visitors_to_the_login_page(client, path):
    response = client.get(path)
    assert (response.status_code, response["Location"]) == (302, f"/accounts/login/?next={path}")


def test_room_list_links_each_room_into_the_chat_escaped(alice_client):
    Room.objects.create(slug="lobby", title="Lobby <b>")
    Room.objects.create(slug="staff-room", title="Staff room", staff_only=True)
    html = alice_client.get("/").content.decode()
    assert 'href="/chat/?join=lobby"' in html
    assert "Lobby &lt;b&gt;" in html and "<b>" not in html
    assert "staff only" in html


def test_chat_page_has_the_socket_the_rooms_and_a_logout_form(alice_client):
    Room.objects.create(slug="lobby", title="Lobby")
    html = alice_client.get("/chat/").content.decode()
    assert 'data-socket-url="/ws/chat/"' in html
    assert 'data-join="lobby"' in html
    assert 'action="/accounts/logout/"' in html and 'name="csrfmiddlewaretoken"' in html


@pytest.mark.parametrize(("debug", "shown"), [(False, False), (True, True)])
def test_login_page_shows_the_demo_accounts_only_in_debug(client, settings, debug, shown):
    settings.DEBUG = debug
    html = client.get("/accounts/login/").content.decode()
    assert ('id="demo-users"' in html) is shown
    assert ("<code>alice</code>" in html) is shown


def test_login_logs_in_and_goes_to_next(client, alice_account):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD, "next": "/chat/"})
    assert (response.status_code, response["Location"]) == (302, "/chat/")
    assert client.get("/chat/").status_code == 200


def test_login_with_a_wrong_password_fails(client, alice_account):
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert client.get("/chat/").status_code == 302


def test_logout_is_a_post(alice_client):
    assert alice_client.get("/accounts/logout/").status_code == 405
    response = alice_client.post("/accounts/logout/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/")
    assert alice_client.get("/chat/").status_code == 302


def test_signup_creates_the_user_and_logs_them_in(client):
    response = client.post("/accounts/signup/", {"username": "dave", "password1": PASSWORD, "password2": PASSWORD})
    assert (response.status_code, response["Location"]) == (302, "/")
    assert get_user_model().objects.filter(username="dave").exists()
    assert client.get("/chat/").status_code == 200


@pytest.mark.parametrize(
    "fields",
    [
        {"username": "dave", "password1": PASSWORD, "password2": PASSWORD + "!"},
        {"username": "dave", "password1": "123", "password2": "123"},
        {"username": "alice", "password1": PASSWORD, "password2": PASSWORD},
    ],
    ids=["mismatch", "weak", "taken"],
)
def test_signup_refuses_invalid_input(client, alice_account, fields):
    response = client.post("/accounts/signup/", fields)
    assert response.status_code == 200
    assert 'class="errorlist' in response.content.decode()
    assert get_user_model().objects.count() == 1


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/accounts/login/", {"username": "alice", "password": PASSWORD}),
        ("/accounts/signup/", {"username": "dave", "password1": PASSWORD, "password2": PASSWORD}),
        ("/accounts/logout/", {}),
    ],
)
def test_account_forms_need_the_csrf_token(alice_account, path, data):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice_account)
    assert client.post(path, data).status_code == 403
    assert get_user_model().objects.count() == 1
    assert client.get("/chat/").status_code == 200  # the forged logout did not log out


def test_health(client):
    assert client.get("/health/").json()["database"] == "ok"


def test_logout_succeeds_when_the_channel_layer_is_down(alice_client, settings, caplog):
    settings.CHANNEL_LAYERS = channel_layers(prefix="test", redis_urls=[f"redis://127.0.0.1:{free_port()}/0"])
    assert alice_client.post("/accounts/logout/").status_code == 302
    assert alice_client.get("/chat/").status_code == 302
    assert "could not tell the sockets of an ended session to close" in caplog.text
