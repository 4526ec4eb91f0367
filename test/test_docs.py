"""The documentation: docs/ builds with Sphinx + MyST without a single warning (a broken link between pages, a missing
heading anchor, an autodoc import that fails, a page left out of the toctree all fail here), and the README stays a
short page whose links into the repository resolve."""
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

README = os.path.join(ROOT, "README.md")


def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    run = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                          os.path.join(ROOT, "docs"), str(tmp_path / "html")],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    api = (tmp_path / "html" / "api.html").read_text()
    assert "dytrack_ros.runtime.build_tracker" in api and "DyTracker" in api    # the API pages come from docstrings
    assert (tmp_path / "html" / "_images" / "demo_montage.png").exists()


def github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_is_short_and_its_links_resolve():
    text = open(README).read()
    assert len(text.splitlines()) <= 220, "the README is the five-minute page: move detail into docs/"
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links
    for link in links:
        if re.match(r"^[a-z]+://", link):
            continue
        path, _, anchor = link.partition("#")
        target = os.path.join(ROOT, path)
        assert os.path.exists(target), link
        if anchor:
            headings = [ln.lstrip("#") for ln in open(target).read().splitlines() if ln.startswith("#")]
            assert anchor in {github_anchor(h) for h in headings}, link


def test_readme_links_every_docs_page():
    text = open(README).read()
    pages = sorted(f for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md") and f != "index.md")
    assert [p for p in pages if f"(docs/{p}" not in text] == []
