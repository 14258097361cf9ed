"""Settings every site starts from: ``from realtime_common.settings import *``.

Everything that differs between deployments comes from the environment, and the
defaults are the safe ones: DEBUG is off, and a missing SECRET_KEY is an error
unless DEBUG is on. A site's own ``config/settings.py`` adds its app, its URLs
and its channel layer prefix.
"""

import os
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from realtime_common.cache import caches
from realtime_common.layers import channel_layers
from realtime_common.metrics import networks_parse
from realtime_common.origins import socket_origin, websocket_origins
from realtime_common.redis_servers import redis_sentinel_from_env


def env_bool(name: str, *, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, *, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG")

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it (for example to the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`), "
            "or set DJANGO_DEBUG=1 for local development."
        )
    SECRET_KEY = "insecure-development-key-only-used-when-DEBUG-is-on"

# Unless DJANGO_WEBSOCKET_ORIGINS lists them, the WebSocket origins follow from these hosts (below).
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", default="localhost,127.0.0.1" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# One or more Redis URLs (channels-redis shards over several); none: in-process memory.
REDIS_URLS = env_list("REDIS_URL")
# Or the primary that Redis Sentinel names (REDIS_SENTINELS, REDIS_SENTINEL_MASTER), which
# every Redis client of the site follows through a failover (realtime_common.redis_servers).
REDIS_SENTINEL = redis_sentinel_from_env(environ=os.environ, urls=REDIS_URLS)
# Which channels-redis layer carries the sockets' messages (realtime_common.layers).
REDIS_CHANNEL_LAYER = os.environ.get("REDIS_CHANNEL_LAYER", "pubsub")

DJANGO_APPS = [
    # daphne first: its runserver replaces Django's with an ASGI one.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Before channels: its runworker (realtime_common.worker) replaces Channels' own.
    "realtime_common",
    "channels",
]

# A worker run by `manage.py runworker` ticks its consumers this often (seconds),
# so they catch up on jobs whose messages were lost (realtime_common.worker).
WORKER_TICK_SECONDS = float(os.environ.get("WORKER_TICK_SECONDS", "30"))

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise, so static files carry the policy too (an SVG opened on its own is a page).
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database(*, base_dir: Path) -> dict:
    """``DATABASE_URL`` when set (``postgres://user:password@host:5432/name``, read by
    dj-database-url), else the embedded SQLite file ``db.sqlite3`` beside manage.py."""
    url = os.environ.get("DATABASE_URL", "")
    # Seconds a write waits for another's lock before the error "busy" (realtime_common.consumers).
    timeout = float(os.environ.get("DJANGO_DATABASE_TIMEOUT", "20"))
    # Connections are kept for a minute, on SQLite as on Postgres, for the consumers: every
    # database_sync_to_async call runs in one thread per process, the ORM thread, which
    # closes its connection (close_old_connections) around each call once older than this;
    # with 0 it would connect again for every frame. An HTTP request's connection is not
    # kept, whatever this says: Django runs a request's sync code in a thread of its own,
    # ended with the request, and realtime_common.database closes it then.
    conn_max_age = int(os.environ.get("DJANGO_DATABASE_CONN_MAX_AGE", "60"))
    if url:
        # Checked before reuse (a SELECT 1 at the first query of each call): a Postgres
        # that restarted or dropped the connection costs a reconnect, not a failed frame.
        config = dj_database_url.parse(url, conn_max_age=conn_max_age, conn_health_checks=True)
        if config["ENGINE"] == "django.db.backends.postgresql":
            # Writers queue on row locks (a stream's, a session's, a board's) instead of
            # SQLite's one write lock; Postgres would let them wait for ever. Options the
            # URL gives (?options=-c ...) come after, so they win.
            options = config.setdefault("OPTIONS", {})
            options["options"] = f"-c lock_timeout={round(timeout * 1000)} {options.get('options', '')}".strip()
        return config
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DATABASE_PATH", str(base_dir / "db.sqlite3")),
        # A file has no server to drop the connection: no health check. Each thread has its
        # own connection (Django's rule): one kept per process, the ORM thread's, plus one
        # per HTTP request in progress.
        "CONN_MAX_AGE": conn_max_age,
        "OPTIONS": {
            # Take the write lock when a transaction starts, so two writers queue
            # up instead of one failing with "database is locked" mid-transaction.
            "transaction_mode": "IMMEDIATE",
            # Past it, "database is locked".
            "timeout": timeout,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


def cookie_names(*, site: str) -> tuple[str, str]:
    """The session and CSRF cookie names of a site: ``(SESSION_COOKIE_NAME, CSRF_COOKIE_NAME)``.

    Browsers keep cookies per host, not per port: with Django's names, the sites
    served side by side on one host (127.0.0.1:8001, :8002, :8003) would overwrite
    each other's session, and logging into one would log you out of the others.
    """
    return f"{site}_sessionid", f"{site}_csrftoken"


def site_settings(*, name: str, app: str, base_dir: Path, workers: bool = False) -> dict[str, Any]:
    """What each site derives from its name, its app and its folder; a site's settings
    apply it with ``globals().update(site_settings(...))``.

    ``name`` keeps its cookies, channel layer prefix and cache keys apart from the other
    sites' on the same host and Redis; ``workers`` adds the "worker" channel layer
    (realtime_common.layers) for ``runworker`` jobs.
    """
    session_cookie, csrf_cookie = cookie_names(site=name)
    return {
        "SITE_NAME": name,
        "BASE_DIR": base_dir,
        "INSTALLED_APPS": [*DJANGO_APPS, app],
        "DATABASES": {"default": database(base_dir=base_dir)},
        "STATIC_ROOT": Path(os.environ.get("DJANGO_STATIC_ROOT", base_dir / "staticfiles")),
        "SESSION_COOKIE_NAME": session_cookie,
        "CSRF_COOKIE_NAME": csrf_cookie,
        "CHANNEL_LAYERS": channel_layers(
            prefix=name, redis_urls=REDIS_URLS, sentinel=REDIS_SENTINEL, kind=REDIS_CHANNEL_LAYER, workers=workers
        ),
        # Rate limits, presence and coalescing count in the cache: with Redis, every
        # process of the site sees the same counts (realtime_common.cache).
        "CACHES": caches(prefix=name, redis_urls=REDIS_URLS, sentinel=REDIS_SENTINEL),
    }


ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"


AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# The browser code all sites share (frontend/ beside shared/), served as
# static/frontend/js/..., static/frontend/css/... and static/frontend/vendor/... (the
# third-party libraries, frontend/vendor/README.md).
FRONTEND_DIR = Path(os.environ.get("FRONTEND_DIR", Path(__file__).resolve().parents[2] / "frontend"))
if not (FRONTEND_DIR / "js").is_dir():
    raise ImproperlyConfigured(
        f"The shared browser code is not at {FRONTEND_DIR}: copy frontend/ beside shared/, or point FRONTEND_DIR at it."
    )
STATICFILES_DIRS = [(f"frontend/{part}", FRONTEND_DIR / part) for part in ("js", "css", "vendor")]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "realtime_common.staticfiles.ManifestStaticFilesStorage"
        ),
    },
}
# In development WhiteNoise serves straight from the finders, so no collectstatic is needed.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Behind a TLS-terminating proxy (nginx), trust its X-Forwarded-Proto header.
BEHIND_TLS_PROXY = env_bool("DJANGO_BEHIND_TLS_PROXY")
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# With Secure cookies the site is https: a request over plain http is redirected there,
# except the health probe, which load balancers and compose send over plain http.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", default=SESSION_COOKIE_SECURE)
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
# HSTS makes browsers refuse plain http to the host (and, with the flag, its subdomains)
# for this many seconds. Off unless set: it cannot be taken back before it expires, so
# set it once the whole domain is served over https (check --deploy warns until then).
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS")
SILENCED_SYSTEM_CHECKS = [
    # HSTS preload (W021): submitting a domain to the browsers' preload list is its owner's
    # decision at hstspreload.org, hard to undo, and not one a template can make for them.
    "security.W021",
]

# The only pages that may open the site's WebSockets (realtime_common.asgi), compared
# exactly: the allowed hosts on the ports browsers use, over https when cookies are
# Secure (they would not reach a plain http page), unless listed in full.
WEBSOCKET_ORIGINS = websocket_origins(
    listed=env_list("DJANGO_WEBSOCKET_ORIGINS"),
    hosts=ALLOWED_HOSTS,
    ports=env_list("DJANGO_PUBLIC_PORTS"),
    secure=SESSION_COOKIE_SECURE or BEHIND_TLS_PROXY,
)

# The Content-Security-Policy of every response (django-csp's CSPMiddleware): what a page
# may load, run and connect to. Scripts and styles come only from the site's own files: no
# inline <script>, no on*= attributes, no style attributes, no eval, so markup that ever got
# past the escaping still could not run. No exception, not even for the admin (Django's admin
# runs under this policy: e2e/test_xss.py walks it). Sockets: CSP Level 2 browsers do
# not count ws:/wss: as 'self', so each page origin in WEBSOCKET_ORIGINS is also named as
# its socket origin (http -> ws, https -> wss): a page opens its own site's sockets only.
SOCKET_SCHEMES = {"http": "ws", "https": "wss"}
SOCKET_SOURCES = [
    f"{SOCKET_SCHEMES[scheme]}:{rest}"
    for scheme, _, rest in (origin.partition(":") for origin in WEBSOCKET_ORIGINS)
    if scheme in SOCKET_SCHEMES  # not "*" (DEBUG only): 'self' then covers the page's own host
]
# The pages' sockets may also live on an origin of their own (a socket domain,
# DJANGO_SOCKET_ORIGIN, e.g. wss://ws.example.com), where the pages' cookies do not go:
# each socket is then logged in by a single-use ticket the page fetches first
# (realtime_common.tickets). The default, "": the page's own origin, logged in by its cookie.
SOCKET_ORIGIN = socket_origin(
    configured=os.environ.get("DJANGO_SOCKET_ORIGIN", "").strip(), secure=SESSION_COOKIE_SECURE or BEHIND_TLS_PROXY
)
if SOCKET_ORIGIN:
    SOCKET_SOURCES.append(SOCKET_ORIGIN)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "connect-src": [SELF, *SOCKET_SOURCES],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        # With X_FRAME_OPTIONS for browsers that predate frame-ancestors.
        "frame-ancestors": [NONE],
    },
}

# Sockets one client address, and one logged-in user, may hold open per server
# process (realtime_common.asgi.ConnectionCaps): over it, close 1013.
WEBSOCKETS_PER_IP = int(os.environ.get("DJANGO_WEBSOCKETS_PER_IP", "256"))
WEBSOCKETS_PER_USER = int(os.environ.get("DJANGO_WEBSOCKETS_PER_USER", "32"))

# Prometheus metrics (realtime_common.metrics): counted unless DJANGO_METRICS=0; GET /metrics
# answers only clients of these networks (CIDRs), anyone else gets the site's 404.
METRICS_ENABLED = env_bool("DJANGO_METRICS", default=True)
METRICS_ALLOWED_NETWORKS = networks_parse(env_list("DJANGO_METRICS_ALLOWED_NETWORKS", default="127.0.0.0/8,::1/128"))
# The worker has no HTTP server: with a port, it serves its metrics there (`manage.py runworker`).
METRICS_PORT = int(os.environ["DJANGO_METRICS_PORT"]) if os.environ.get("DJANGO_METRICS_PORT") else None
METRICS_ADDR = os.environ.get("DJANGO_METRICS_ADDR", "127.0.0.1")

LOGGING = {
    "version": 1,
    # Keep the loggers daphne, Twisted and channels made before settings were
    # loaded: disabling them would swallow the tracebacks of crashed consumers.
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own handler mails admins; here errors go to the console like everything else.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
    },
}
