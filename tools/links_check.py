"""Check every relative link and #anchor in the repository's Markdown files (make lint runs it).

    python tools/links_check.py          # from anywhere in the checkout; exit 1 lists each broken link

A link is broken when the file or folder it names does not exist, or when its #anchor is not one of
the headings of the Markdown file it points into, slugged as GitHub renders them: lowercase, every
character but letters, digits, `_`, `-` and spaces dropped, spaces made `-`, and a repeated heading
given `-1`, `-2`, ... Images count as links. Links with a scheme (https:, mailto:) are not fetched:
a check that depends on other people's servers would fail the lint stage for reasons not ours.
Only ATX headings (`## Title`) are read, the only kind this repository writes; headings and links
inside fenced code blocks and inline code are ignored, as GitHub shows them as code. Links are matched
in whole paragraphs, not line by line: a link's text (or inline code) may wrap onto the next line, as
the repository's 120-column Markdown often does, and such a link is checked too, reported at the line
it starts on.

It lives in tools/, not in shared/ or a site, because it checks the repository itself: a site copied
out as the start of another project has no use for it. Standard library only, so the lint stage needs
nothing installed to run it.
"""

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

# `[text](target "title")` and `![alt](target)`; the target may be in <...> when it holds spaces.
INLINE_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
# `[label]: target` on a line of its own: a reference definition.
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.MULTILINE)
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)  # DOTALL: inline code may wrap a line
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True)
class Link:
    path: Path
    line: int
    target: str


def markdown_lines(*, text: str) -> list[tuple[int, str]]:
    """The lines of a Markdown text that are not in a fenced code block, with their 1-based numbers."""
    lines = []
    fence = None  # the opening fence's characters while inside a block: it closes on the same kind
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
        else:
            lines.append((number, line))
    return lines


def markdown_paragraphs(*, text: str) -> list[tuple[int, str]]:
    """The runs of consecutive non-blank lines outside fenced code, joined by newlines, with their first line's number.

    A fence ends a paragraph as a blank line does: its lines are missing from markdown_lines."""
    paragraphs: list[tuple[int, list[str]]] = []
    previous = 0
    for number, line in markdown_lines(text=text):
        if not line.strip():
            continue
        if paragraphs and previous == number - 1:
            paragraphs[-1][1].append(line)
        else:
            paragraphs.append((number, [line]))
        previous = number
    return [(first, "\n".join(lines)) for first, lines in paragraphs]


def heading_slug(*, heading: str) -> str:
    """A heading's anchor as GitHub makes it, before duplicates are numbered."""
    # The rendered text: inline code keeps its content, a link its text, emphasis loses its markers.
    text = INLINE_CODE.sub(lambda match: match.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def markdown_anchors(*, text: str) -> set[str]:
    """Every anchor GitHub gives the headings of a Markdown text, duplicates numbered -1, -2, ..."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in markdown_lines(text=text):
        match = ATX_HEADING.match(line)
        if not match:
            continue
        slug = heading_slug(heading=match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def markdown_links(*, path: Path, text: str) -> list[Link]:
    """The link and image targets of a Markdown text, outside code, in the order they appear."""
    links = []
    for first, paragraph in markdown_paragraphs(text=text):
        # Inline code is no link; it keeps its line breaks, so that each match maps back to its line.
        paragraph = INLINE_CODE.sub(lambda match: "\n" * match.group().count("\n"), paragraph)
        matches = sorted(
            [*REFERENCE_DEFINITION.finditer(paragraph), *INLINE_LINK.finditer(paragraph)], key=re.Match.start
        )
        links += [
            Link(path=path, line=first + paragraph.count("\n", 0, match.start()), target=match.group(1).strip("<>"))
            for match in matches
        ]
    return links


def link_problem(*, link: Link, root: Path, anchors_of) -> str | None:
    """Why a link is broken, or None when it is fine (or external: not fetched)."""
    if SCHEME.match(link.target) or link.target.startswith("//"):
        return None
    target, _, anchor = link.target.partition("#")
    target = unquote(target)
    if not target:
        destination = link.path
    elif target.startswith("/"):  # GitHub resolves a leading / from the repository's root
        destination = root / target.lstrip("/")
    else:
        destination = link.path.parent / target
    if not destination.exists():
        return "no such file"
    if anchor and destination.suffix.lower() == ".md" and unquote(anchor) not in anchors_of(destination):
        return "no such heading"
    return None


def markdown_files(*, root: Path) -> list[Path]:
    """The Markdown files git tracks, and the new ones it would (not ignored), that exist."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "*.md"],
        cwd=root,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return sorted({root / name for name in listed.split("\0") if name and (root / name).is_file()})


def links_check(*, root: Path) -> list[str]:
    """One line per broken link in the repository at root: `file:line: target (why)`."""
    anchors: dict[Path, set[str]] = {}

    def anchors_of(path: Path) -> set[str]:
        resolved = path.resolve()
        if resolved not in anchors:
            anchors[resolved] = markdown_anchors(text=resolved.read_text(encoding="utf-8"))
        return anchors[resolved]

    problems = []
    for path in markdown_files(root=root):
        for link in markdown_links(path=path, text=path.read_text(encoding="utf-8")):
            problem = link_problem(link=link, root=root, anchors_of=anchors_of)
            if problem:
                problems.append(f"{path.relative_to(root)}:{link.line}: {link.target} ({problem})")
    return problems


def main(*, root: Path) -> int:
    problems = links_check(root=root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} broken link(s) in the Markdown files", file=sys.stderr)
        return 1
    print(f"links: every relative link and anchor of {len(markdown_files(root=root))} Markdown files resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main(root=Path(__file__).resolve().parent.parent))
