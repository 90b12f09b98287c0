"""Every relative link of the README and docs/*.md leads somewhere (a file, and the heading
its #anchor names), and every `make X` they name is a target of the Makefile."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest
from doc_pages import PAGES, ROOT, anchors, links, make_targets_named, makefile_targets

RELATIVE_LINKS = [
    pytest.param(page, target, id=f"{page.name}:{target}")
    for page in PAGES
    for target in links(page)
    if not target.startswith(("http://", "https://", "mailto:"))
]
NAMED_TARGETS = sorted(set().union(*(make_targets_named(page) for page in PAGES)))


def test_the_pages_have_links_and_name_targets():
    assert len(RELATIVE_LINKS) > 20
    assert {"serve", "test", "bench", "help", "e2e"} <= set(NAMED_TARGETS)


@pytest.mark.parametrize(("page", "target"), RELATIVE_LINKS)
def test_a_relative_link_resolves(page: Path, target: str):
    path, _, anchor = target.partition("#")
    resolved = (page.parent / unquote(path)).resolve() if path else page
    assert resolved.exists(), f"{page.name} links to {target}: no such file"
    assert resolved.is_relative_to(ROOT), f"{page.name} links outside the repository: {target}"
    if anchor and resolved.suffix == ".md":
        assert anchor in anchors(resolved), f"{page.name} links to {target}: no such heading"


@pytest.mark.parametrize("target", NAMED_TARGETS)
def test_a_named_make_target_exists(target: str):
    assert target in makefile_targets()
