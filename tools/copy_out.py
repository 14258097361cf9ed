"""Copy each site out of the repository as its README says, and run its tests there (make copy-test; CI).

    python3 tools/copy_out.py                  # liveblog, chat and sketchpad, one after the other
    python3 tools/copy_out.py chat             # one site

The sites are meant to be copied as the start of other projects. For each site this runs, with bash, the
`sh` block under the heading "Copy this site out" of the site's README, with the block's `repo=` set to
a snapshot of this checkout and its `app=` to a new folder in a temporary directory outside it: the steps
a person follows are the very ones CI proves, and the README cannot drift from them. The block copies the
site, `shared/` and `frontend/` with `git archive HEAD`, makes a fresh virtualenv, installs the pins into
it (from pip's cache when it has them) and runs the site's pytest suite, which runs its consumer tests on
both channel layers (its fixtures start their own Redis).

The snapshot is a bare git repository in the temporary directory whose HEAD holds the files of this
checkout that git tracks or would (new, not ignored: `files_listed`) as they are in the working tree:
in CI (a clean clone) that is the commit under test, and locally the changes not yet committed are
tested too, which `git archive HEAD` on the checkout itself would leave out. It is built with its own
index and objects, so the checkout's index, refs and stash are not touched.

The copy must hold nothing else: a used checkout's db.sqlite3 (ignored) holds the demo's accounts with
known passwords, and an app copied with it would start with a known admin login. After the block, every
file of the copy must be one `files_listed` lists, but for what the block's own steps make (BUILT: the
virtualenv, the editable install's egg-info, caches).

The block runs in a clean environment, so the copy cannot import from the repository by accident: PATH
without the repository's folders (its .venv), HOME and XDG_CACHE_HOME (pip's cache), TMPDIR, the locale,
pip's settings and proxies (a CI machine may need them to reach the index) and CI (the fuzz tests
derandomize under CI=true); nothing like PYTHONPATH or VIRTUAL_ENV. Afterwards the copy's Python must import realtime_common from the
copy, with no folder of the repository on its sys.path.

A site fails when the block fails (a pytest that collects nothing exits with 5) or when no test passed;
the other sites are still tried. It prints each site's test summary and the time it took. Standard library only: it runs with any
python3, without the repository's virtualenv. It lives in tools/ because it checks the repository
itself: a copied site has no use for it.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SITES = ("liveblog", "chat", "sketchpad")
HEADING = "## Copy this site out"
# What the block's own install and test steps make in the copy (files under these are not copied ones).
BUILT = re.compile(r"\.venv|__pycache__|\.pytest_cache|\.hypothesis|.+\.egg-info")
# The snapshot's one commit; git wants an author for it, not necessarily a configured one.
SNAPSHOT_AUTHOR = ["-c", "user.name=copy-out", "-c", "user.email=copy-out@localhost"]
# The block's two lines a reader edits: where the checkout is, and the new folder for the copy.
PLACES = re.compile(r"^(repo|app)=.*\n", re.MULTILINE)
# What the copy's environment keeps of ours (the module docstring says why each).
KEPT = re.compile(r"PATH|HOME|LANG|LC_\w+|TMPDIR|XDG_CACHE_HOME|PIP_\w+|https?_proxy|no_proxy|CI", re.IGNORECASE)
# pytest's last line, e.g. "===== 301 passed, 2 skipped in 95.20s (0:01:35) =====".
SUMMARY = re.compile(r"^=+ (?P<counts>.+) in (?P<seconds>[\d.]+)s\b")
PASSED = re.compile(r"(\d+) passed")
# Run with the copy's Python, from the copied site: where realtime_common and sys.path come from.
WHERE_FROM = "import json, sys, realtime_common; print(json.dumps([realtime_common.__file__, sys.path]))"


class CopyFailed(Exception):
    pass


def block_read(*, site: str) -> str:
    """The commands of the `sh` block under HEADING in the site's README."""
    lines = (REPO / site / "README.md").read_text().splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == HEADING)
        opening = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```sh"))
        closing = next(i for i in range(opening + 1, len(lines)) if lines[i].startswith("```"))
    except StopIteration:
        raise CopyFailed(f"{site}/README.md has no `sh` block under {HEADING!r}") from None
    return "".join(lines[opening + 1 : closing])


def block_placed(*, block: str, repo: Path, app: Path) -> str:
    """The block with its `repo=` and `app=` lines pointing at ``repo`` and at ``app``.

    Both lines must be there: a block without them would copy to wherever its own lines say."""
    if sorted(match.group(1) for match in PLACES.finditer(block)) != ["app", "repo"]:
        raise CopyFailed("the block must set repo= and app= once each, on lines of their own")
    return f"repo={shlex.quote(str(repo))}\napp={shlex.quote(str(app))}\n" + PLACES.sub("", block)


def git_output(*arguments: str, stdin: bytes = b"") -> str:
    """What a git command run in the checkout prints; it must succeed."""
    return subprocess.run(["git", *arguments], cwd=REPO, input=stdin, capture_output=True, check=True).stdout.decode()


def files_listed() -> set[str]:
    """The paths, relative to the checkout, of the files git tracks, and of the new ones it would (not ignored)."""
    return set(filter(None, git_output("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")))


def snapshot_make(*, folder: Path) -> Path:
    """A bare repository in ``folder`` whose HEAD holds the checkout's files_listed as the working tree has them."""
    snapshot = folder / "checkout.git"
    git_output("init", "--bare", "--quiet", str(snapshot))
    # Its own index (inside the snapshot) and objects; the checkout's working tree is only read.
    git = ["--git-dir", str(snapshot), "--work-tree", str(REPO)]
    # --remove: a tracked file deleted from the working tree is left out, as a commit of it would.
    listed = "\0".join(sorted(files_listed())).encode()
    git_output(*git, "update-index", "--add", "--remove", "-z", "--stdin", stdin=listed)
    tree = git_output(*git, "write-tree").strip()
    commit = git_output(*SNAPSHOT_AUTHOR, *git, "commit-tree", tree, "-m", "copy-out snapshot").strip()
    git_output(*git, "update-ref", "HEAD", commit)
    return snapshot


def copy_unlisted(*, app: Path, listed: set[str]) -> list[str]:
    """The files of the copy at ``app`` that are not ``listed`` (files_listed), but for what the block builds (BUILT)."""
    unlisted = []
    for folder, folders, files in os.walk(app):
        folders[:] = [name for name in folders if not BUILT.fullmatch(name)]  # not walked into
        relatives = (Path(folder, name).relative_to(app).as_posix() for name in files if not BUILT.fullmatch(name))
        unlisted += [relative for relative in relatives if relative not in listed]
    return sorted(unlisted)


def environment_clean() -> dict[str, str]:
    """The caller's environment reduced to KEPT, and PATH without the repository's folders."""
    kept = {name: value for name, value in os.environ.items() if KEPT.fullmatch(name)}
    folders = [folder for folder in kept.get("PATH", os.defpath).split(os.pathsep) if folder]
    kept["PATH"] = os.pathsep.join(folder for folder in folders if not Path(folder).resolve().is_relative_to(REPO))
    return kept


def block_run(*, script: str, cwd: Path, env: dict[str, str]) -> list[str]:
    """Run the block with bash, showing its output as it comes; its output's lines.

    -e: the first step that fails ends the block with its exit code (a pytest that collected
    no test exits with 5)."""
    output = []
    with subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        for line in process.stdout:
            print(line, end="", flush=True)
            output.append(line)
    if process.returncode != 0:
        raise CopyFailed(f"its README's block exited with {process.returncode}")
    return output


def copy_checked(*, app: Path, site: str, env: dict[str, str]) -> None:
    """The copy's Python imports realtime_common from the copy and has nothing of the repository on sys.path."""
    result = subprocess.run(
        [str(app / ".venv" / "bin" / "python"), "-c", WHERE_FROM],
        cwd=app / site,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise CopyFailed(f"the copy's Python could not import realtime_common: {result.stderr}")
    module, path = json.loads(result.stdout)
    if not Path(module).resolve().is_relative_to(app):
        raise CopyFailed(f"the copy imports realtime_common from {module}, not from the copy")
    # Relative entries ('', the editable install's path hook) are the copy's: it ran from the copied site.
    leaks = [entry for entry in path if Path(entry).is_absolute() and Path(entry).resolve().is_relative_to(REPO)]
    if leaks:
        raise CopyFailed(f"the copy's sys.path reaches into the repository: {leaks}")


def site_copy_test(*, site: str, env: dict[str, str]) -> str:
    """Copy ``site`` out, install and test it as its README says; pytest's summary of the copy's tests."""
    block = block_read(site=site)
    with tempfile.TemporaryDirectory(prefix=f"copy-out-{site}-") as folder:
        if Path(folder).resolve().is_relative_to(REPO):
            raise CopyFailed(f"the temporary directory {folder} is inside the repository: set TMPDIR elsewhere")
        app = Path(folder).resolve() / f"my-{site}"
        snapshot = snapshot_make(folder=Path(folder))
        output = block_run(script=block_placed(block=block, repo=snapshot, app=app), cwd=Path(folder), env=env)
        copy_checked(app=app, site=site, env=env)
        unlisted = copy_unlisted(app=app, listed=files_listed())
        if unlisted:
            raise CopyFailed(f"the copy holds files git neither tracks nor would (ignored): {unlisted}")
    return summary_read(output=output)


def summary_read(*, output: list[str]) -> str:
    """pytest's last summary in ``output``, e.g. "301 passed, 2 skipped in 95 s (pytest)"; at least one test passed."""
    summaries = [match for line in output if (match := SUMMARY.match(line))]
    passed = PASSED.search(summaries[-1]["counts"]) if summaries else None
    if passed is None or int(passed.group(1)) == 0:
        raise CopyFailed("no test passed in the copy")
    return f"{summaries[-1]['counts']} in {float(summaries[-1]['seconds']):.0f} s (pytest)"


def main(*, sites: list[str]) -> int:
    unknown = sorted(set(sites) - set(SITES))
    if unknown:
        print(f"copy-test: no such site {unknown}; the sites are {', '.join(SITES)}", file=sys.stderr)
        return 2
    env = environment_clean()
    # Every site is tried even after one failed: a failing chat must not hide a failing sketchpad.
    results, failed = [], []
    for site in sites:
        print(f"==> copy-test: {site}: copied out, installed and tested as its README says", flush=True)
        started = time.monotonic()
        try:
            summary = site_copy_test(site=site, env=env)
        except CopyFailed as failure:
            summary = f"FAILED: {failure}"
            failed.append(site)
        results.append(f"{site}: {summary}; {time.monotonic() - started:.0f} s with the copy and install")
        print(f"==> copy-test: {results[-1]}", flush=True)
    print(f"==> copy-test: {'failed: ' + ', '.join(failed) if failed else 'every copied site passed its tests'}")
    for result in results:
        print(f"    {result}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sites=sys.argv[1:] or list(SITES)))
