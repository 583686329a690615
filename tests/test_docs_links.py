"""Every link of the README and of docs/ leads somewhere: the file exists, and so does the heading it names.

The README is the page a newcomer reads first and sends them one hop away into docs/; a link that
broke when a section moved would strand them.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def headings(page: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings (code blocks' `#` lines are not headings)."""
    anchors, fenced = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"^#+ (.*)", line)):
            anchors.add(re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-"))
    return anchors


def local_links(page: Path) -> list[str]:
    return [link for link in LINK.findall(page.read_text()) if not re.match(r"^[a-z]+:", link)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_local_link_resolves(page):
    broken = []
    for link in local_links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in headings(target):
            broken.append(f"{link}: no such heading")
    assert not broken, f"{page.name}: {broken}"


def test_the_readme_links_every_page_of_docs():
    linked = {(ROOT / link.partition("#")[0]).resolve() for link in local_links(ROOT / "README.md")}
    assert not [page.name for page in PAGES[1:] if page not in linked]


def test_the_readme_stays_a_page_to_read_first():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300
