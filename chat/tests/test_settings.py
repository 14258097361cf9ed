"""The chat's own settings, loaded in a fresh interpreter: they read the environment on import."""

import os
import subprocess
import sys
from pathlib import Path

CHAT = Path(__file__).resolve().parents[1]


def members_listed_load(*, value: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.CHAT_MEMBERS_LISTED)"],
        env={**os.environ, "DJANGO_DEBUG": "1", "CHAT_MEMBERS_LISTED": value},
        capture_output=True,
        text=True,
        cwd=CHAT,
    )


def test_a_list_of_members_holds_at_least_one_name():
    refused = members_listed_load(value="0")
    assert refused.returncode != 0
    assert "CHAT_MEMBERS_LISTED must be at least 1, not 0" in refused.stderr
    kept = members_listed_load(value="5")
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.strip() == "5"
