"""make compose-test without a Docker engine: skipped on a developer's machine, a failure in CI."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "e2e" / "compose-test"


@pytest.mark.parametrize(("ci", "code", "said"), [("", 0, "SKIPPED"), ("true", 1, "FAILED")])
def test_no_docker_engine_skips_only_outside_ci(tmp_path, ci, code, said):
    # A checkout with no stand-ins tool beside it, and a docker that never answers.
    (tmp_path / "repo" / "e2e").mkdir(parents=True)
    shutil.copy(SCRIPT, tmp_path / "repo" / "e2e" / "compose-test")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "docker").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "CI": ci}
    result = subprocess.run(
        ["bash", str(tmp_path / "repo" / "e2e" / "compose-test")], capture_output=True, text=True, env=env, timeout=30
    )
    assert result.returncode == code
    assert f"compose-test: {said} (no Docker engine answers" in result.stdout + result.stderr
