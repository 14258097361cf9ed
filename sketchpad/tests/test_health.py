import pytest
from django.test import AsyncClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.usefixtures("channel_layer")
async def test_health_checks_database_and_channel_layer():
    response = await AsyncClient().get("/health/")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
