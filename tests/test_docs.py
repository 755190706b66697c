"""The docs a newcomer reads: a short README that links every page, and no broken links."""

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
README_MAX_BYTES = 12_500
# Another change is rewriting identity and its page; until that page exists, a link to it is
# the one link allowed to point nowhere. Once docs/identity.md exists it is checked like any.
PAGES_BEING_WRITTEN = {DOCS / "identity.md"}

# [text](target) and [text](target "title"); images too. Targets in code spans are not links.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


def relative_links(page: Path) -> list[tuple[str, Path]]:
    """Every link of a markdown page to a file of the repository: (as written, resolved path).

    An anchor within the page itself (`#section`) comes back with the page as its path."""
    text = CODE.sub("", page.read_text(encoding="utf-8"))
    found = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # http(s), mailto, ...
        path = target.split("#", 1)[0]
        found.append((target, (page.parent / path).resolve() if path else page.resolve()))
    return found


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces
    become hyphens, and a repeated heading gets -1, -2, ..."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, flags=re.MULTILINE):
        words = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
        slug = "".join(c for c in words if c.isalnum() or c in " -_").replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def markdown_pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_readme_is_short():
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, (
        f"README.md is {size:,} bytes, over {README_MAX_BYTES:,}: move the detail into a page "
        "under docs/ and link it"
    )


def test_every_docs_page_is_linked_from_the_readme():
    linked = {path for _, path in relative_links(README)}
    # pages are the markdown files; images and other assets under docs/ are linked from them
    pages = sorted(p.resolve() for p in DOCS.rglob("*.md"))
    assert pages, "docs/ holds no page"
    missing = [p.relative_to(REPO_ROOT).as_posix() for p in pages if p not in linked]
    assert missing == [], f"README.md links no page {missing}: add them to 'Where to go next'"


def test_every_relative_link_points_at_a_file():
    broken = []
    for page in markdown_pages():
        for target, path in relative_links(page):
            if path in PAGES_BEING_WRITTEN and not path.exists():
                continue
            if not path.exists():
                broken.append(f"{page.relative_to(REPO_ROOT)}: ({target})")
            elif "#" in target and path.suffix == ".md":
                anchor = target.split("#", 1)[1]
                if anchor not in anchors(path):
                    broken.append(f"{page.relative_to(REPO_ROOT)}: ({target}) has no such heading")
    assert broken == [], f"links to files or headings that do not exist: {broken}"


def test_the_link_finder_sees_links_and_skips_code(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "See [landing](docs/landing.md#quarantine), [below](#notes) and "
        "[site](https://example.org).\n"
        "`[not a link](missing.md)`\n```\n[nor this](missing.md)\n```\n",
        encoding="utf-8",
    )
    assert relative_links(page) == [
        ("docs/landing.md#quarantine", (tmp_path / "docs" / "landing.md").resolve()),
        ("#notes", page.resolve()),
    ]


def test_anchors_are_the_ones_github_makes(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Feed contracts\n## `crm` → `crm.customers`\n## 1. Start from a clean warehouse\n"
        "```\n# not a heading\n```\n## Notes\n## Notes\n",
        encoding="utf-8",
    )
    assert anchors(page) == {
        "feed-contracts",
        "crm--crmcustomers",
        "1-start-from-a-clean-warehouse",
        "notes",
        "notes-1",
    }
