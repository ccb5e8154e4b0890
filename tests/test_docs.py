"""The README stays a short user guide, and every relative link in the documentation resolves."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 250
PAGES = [
    ROOT / "README.md",
    ROOT / "benchmarks" / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces -> '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _links(text: str) -> list[str]:
    """Relative link targets of Markdown links and HTML ``src`` attributes outside code blocks."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    found = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r'src="([^"]+)"', text)
    return [t for t in found if not re.match(r"[a-z]+:", t)]


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines; keep it a user guide of at most {README_MAX_LINES} lines "
        "and put measurements and history under docs/"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for link in _links(page.read_text()):
        path, _, anchor = link.partition("#")
        target = (page.parent / path) if path else page
        if not target.exists():
            broken.append(link)
        elif anchor:
            headings = re.findall(r"^#+ (.*)$", target.read_text(), flags=re.M)
            if anchor not in {_anchor(h) for h in headings}:
                broken.append(link)
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_anchor_rule():
    assert _anchor("Why direction comes last") == "why-direction-comes-last"
    assert _anchor("Pixel U-Net against latent DiT") == "pixel-u-net-against-latent-dit"
    assert _links("see [a](docs/a.md) and [b](https://x.org) ```[c](no.md)```") == ["docs/a.md"]
