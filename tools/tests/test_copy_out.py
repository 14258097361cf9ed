"""The copy-out check of `make copy-test` (tools/copy_out.py): its parts, on the real site READMEs and
on small stand-ins. The whole check, copies, installs and site suites, is `make copy-test` itself."""

import sys
from pathlib import Path

import pytest
from copy_out import (
    REPO,
    SITES,
    CopyFailed,
    block_placed,
    block_read,
    block_run,
    copy_checked,
    environment_clean,
    summary_read,
)


@pytest.mark.parametrize("site", SITES)
def test_each_site_readme_has_a_copy_block_that_copies_into_the_given_folder(site: str, tmp_path: Path):
    script = block_placed(block=block_read(site=site), app=tmp_path / "copy")
    lines = script.splitlines()
    # The reader's example places are replaced by this checkout and the folder given.
    assert lines[:2] == [f"repo={REPO}", f"app={tmp_path / 'copy'}"]
    assert "~/" not in script
    # The site, shared/ and frontend/ are copied; the site's own tests are the last step.
    assert f'"$repo"/{site} "$repo"/shared "$repo"/frontend' in script
    assert lines[-1].split("#")[0].strip() == "pytest"


@pytest.mark.parametrize(
    "block",
    ["mkdir ~/mine\n", "repo=~/checkout\nmkdir x\n", "repo=~/a\napp=~/b\napp=~/c\n"],
    ids=["neither", "no-app", "app-twice"],
)
def test_a_block_that_does_not_set_its_places_once_each_is_refused(block: str, tmp_path: Path):
    # Run as it is, it would copy to wherever its own lines say, not to a temporary folder.
    with pytest.raises(CopyFailed, match="repo= and app="):
        block_placed(block=block, app=tmp_path)


def test_the_clean_environment_keeps_pip_and_the_path_but_nothing_of_the_repository(monkeypatch):
    monkeypatch.setenv("PATH", f"{REPO / '.venv' / 'bin'}:/usr/bin:/bin")
    monkeypatch.setenv("PYTHONPATH", str(REPO / "shared"))
    monkeypatch.setenv("VIRTUAL_ENV", str(REPO / ".venv"))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "config.settings")
    monkeypatch.setenv("PIP_INDEX_URL", "https://pypi.example/simple")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("CI", "true")
    env = environment_clean()
    assert env["PATH"] == "/usr/bin:/bin"
    assert {"PYTHONPATH", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE"}.isdisjoint(env)
    assert env["PIP_INDEX_URL"] == "https://pypi.example/simple"
    assert env["HTTPS_PROXY"] == "http://proxy.example:3128"
    assert env["CI"] == "true"


def test_a_pytest_that_collects_no_test_fails_the_copy(tmp_path: Path):
    # pytest's exit code 5, from an empty folder: the step fails, as any non-zero exit does.
    script = f"{sys.executable} -m pytest -p no:cacheprovider"
    with pytest.raises(CopyFailed, match="exited with 5"):
        block_run(script=script, cwd=tmp_path, env=environment_clean())


def test_the_summary_says_how_many_tests_ran_and_needs_one_passed():
    output = ["tests/test_wire.py ....\n", "===== 301 passed, 2 skipped in 95.20s (0:01:35) =====\n"]
    assert summary_read(output=output) == "301 passed, 2 skipped in 95 s (pytest)"
    with pytest.raises(CopyFailed, match="no test passed"):
        summary_read(output=["===== 4 skipped in 0.10s =====\n"])
    with pytest.raises(CopyFailed, match="no test passed"):
        summary_read(output=["bash: pytest: command not found\n"])


def copy_with_python(*, app: Path, script: str) -> None:
    """A stand-in copy of the liveblog at ``app`` whose `.venv/bin/python` is the shell ``script``."""
    (app / "liveblog").mkdir(parents=True)
    python = app / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\n{script}\n")
    python.chmod(0o755)


def test_a_copy_whose_python_imports_the_repository_is_caught(tmp_path: Path):
    # Its Python is the repository's venv: realtime_common comes from the checkout.
    app = tmp_path / "my-liveblog"
    copy_with_python(app=app, script=f'exec {sys.executable} "$@"')
    with pytest.raises(CopyFailed, match="not from the copy"):
        copy_checked(app=app, site="liveblog", env=environment_clean())


def test_a_copy_with_a_folder_of_the_repository_on_its_sys_path_is_caught(tmp_path: Path):
    # realtime_common is the copy's, but a folder of the checkout is on the path after it.
    app = tmp_path / "my-liveblog"
    (app / "shared" / "realtime_common").mkdir(parents=True)
    (app / "shared" / "realtime_common" / "__init__.py").write_text("")
    copy_with_python(app=app, script=f'PYTHONPATH={app / "shared"}:{REPO / "tools"} exec {sys._base_executable} "$@"')
    with pytest.raises(CopyFailed, match="reaches into the repository"):
        copy_checked(app=app, site="liveblog", env=environment_clean())
