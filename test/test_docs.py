"""The documentation: docs/ builds with Sphinx + MyST without a single warning (a broken link between pages, a missing
heading anchor, an autodoc import that fails, a page left out of the toctree all fail here)."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT


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
