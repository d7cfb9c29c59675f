"""The README, docs/ and the other guides point at things that exist and show nothing of the
author's machine.

Links lead to files and headings that exist (in the same page or another one), backticked
repository paths name files that exist, the README stays a one-page guide, and no code block
carries a path of the machine its output was made on.
"""

import os
import re
import unicodedata
from pathlib import Path

import pytest
from support import REPO_ROOT

README = REPO_ROOT / "README.md"
GUIDES = [REPO_ROOT / "bench" / "README.md", REPO_ROOT / "deploy" / "kubernetes" / "README.md"]
PAGES = [README, *GUIDES, *sorted((REPO_ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 300
TOP_LEVEL = ("API/", "jupyter/", "data/", "Docker/", "tests/", "bench/", "docs/", "deploy/", ".ci/")
CODE_SPAN = re.compile(r"`([^`\s]+)`")
PYTHON_FILE = re.compile(r"[\w./-]+\.py")
LOCAL_LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCED_BLOCK = re.compile(r"^```.*?^```", flags=re.S | re.M)
# Home directories, CI work trees and pytest's temporary directories of whoever ran it.
MACHINE_PATH = re.compile(r"/root/|/home/[^/\s]+/|/Users/[^/\s]+/|/tmp/pytest-|/work/")
# Created by the user or by a command the docs give (all git-ignored).
CREATED_AT_RUN_TIME = {
    "Docker/.env",
    "bench/results",
    "bench/results/latest.md",
    "bench/results/logs",
}


def page_id(page: Path) -> str:
    return str(page.relative_to(REPO_ROOT))


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = unicodedata.normalize("NFC", heading.strip().lower())
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def prose(page: Path) -> str:
    """The page without its fenced code blocks (their '#' lines are not headings)."""
    return FENCED_BLOCK.sub("", page.read_text())


def anchors(page: Path) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", prose(page), flags=re.M)
    return {github_anchor(heading) for heading in headings}


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LOCAL_LINK.findall(prose(page)):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        missing_heading = bool(anchor) and linked.suffix == ".md" and linked.exists()
        if not linked.exists() or (missing_heading and anchor not in anchors(linked)):
            broken.append(target)
    return broken


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_links_lead_to_headings_and_files_that_exist(page: Path):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_paths_named_in_the_text_exist(page: Path):
    named = {
        span.rstrip("/.,:")
        for span in CODE_SPAN.findall(prose(page))
        if span.startswith(TOP_LEVEL) and not any(ch in span for ch in "*{}<>$")
    }
    assert named, f"{page_id(page)} names no repository path at all"
    missing = sorted(p for p in named - CREATED_AT_RUN_TIME if not (REPO_ROOT / p).exists())
    assert missing == []


def repository_python_files() -> set[str]:
    """Every .py path of the repository, relative to its root (hidden and virtualenv folders
    left out)."""
    found = set()
    for folder, subfolders, files in os.walk(REPO_ROOT):
        subfolders[:] = [name for name in subfolders if not name.startswith((".", "__"))]
        relative = Path(folder).relative_to(REPO_ROOT)
        found.update(str(relative / name) for name in files if name.endswith(".py"))
    return found


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_modules_named_by_file_name_alone_exist(page: Path):
    """`registry.py` in a sentence about API/app/models/ must be a real file somewhere."""
    python_files = repository_python_files()
    bare = {
        span
        for span in CODE_SPAN.findall(prose(page))
        if PYTHON_FILE.fullmatch(span) and not span.startswith(TOP_LEVEL)
    }
    missing = sorted(
        name for name in bare if not any(path.endswith(f"/{name}") for path in python_files)
    )
    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_no_code_block_shows_a_path_of_the_machine_it_was_made_on(page: Path):
    leaks = [
        line
        for block in FENCED_BLOCK.findall(page.read_text())
        for line in block.splitlines()
        if MACHINE_PATH.search(line)
    ]
    assert leaks == []


def test_readme_is_a_one_page_guide():
    lines = README.read_text().count("\n")

    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"


def test_readme_links_every_page_of_docs():
    linked = {target.partition("#")[0] for target in LOCAL_LINK.findall(prose(README))}
    pages = {page_id(page) for page in PAGES if page != README}

    assert sorted(pages - linked) == []


def test_every_compose_command_runs_from_the_docker_directory():
    """The docs' rule: Compose runs from Docker/, so no command names the compose file."""
    offending = [
        f"{page_id(page)}: {line.strip()}"
        for page in PAGES
        for line in page.read_text().splitlines()
        if re.search(r"docker[ -]compose\b.*\s-f\s", line)
    ]
    assert offending == []
