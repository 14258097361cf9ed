"""The link checker of `make lint` (tools/links_check.py), on small repositories made for each test."""

import subprocess
from pathlib import Path

import pytest
from links_check import heading_slug, links_check, main


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """An empty git repository: the checker reads the Markdown files git tracks or would."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_good_links_pass(repository: Path):
    write(repository, "docs/picture.svg", "<svg/>")
    write(repository, "docs/security.md", "# Security\n\n## Content-Security-Policy\n")
    write(
        repository,
        "README.md",
        "# Map\n\n## Quick start\n\n"
        "[security](docs/security.md), [the CSP](docs/security.md#content-security-policy),\n"
        "[up](#quick-start), ![a picture](docs/picture.svg), [a folder](docs/), [the site](https://example.com/x#y)\n"
        "[ref]: docs/security.md#security\n",
    )
    assert links_check(root=repository) == []
    assert main(root=repository) == 0


def test_broken_link_is_reported_with_file_and_line(repository: Path, capsys):
    write(repository, "README.md", "# Map\n\nSee [security](docs/security.md).\n")
    assert links_check(root=repository) == ["README.md:3: docs/security.md (no such file)"]
    assert main(root=repository) == 1
    assert "README.md:3: docs/security.md (no such file)" in capsys.readouterr().err


def test_broken_anchor_is_reported(repository: Path):
    write(repository, "docs/security.md", "# Security\n")
    write(repository, "chat/README.md", "# chat\n\n[CSP](../docs/security.md#content-security-policy)\n[x](#nowhere)\n")
    assert links_check(root=repository) == [
        "chat/README.md:3: ../docs/security.md#content-security-policy (no such heading)",
        "chat/README.md:4: #nowhere (no such heading)",
    ]


def test_broken_image_is_reported(repository: Path):
    write(repository, "README.md", "![the chat](docs/screenshots/chat.png)\n")
    assert links_check(root=repository) == ["README.md:1: docs/screenshots/chat.png (no such file)"]


def test_anchors_are_slugged_as_github_renders_them():
    assert heading_slug(heading="Sockets on another origin: tickets") == "sockets-on-another-origin-tickets"
    assert heading_slug(heading="From the talk's chat to Channels 4") == "from-the-talks-chat-to-channels-4"
    assert heading_slug(heading="The `worker` layer, **fast**") == "the-worker-layer-fast"
    assert heading_slug(heading="[Linked](x.md) heading_name") == "linked-heading_name"
    assert heading_slug(heading="Two  spaces - and a dash") == "two--spaces---and-a-dash"


def test_repeated_headings_are_numbered(repository: Path):
    write(
        repository, "README.md", "## Limits\n\n## Limits\n\n[first](#limits) [second](#limits-1) [third](#limits-2)\n"
    )
    assert links_check(root=repository) == ["README.md:5: #limits-2 (no such heading)"]


def test_code_is_neither_heading_nor_link(repository: Path):
    write(
        repository,
        "README.md",
        "```promql\n# How many sockets\n[not a link](missing.md)\n```\n\n`[inline](missing.md)` [x](#how-many-sockets)\n",
    )
    assert links_check(root=repository) == ["README.md:6: #how-many-sockets (no such heading)"]


def test_ignored_files_are_not_checked(repository: Path):
    write(repository, ".gitignore", "build/\n")
    write(repository, "build/notes.md", "[gone](missing.md)\n")
    assert links_check(root=repository) == []


def test_a_link_whose_text_wraps_a_line_is_checked_and_reported_where_it_starts(repository: Path):
    # docs/compose.md had one: its text wrapped, its anchor a heading of chat/README.md, not of its own file.
    write(repository, "chat/README.md", "# chat\n\n### Sockets on another origin: tickets\n")
    write(
        repository,
        "docs/compose.md",
        "# Compose\n\nEach socket brings a ticket ([the chat\nprotocol](#sockets-on-another-origin-tickets)).\n"
        "Fixed, it points into the chat's README: ([the chat\n"
        "protocol](../chat/README.md#sockets-on-another-origin-tickets)), and `inline code that wraps\n"
        "[a line](missing.md)` is no link.\n\n[after](#nowhere)\n",
    )
    assert links_check(root=repository) == [
        "docs/compose.md:3: #sockets-on-another-origin-tickets (no such heading)",
        "docs/compose.md:9: #nowhere (no such heading)",
    ]
