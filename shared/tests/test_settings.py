"""The settings base, loaded in a fresh interpreter each time: it reads the environment on import."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from realtime_common.layers import channel_layer_description, channel_layers, redact_url

SHARED = Path(__file__).resolve().parents[1]


def load_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "REDIS_"))}
    return subprocess.run(
        [sys.executable, "-c", "import realtime_common.settings as s; print(s.DEBUG, s.ALLOWED_HOSTS, s.SECRET_KEY[:8])"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        cwd=SHARED,
    )


def test_a_missing_secret_key_is_an_error_when_debug_is_off():
    result = load_settings()
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_debug_runs_without_a_secret_key_on_localhost_only():
    result = load_settings(DJANGO_DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True ['localhost', '127.0.0.1'] insecure"


def test_production_takes_everything_from_the_environment():
    result = load_settings(DJANGO_SECRET_KEY="s3cret-value", DJANGO_ALLOWED_HOSTS="example.com, www.example.com")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False ['example.com', 'www.example.com'] s3cret-v"


def test_a_missing_frontend_is_an_error(tmp_path):
    result = load_settings(DJANGO_DEBUG="1", FRONTEND_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "The shared browser code is not at" in result.stderr


def test_no_redis_url_means_the_in_memory_layer():
    layers = channel_layers(prefix="site", redis_urls=[])
    assert layers == {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert channel_layer_description(layers).startswith("in-memory channel layer")


def test_redis_urls_become_sharded_hosts_with_the_site_prefix():
    config = channel_layers(prefix="chat", redis_urls=["redis://a:6379/0", "redis://b:6379/0"])["default"]
    assert config["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    assert [host["address"] for host in config["CONFIG"]["hosts"]] == ["redis://a:6379/0", "redis://b:6379/0"]
    assert all(host["health_check_interval"] and host["socket_keepalive"] for host in config["CONFIG"]["hosts"])
    # No read timeout (redis-py 8 defaults to 5 s, as long as channels-redis blocks on a receive).
    assert all(host["socket_timeout"] is None for host in config["CONFIG"]["hosts"])
    assert config["CONFIG"]["prefix"] == "chat:"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:p4ss@redis:6379/1", "redis://***@redis:6379/1"),
        ("rediss://user:p@ss@host:6380", "rediss://***@host:6380"),
    ],
)
def test_passwords_never_reach_the_log(url, shown):
    assert redact_url(url) == shown
    assert shown in channel_layer_description(channel_layers(prefix="x", redis_urls=[url]))


def test_the_cache_is_redis_when_there_is_redis():
    from realtime_common.cache import caches

    assert caches(prefix="chat", redis_urls=[])["default"]["BACKEND"].endswith("LocMemCache")
    redis_cache = caches(prefix="chat", redis_urls=["redis://a:6379/0", "redis://b:6379/0"])["default"]
    assert (redis_cache["LOCATION"], redis_cache["KEY_PREFIX"]) == ("redis://a:6379/0", "chat")


def test_the_pubsub_layer_takes_the_same_hosts_and_no_queue_settings():
    config = channel_layers(prefix="blog", redis_urls=["redis://a:6379/0"], kind="pubsub")["default"]
    assert config["BACKEND"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    assert config["CONFIG"]["prefix"] == "blog:"
    assert [host["socket_timeout"] for host in config["CONFIG"]["hosts"]] == [None]
    assert not {"expiry", "capacity", "group_expiry"} & set(config["CONFIG"])
    assert channel_layer_description({"default": config}) == "Redis pubsub channel layer at redis://a:6379/0"


def test_an_unknown_layer_kind_is_a_configuration_error():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="REDIS_CHANNEL_LAYER"):
        channel_layers(prefix="blog", redis_urls=["redis://a:6379/0"], kind="kafka")


def test_worker_jobs_get_a_core_layer_of_their_own_beside_pubsub():
    layers = channel_layers(prefix="pad", redis_urls=["redis://a:6379/0"], kind="pubsub", workers=True)
    assert layers["default"]["BACKEND"].endswith("RedisPubSubChannelLayer")
    assert layers["worker"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    assert layers["worker"]["CONFIG"]["prefix"] == "pad:"
    assert set(channel_layers(prefix="pad", redis_urls=[], workers=True)) == {"default", "worker"}
