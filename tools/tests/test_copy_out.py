"""The copy-out check of `make copy-test` (tools/copy_out.py): its parts, on the real site READMEs and
on small stand-ins. The whole check, copies, installs and site suites, is `make copy-test` itself."""

import subprocess
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
    copy_unlisted,
    environment_clean,
    files_listed,
    snapshot_make,
    summary_read,
)


@pytest.mark.parametrize("site", SITES)
def test_each_site_readme_has_a_copy_block_that_copies_into_the_given_folder(site: str, tmp_path: Path):
    script = block_placed(block=block_read(site=site), repo=tmp_path / "checkout.git", app=tmp_path / "copy")
    lines = script.splitlines()
    # The reader's example places are replaced by the repository and the folder given.
    assert lines[:2] == [f"repo={tmp_path / 'checkout.git'}", f"app={tmp_path / 'copy'}"]
    assert "~/" not in script
    # The site, shared/ and frontend/ are copied, as git tracks them; the site's own tests are the last step.
    assert f'git -C "$repo" archive HEAD {site} shared frontend ' in script
    assert lines[-1].split("#")[0].strip() == "pytest"


@pytest.mark.parametrize(
    "block",
    ["mkdir ~/mine\n", "repo=~/checkout\nmkdir x\n", "repo=~/a\napp=~/b\napp=~/c\n"],
    ids=["neither", "no-app", "app-twice"],
)
def test_a_block_that_does_not_set_its_places_once_each_is_refused(block: str, tmp_path: Path):
    # Run as it is, it would copy to wherever its own lines say, not to a temporary folder.
    with pytest.raises(CopyFailed, match="repo= and app="):
        block_placed(block=block, repo=tmp_path, app=tmp_path)


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


def git(*arguments: str, cwd: Path) -> str:
    return subprocess.run(["git", *arguments], cwd=cwd, capture_output=True, check=True, text=True).stdout


@pytest.fixture
def used_checkout(tmp_path: Path, monkeypatch) -> Path:
    """A stand-in checkout, as copy_out's REPO: committed, then a file changed, one added, and a db.sqlite3 left
    by a run (ignored, as the repository ignores it)."""
    checkout = tmp_path / "checkout"
    for name in ("liveblog/manage.py", "shared/pyproject.toml", "frontend/js/socket.js", "requirements.txt"):
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text(f"# {name}\n")
    (checkout / "requirements-test.txt").write_text("-r requirements.txt\n")
    (checkout / ".gitignore").write_text("*.sqlite3\n")
    # The real README, whose block the tests run.
    (checkout / "liveblog" / "README.md").write_text((REPO / "liveblog" / "README.md").read_text())
    git("init", "--quiet", cwd=checkout)
    git("add", ".", cwd=checkout)
    git("-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "--quiet", "-m", "sites", cwd=checkout)
    (checkout / "liveblog" / "manage.py").write_text("# changed, not committed\n")
    (checkout / "liveblog" / "new.py").write_text("# new, not added\n")
    (checkout / "liveblog" / "db.sqlite3").write_text("the editor/editor superuser\n")
    monkeypatch.setattr("copy_out.REPO", checkout)
    return checkout


def test_the_snapshot_holds_the_tracked_and_new_files_as_the_working_tree_has_them(used_checkout: Path, tmp_path: Path):
    snapshot = snapshot_make(folder=tmp_path)
    listed = git("--git-dir", str(snapshot), "ls-tree", "-r", "--name-only", "HEAD", cwd=tmp_path).split()
    assert set(listed) == files_listed() and "liveblog/new.py" in listed and "liveblog/db.sqlite3" not in listed
    assert (
        git("--git-dir", str(snapshot), "show", "HEAD:liveblog/manage.py", cwd=tmp_path) == "# changed, not committed\n"
    )
    # The checkout itself is left as it was: nothing staged, its HEAD still the one commit.
    assert git("status", "--porcelain", cwd=used_checkout).split("\n")[:2] == [
        " M liveblog/manage.py",
        "?? liveblog/new.py",
    ]
    assert git("rev-list", "--count", "HEAD", cwd=used_checkout) == "1\n"


def copy_lines(*, site: str) -> str:
    """The README block's lines up to the copy itself: the ones before `cd "$app"`."""
    block = block_read(site=site)
    return block[: block.index('cd "$app"')]


def test_the_readme_block_copies_none_of_a_used_checkouts_ignored_files(used_checkout: Path, tmp_path: Path):
    app = tmp_path / "my-liveblog"
    script = block_placed(block=copy_lines(site="liveblog"), repo=snapshot_make(folder=tmp_path), app=app)
    block_run(script=script, cwd=tmp_path, env=environment_clean())
    assert (app / "liveblog" / "manage.py").read_text() == "# changed, not committed\n"
    assert copy_unlisted(app=app, listed=files_listed()) == []


def test_a_copy_holding_a_file_git_ignores_is_caught(used_checkout: Path, tmp_path: Path):
    # `cp -r` of a used checkout: the seeded db.sqlite3 comes along. What install and tests make does not count.
    app = tmp_path / "my-liveblog"
    block_run(
        script=f"mkdir {app} && cp -r {used_checkout}/liveblog {used_checkout}/shared {app}",
        cwd=tmp_path,
        env=environment_clean(),
    )
    for built in (".venv/bin/python", "shared/realtime_common.egg-info/PKG-INFO", "liveblog/.pytest_cache/README.md"):
        (app / built).parent.mkdir(parents=True, exist_ok=True)
        (app / built).write_text("")
    assert copy_unlisted(app=app, listed=files_listed()) == ["liveblog/db.sqlite3"]
