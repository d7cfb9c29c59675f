"""The READMEs point at things that exist: in-page links at headings, paths at files."""

import re
import unicodedata
from pathlib import Path

import pytest
from support import REPO_ROOT

READMES = [REPO_ROOT / "README.md", REPO_ROOT / "bench" / "README.md"]
TOP_LEVEL = ("API/", "jupyter/", "data/", "Docker/", "tests/", "bench/", "docs/", ".ci/")
CODE_SPAN = re.compile(r"`([^`\s]+)`")
LOCAL_LINK = re.compile(r"\]\(([^)\s]+)\)")
# Created by the user or by a command the README gives (all git-ignored).
CREATED_AT_RUN_TIME = {
    "Docker/.env",
    "bench/results",
    "bench/results/latest.md",
    "bench/results/logs",
}


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = unicodedata.normalize("NFC", heading.strip().lower())
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def prose(readme: Path) -> str:
    """The README without its fenced code blocks (their '#' lines are not headings)."""
    return re.sub(r"^```.*?^```", "", readme.read_text(), flags=re.S | re.M)


def anchors(readme: Path) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", prose(readme), flags=re.M)
    return {github_anchor(heading) for heading in headings}


@pytest.mark.parametrize("readme", READMES, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_links_lead_to_headings_and_files_that_exist(readme: Path):
    broken = []
    for target in LOCAL_LINK.findall(prose(readme)):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        missing_file = bool(path) and not (readme.parent / path).exists()
        missing_heading = not path and anchor not in anchors(readme)
        if missing_file or missing_heading:
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("readme", READMES, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_paths_named_in_the_text_exist(readme: Path):
    named = {
        span.rstrip("/.,:")
        for span in CODE_SPAN.findall(prose(readme))
        if span.startswith(TOP_LEVEL) and not any(ch in span for ch in "*{}<>$")
    }
    assert named, "the README names no repository path at all"
    missing = sorted(p for p in named - CREATED_AT_RUN_TIME if not (REPO_ROOT / p).exists())
    assert missing == []
