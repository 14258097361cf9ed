"""GET /health/: a database query and a channel layer round trip, on every layer."""

import asyncio

import pytest
from django.test import AsyncClient

from realtime_common import health
from realtime_common.layers import channel_layers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.usefixtures("layer")
async def test_health_checks_database_and_channel_layer():
    response = await AsyncClient().get("/health/")
    body = response.json()
    assert response.status_code == 200
    assert (body["status"], body["database"], body["channel_layer"]) == ("ok", "ok", "ok")
    assert response["X-Instance"] == body["instance"]
    assert response["Cache-Control"].startswith("max-age=0")


async def test_health_fails_without_redis_and_does_not_leak_details(settings, caplog):
    from realtime_common.testing.servers import free_port

    settings.CHANNEL_LAYERS = channel_layers(prefix="test", redis_urls=[f"redis://127.0.0.1:{free_port()}/0"])
    response = await AsyncClient().get("/health/")
    assert response.status_code == 503
    assert response.json()["channel_layer"] == "error"
    assert "health check channel_layer failed" in caplog.text


async def test_a_check_that_hangs_fails_in_time_with_a_warning_not_a_traceback(monkeypatch, caplog):
    async def never_answers():
        await asyncio.Event().wait()

    monkeypatch.setattr(health, "CHECK_TIMEOUT", 0.05)
    monkeypatch.setattr(health, "channel_layer_check", never_answers)
    response = await AsyncClient().get("/health/")
    assert response.status_code == 503
    assert (response.json()["database"], response.json()["channel_layer"]) == ("ok", "error")
    assert "health check channel_layer timed out" in caplog.text
    assert "Traceback" not in caplog.text


async def test_repeated_checks_reuse_one_channel(layer):
    assert (await AsyncClient().get("/health/")).status_code == 200
    probe = vars(layer)["health_probe"]
    for _ in range(3):
        assert (await AsyncClient().get("/health/")).status_code == 200
    assert vars(layer)["health_probe"] is probe
    # The pub/sub layer keeps a subscription for every channel it ever received on.
    if hasattr(layer, "_get_layer"):
        assert [name for name in layer._get_layer().channels if "health." in name] == [probe.channel]
