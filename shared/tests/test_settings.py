"""The settings base, loaded in a fresh interpreter each time: it reads the environment on import."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from channels_redis.core import RedisChannelLayer

from realtime_common.layers import channel_layer_description, channel_layers
from realtime_common.redis_servers import redact_url

SHARED = Path(__file__).resolve().parents[1]
REPO = SHARED.parent


def load_settings(
    *,
    show: str = "s.DEBUG, s.ALLOWED_HOSTS, s.SECRET_KEY[:8]",
    cwd: Path = SHARED,
    module: str = "realtime_common.settings",
    **env: str,
) -> subprocess.CompletedProcess:
    """Import ``module`` in a fresh interpreter with only ``env`` (no DJANGO_, REDIS_ or DATABASE_URL
    variables of ours: TEST_DATABASE=postgres sets one) and print ``show``, an expression of the settings ``s``."""
    clean = {
        key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "REDIS_", "DATABASE_URL"))
    }
    return subprocess.run(
        [sys.executable, "-c", f"import {module} as s; print({show})"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def websocket_origins_loaded(**env: str) -> list[str]:
    result = load_settings(show="s.WEBSOCKET_ORIGINS", **env)
    assert result.returncode == 0, result.stderr
    return ast.literal_eval(result.stdout)


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


def test_make_run_accepts_the_loopback_names_on_the_site_s_port():
    # The Procfile gives each site its port; DEBUG serves plain http.
    assert websocket_origins_loaded(DJANGO_DEBUG="1", DJANGO_PUBLIC_PORTS="8002") == [
        "http://localhost:8002",
        "http://127.0.0.1:8002",
    ]


def test_production_accepts_its_hosts_over_https_on_the_default_port():
    origins = websocket_origins_loaded(DJANGO_SECRET_KEY="k", DJANGO_ALLOWED_HOSTS="example.com,WWW.example.com")
    assert origins == ["https://example.com", "https://www.example.com"]


@pytest.mark.parametrize(
    ("env", "origins"),
    [
        # Behind a TLS proxy, even with cookies that are not Secure; 443 is https's default.
        (
            {"DJANGO_SECURE_COOKIES": "0", "DJANGO_BEHIND_TLS_PROXY": "1", "DJANGO_PUBLIC_PORTS": "443,8443"},
            ["https://example.com", "https://example.com:8443"],
        ),
        # Plain http (cookies not Secure, no proxy), on port 80 and another.
        (
            {"DJANGO_SECURE_COOKIES": "0", "DJANGO_PUBLIC_PORTS": "80, 8001"},
            ["http://example.com", "http://example.com:8001"],
        ),
    ],
)
def test_the_scheme_follows_tls_and_the_ports_follow_the_public_ports(env, origins):
    assert websocket_origins_loaded(DJANGO_SECRET_KEY="k", DJANGO_ALLOWED_HOSTS="example.com", **env) == origins


def test_listed_origins_replace_the_derived_ones_normalised():
    origins = websocket_origins_loaded(
        DJANGO_SECRET_KEY="k",
        DJANGO_ALLOWED_HOSTS="localhost,liveblog.localhost",
        DJANGO_PUBLIC_PORTS="8001",
        DJANGO_WEBSOCKET_ORIGINS="http://localhost:8001, HTTP://Liveblog.Localhost:8000,https://blog.example.com:443",
    )
    assert origins == ["http://localhost:8001", "http://liveblog.localhost:8000", "https://blog.example.com"]


def test_a_wildcard_host_allows_any_origin_which_only_debug_accepts():
    # Loading is fine; `manage.py check` and the ASGI builder refuse it without DEBUG (test_origins.py).
    assert websocket_origins_loaded(DJANGO_DEBUG="1", DJANGO_ALLOWED_HOSTS="*") == ["*"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_ALLOWED_HOSTS": ".example.com"}, "DJANGO_ALLOWED_HOSTS has the pattern '.example.com'"),
        (
            {"DJANGO_ALLOWED_HOSTS": "example.com", "DJANGO_PUBLIC_PORTS": "80a"},
            "DJANGO_ALLOWED_HOSTS / DJANGO_PUBLIC_PORTS",
        ),
        (
            {"DJANGO_WEBSOCKET_ORIGINS": "https://example.com/"},
            "DJANGO_WEBSOCKET_ORIGINS: 'https://example.com/' is not an origin",
        ),
        ({"DJANGO_WEBSOCKET_ORIGINS": "null"}, "DJANGO_WEBSOCKET_ORIGINS: 'null' is not an origin"),
    ],
)
def test_origins_that_cannot_be_exact_stop_the_site_from_loading(env, message):
    result = load_settings(DJANGO_SECRET_KEY="k", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_sockets_are_on_the_page_s_own_origin_unless_a_socket_origin_is_set():
    show = "(s.SOCKET_ORIGIN, s.SOCKET_SOURCES)"
    result = load_settings(show=show, DJANGO_DEBUG="1", DJANGO_PUBLIC_PORTS="8002")
    assert ast.literal_eval(result.stdout) == ("", ["ws://localhost:8002", "ws://127.0.0.1:8002"]), result.stderr
    # make run's chat: its pages open their sockets on a second port, which the policy must allow.
    result = load_settings(
        show=show, DJANGO_DEBUG="1", DJANGO_PUBLIC_PORTS="8002", DJANGO_SOCKET_ORIGIN="WS://127.0.0.1:8012/"
    )
    assert result.returncode != 0 and "DJANGO_SOCKET_ORIGIN: 'WS://127.0.0.1:8012/' is not an origin" in result.stderr
    result = load_settings(
        show=show, DJANGO_DEBUG="1", DJANGO_PUBLIC_PORTS="8002", DJANGO_SOCKET_ORIGIN="WS://127.0.0.1:8012"
    )
    origin = "ws://127.0.0.1:8012"
    assert ast.literal_eval(result.stdout) == (origin, ["ws://localhost:8002", "ws://127.0.0.1:8002", origin])


@pytest.mark.parametrize(
    ("env", "origin"),
    [
        ({"DJANGO_SOCKET_ORIGIN": "wss://WS.example.com:443"}, "wss://ws.example.com"),
        ({"DJANGO_SOCKET_ORIGIN": "ws://ws.example.com", "DJANGO_SECURE_COOKIES": "0"}, "ws://ws.example.com"),
    ],
)
def test_a_socket_origin_is_normalised(env, origin):
    result = load_settings(show="s.SOCKET_ORIGIN", DJANGO_SECRET_KEY="k", DJANGO_ALLOWED_HOSTS="example.com", **env)
    assert result.stdout.strip() == origin, result.stderr


@pytest.mark.parametrize(
    ("origin", "message"),
    [
        ("ws://ws.example.com", "the site is served over https, so 'ws://ws.example.com' must be wss://"),
        ("https://ws.example.com", "'https://ws.example.com' is not a ws:// or wss:// origin"),
        ("wss://ws.example.com/ws/", "'wss://ws.example.com/ws/' is not an origin"),
    ],
)
def test_a_socket_origin_that_is_no_wss_origin_stops_an_https_site_from_loading(origin, message):
    result = load_settings(DJANGO_SECRET_KEY="k", DJANGO_ALLOWED_HOSTS="example.com", DJANGO_SOCKET_ORIGIN=origin)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and f"DJANGO_SOCKET_ORIGIN: {message}" in result.stderr


@pytest.mark.parametrize("site", ["liveblog", "chat", "sketchpad"])
def test_each_site_names_its_cookies_after_itself(site):
    # Cookies ignore ports: the three demos on one host must not overwrite each other's session.
    result = load_settings(
        show="s.SESSION_COOKIE_NAME, s.CSRF_COOKIE_NAME",
        cwd=REPO / site,
        module="config.settings",
        DJANGO_SECRET_KEY="k",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"{site}_sessionid", f"{site}_csrftoken"]


def test_no_redis_url_means_the_in_memory_layer():
    layers = channel_layers(prefix="site", redis_urls=[])
    assert layers == {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert channel_layer_description(layers).startswith("in-memory channel layer")


def test_redis_urls_become_sharded_hosts_with_the_site_prefix():
    config = channel_layers(prefix="chat", redis_urls=["redis://a:6379/0", "redis://b:6379/0"])["default"]
    assert config["BACKEND"] == "realtime_common.layers.RedisCoreLayer"
    assert [host["address"] for host in config["CONFIG"]["hosts"]] == ["redis://a:6379/0", "redis://b:6379/0"]
    assert all(host["health_check_interval"] and host["socket_keepalive"] for host in config["CONFIG"]["hosts"])
    # Longer than a receive's BZPOPMIN (5 s, redis-py 8's default read timeout): channels_redis#422.
    assert all(host["socket_timeout"] > RedisChannelLayer.brpop_timeout for host in config["CONFIG"]["hosts"])
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
    assert config["BACKEND"] == "realtime_common.layers.RedisPubSubLayer"
    assert config["CONFIG"]["prefix"] == "blog:"
    # No socket timeout under its subscriber's polls: each would reconnect it (health checks watch it instead).
    assert [host["socket_timeout"] for host in config["CONFIG"]["hosts"]] == [None]
    assert not {"expiry", "capacity", "group_expiry"} & set(config["CONFIG"])
    assert channel_layer_description({"default": config}) == "Redis pubsub channel layer at redis://a:6379/0"


def test_an_unknown_layer_kind_is_a_configuration_error():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="REDIS_CHANNEL_LAYER"):
        channel_layers(prefix="blog", redis_urls=["redis://a:6379/0"], kind="kafka")


def test_worker_jobs_get_a_core_layer_of_their_own_beside_pubsub():
    layers = channel_layers(prefix="pad", redis_urls=["redis://a:6379/0"], kind="pubsub", workers=True)
    assert layers["default"]["BACKEND"] == "realtime_common.layers.RedisPubSubLayer"
    assert layers["worker"]["BACKEND"] == "realtime_common.layers.RedisCoreLayer"
    assert layers["worker"]["CONFIG"]["prefix"] == "pad:"
    assert set(channel_layers(prefix="pad", redis_urls=[], workers=True)) == {"default", "worker"}


def test_groups_shard_over_every_redis_and_worker_jobs_keep_to_the_first():
    urls = ["redis://a:6379/0", "redis://b:6379/0"]
    layers = channel_layers(prefix="pad", redis_urls=urls, kind="pubsub", workers=True)
    assert [host["address"] for host in layers["default"]["CONFIG"]["hosts"]] == urls
    assert [host["address"] for host in layers["worker"]["CONFIG"]["hosts"]] == urls[:1]


def test_the_installed_package_ships_every_subpackage():
    """The Docker image installs shared/ as a package: a subpackage the build leaves out
    (migrations once) breaks the image, not the tests, which import the source folder."""
    import tomllib

    from setuptools import find_packages

    shared = Path(__file__).resolve().parents[1]
    config = tomllib.loads((shared / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    shipped = set(find_packages(where=shared, include=config["include"]))
    subpackages = {
        ".".join(path.parent.relative_to(shared).parts) for path in (shared / "realtime_common").rglob("__init__.py")
    }
    assert subpackages <= shipped


def test_the_database_is_the_embedded_sqlite_file_unless_database_url_is_set(tmp_path):
    show = "s.database(base_dir=__import__('pathlib').Path('/srv/site'))"
    sqlite = load_settings(show=show, DJANGO_DEBUG="1")
    assert sqlite.returncode == 0, sqlite.stderr
    config = ast.literal_eval(sqlite.stdout)
    assert (config["ENGINE"], config["NAME"]) == ("django.db.backends.sqlite3", "/srv/site/db.sqlite3")
    # Kept, as on Postgres: database_sync_to_async would otherwise connect again for every call.
    assert config["CONN_MAX_AGE"] == 60

    postgres = load_settings(show=show, DJANGO_DEBUG="1", DATABASE_URL="postgres://demo:pw@db:5432/chat")
    assert postgres.returncode == 0, postgres.stderr
    config = ast.literal_eval(postgres.stdout)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == ("db", 5432, "chat", "demo")
    assert (config["CONN_MAX_AGE"], config["CONN_HEALTH_CHECKS"]) == (60, True)


@pytest.mark.parametrize(
    ("env", "options"),
    [
        ({}, "-c lock_timeout=20000"),
        ({"DJANGO_DATABASE_TIMEOUT": "0.5"}, "-c lock_timeout=500"),
        # The URL's own options come last, so they win.
        (
            {"DATABASE_URL": "postgres://demo@db/chat?options=-c%20lock_timeout%3D0"},
            "-c lock_timeout=20000 -c lock_timeout=0",
        ),
    ],
)
def test_a_postgres_write_waits_for_a_lock_as_long_as_an_sqlite_one(env, options):
    # Past DJANGO_DATABASE_TIMEOUT, Postgres' lock_timeout ends the wait: the consumers answer "busy".
    show = "s.database(base_dir=__import__('pathlib').Path('/srv/site'))"
    result = load_settings(show=show, DJANGO_DEBUG="1", **{"DATABASE_URL": "postgres://demo@db/chat", **env})
    assert result.returncode == 0, result.stderr
    assert ast.literal_eval(result.stdout)["OPTIONS"]["options"] == options


def test_each_site_derives_its_names_from_site_settings():
    show = (
        "{k: v for k, v in s.site_settings(name='chat', app='rooms', base_dir=__import__('pathlib').Path('/srv/chat'))"
        ".items() if k in ('SITE_NAME', 'SESSION_COOKIE_NAME', 'CSRF_COOKIE_NAME', 'STATIC_ROOT')}"
        ", s.site_settings(name='chat', app='rooms', base_dir=__import__('pathlib').Path('/srv'))['INSTALLED_APPS'][-1]"
    )
    result = load_settings(show=show, DJANGO_DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "{'SITE_NAME': 'chat', 'STATIC_ROOT': PosixPath('/srv/chat/staticfiles'), "
        "'SESSION_COOKIE_NAME': 'chat_sessionid', 'CSRF_COOKIE_NAME': 'chat_csrftoken'} rooms"
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # Secure cookies (production's default) mean https: plain http is redirected, HSTS waits to be set.
        ({}, "True ['^health/$'] 0"),
        ({"DJANGO_HSTS_SECONDS": "31536000"}, "True ['^health/$'] 31536000"),
        # Plain http (compose on localhost): nothing to redirect to.
        ({"DJANGO_SECURE_COOKIES": "0"}, "False ['^health/$'] 0"),
    ],
)
def test_https_redirects_except_the_health_probe_and_hsts_is_opt_in(env, expected):
    result = load_settings(
        show="s.SECURE_SSL_REDIRECT, s.SECURE_REDIRECT_EXEMPT, s.SECURE_HSTS_SECONDS",
        DJANGO_SECRET_KEY="k",
        DJANGO_ALLOWED_HOSTS="example.com",
        **env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
