"""The repository stands alone: no tracked file points readers at notes outside it, every relative
link in the docs leads to a file that exists, and every `docs/X.md, "Section"` reference names a
heading that exists."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Built from pieces so that this file does not match its own patterns.
_SECTION = "\u00a7"
FORBIDDEN = [
    ("a path into the team's shared directory", re.compile(re.escape(".." + "/shared"))),
    ("an absolute path into the team's shared directory", re.compile(re.escape("/work" + "/shared"))),
    ("the team's spec notes", re.compile(re.escape("shared" + "/specs"))),
    ("a spec section number", re.compile("spec" + r"\s*" + _SECTION, re.IGNORECASE)),
    ("a spec note by name", re.compile("|".join(re.escape(stem) for stem in (
        "pbs-tape" + "-format", "pbs-datastore" + "-format", "scsi-emulation" + ".md")))),
]

#: `[text](target)`; the target ends at the first blank or closing parenthesis.
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
#: `docs/tape-format.md, "Blocks"` in code and docs, `tape-format.md, "Blocks"` inside docs/;
#: a comment may continue the reference on its next line.
SECTION_REFERENCE = re.compile(r"((?:docs/)?[\w.-]+\.md)[,;]\s*(?:#\s*)?\"([^\"\n]+)\"")


def tracked_files(root: Path) -> list[Path]:
    try:
        listing = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [root / name for name in listing.decode().split("\0") if name]


def tracked_texts(root: Path) -> dict[Path, str]:
    texts = {}
    for path in tracked_files(root):
        try:
            texts[path] = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary, or deleted in the work tree
    return texts


def references_outside(root: Path) -> list[str]:
    """`file:line: what` for every tracked line that points outside the repository."""
    found = []
    for path, text in tracked_texts(root).items():
        for number, line in enumerate(text.splitlines(), 1):
            for what, pattern in FORBIDDEN:
                if pattern.search(line):
                    found.append(f"{path.relative_to(root)}:{number}: {what}: {line.strip()}")
    return found


def documents(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def broken_links(root: Path) -> list[str]:
    found = []
    for document in documents(root):
        for match in MARKDOWN_LINK.finditer(document.read_text(encoding="utf-8")):
            target = match.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL, or a place in this document
            if not (document.parent / target.split("#", 1)[0]).exists():
                found.append(f"{document.relative_to(root)}: {target}")
    return found


def headings(document: Path) -> list[str]:
    return [line.lstrip("#").strip() for line in document.read_text(encoding="utf-8").splitlines()
            if line.startswith("#")]


def unknown_sections(root: Path) -> list[str]:
    found = []
    for path, text in tracked_texts(root).items():
        if path.suffix not in (".py", ".c", ".md") or path.name == Path(__file__).name:
            continue
        for match in SECTION_REFERENCE.finditer(text):
            name, section = match.groups()
            document = root / name if name.startswith("docs/") else root / "docs" / name
            if not document.is_file():
                found.append(f"{path.relative_to(root)}: {name} does not exist")
            elif not any(heading.startswith(section) for heading in headings(document)):
                found.append(f"{path.relative_to(root)}: {name} has no section {section!r}")
    return found


def test_no_tracked_file_points_outside_the_repository():
    assert references_outside(REPO) == []


def test_every_relative_link_in_the_docs_resolves():
    assert broken_links(REPO) == []


def test_every_named_doc_section_exists():
    assert unknown_sections(REPO) == []


def test_the_checks_find_what_they_look_for(tmp_path):
    """The patterns match the references they exist to catch (they are built from pieces)."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("[format](docs/missing.md) [site](https://example.org) [top](#top)\n")
    (tmp_path / "docs" / "a.md").write_text("# A\n\n## Blocks\n\nsee `../" + "shared/" + "specs/x.md`\n")
    (tmp_path / "code.py").write_text('"""Blocks (SPEC ' + _SECTION + '1.1); docs/a.md, "Blocks"; docs/a.md, "Nope"."""\n')
    subprocess.run(["git", "-C", str(tmp_path), "add", "."], check=True)

    outside = references_outside(tmp_path)
    assert [entry.split(":")[0] for entry in outside] == ["code.py", "docs/a.md", "docs/a.md"]
    assert broken_links(tmp_path) == ["README.md: docs/missing.md"]
    assert unknown_sections(tmp_path) == ["code.py: docs/a.md has no section 'Nope'"]
