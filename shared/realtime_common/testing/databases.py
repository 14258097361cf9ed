"""The database a pytest-django suite runs on, and concurrent writers to test it with.
Load with ``-p realtime_common.testing.databases`` (``django_fixtures`` brings it along).

- ``TEST_DATABASE=postgres`` (``make test-postgres``) starts one throwaway Postgres for
  the session (``servers.PostgresServer``) before Django's settings are loaded, and
  points DATABASE_URL at it; pytest-django then creates its ``test_tests`` database
  there. Otherwise (``sqlite``, the default) the tests run on SQLite, whatever
  DATABASE_URL the shell has, in a file as the sites do (not pytest-django's in-memory
  database, whose shared cache answers a second writer with "database table is locked"
  at once where a file, with the sites' IMMEDIATE transactions, queues it).
- ``concurrent_writers``: runs calls at once in threads, each on its own connection.
"""

import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connections

from realtime_common.testing.servers import PostgresServer, database_kind_get

POSTGRES_SERVER = pytest.StashKey[PostgresServer]()
SQLITE_DIRECTORY = pytest.StashKey[str]()

# How long a test waits for its concurrent writers, at most.
WRITERS_TIMEOUT = 60.0


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    # Before pytest-django's own hook, which loads the settings, which read DATABASE_URL.
    # A write waiting for another transaction's lock gives up after 2 s rather than 20
    # (SQLite's timeout, Postgres' lock_timeout: realtime_common.settings): the tests of
    # "busy" wait no longer.
    os.environ.setdefault("DJANGO_DATABASE_TIMEOUT", "2")
    if database_kind_get() != "postgres":
        os.environ.pop("DATABASE_URL", None)
        return
    server = PostgresServer()
    early_config.stash[POSTGRES_SERVER] = server
    try:
        server.start()
    except BaseException:
        server.stop()  # pytest_unconfigure does not run when this hook fails
        raise
    os.environ["DATABASE_URL"] = server.url(name="tests")


def pytest_configure(config: pytest.Config) -> None:
    if POSTGRES_SERVER in config.stash:
        # pytest-django's --reuse-db: the test database is not dropped at the end, which
        # the connections left open in sync_to_async's threads would refuse; the server
        # goes, with all it holds.
        config.option.reuse_db = True
    elif connections.settings["default"]["ENGINE"] == "django.db.backends.sqlite3":
        directory = config.stash[SQLITE_DIRECTORY] = tempfile.mkdtemp(prefix="sqlite-tests-")
        connections.settings["default"]["TEST"]["NAME"] = os.path.join(directory, "tests.sqlite3")


def pytest_unconfigure(config: pytest.Config) -> None:
    server = config.stash.get(POSTGRES_SERVER, None)
    if server is not None:
        server.stop()
    if SQLITE_DIRECTORY in config.stash:
        shutil.rmtree(config.stash[SQLITE_DIRECTORY], ignore_errors=True)


@pytest.fixture
def concurrent_writers(transactional_db) -> Callable[..., list[Any]]:
    """``concurrent_writers(*calls)`` runs each call in a thread of its own, on a database
    connection of its own, all let go at once, and returns their results in order (or
    raises the first exception). Their transactions really overlap on Postgres, where
    what SQLite's single writer gave for free must hold on its own. On SQLite they queue
    for its one write lock, as the sites' processes do.
    """

    def writers_run(*calls: Callable[[], Any]) -> list[Any]:
        start = threading.Barrier(len(calls))

        def writer_run(call: Callable[[], Any]) -> Any:
            try:
                start.wait(timeout=WRITERS_TIMEOUT)
                return call()
            finally:
                # The thread's connection goes with it, not whenever it is collected.
                connections.close_all()

        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            futures = [pool.submit(writer_run, call) for call in calls]
            return [future.result(timeout=WRITERS_TIMEOUT) for future in futures]

    return writers_run
