"""Sphinx configuration: MyST Markdown pages, autodoc for the Python API (docs/api.md).

Build: `sphinx-build -W -b html docs docs/_build/html` (test/test_docs.py runs it and fails on any warning)."""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

project = "dytrack_ros"
author = "dytrack_ros contributors"
extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_heading_anchors = 3
autodoc_mock_imports = ["torch", "tensorrt", "openvino", "rclpy"]
autodoc_member_order = "bysource"
html_theme = "alabaster"
