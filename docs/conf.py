"""Sphinx configuration of the wagtail-bookings-vc documentation.

The pages are Markdown, read by MyST. Build them with ``scripts/build-docs``, which
turns every warning (a broken link, a missing page or image, a page left out of the
navigation) into an error.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

project = "wagtail-bookings-vc"
author = "wagtail-bookings-vc contributors"
copyright = "wagtail-bookings-vc contributors"
release = re.search(
    r'^__version__ = "([^"]+)"', (ROOT / "wagtail_bookings_vc" / "__init__.py").read_text(), re.M
).group(1)
version = release

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "screenshots"]

# Links between pages are plain Markdown links (`[Emails](emails.md#reminders)`), so
# the pages read the same on a code host; headings get GitHub-style anchors.
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence", "deflist"]

html_theme = "furo"
html_title = f"wagtail-bookings-vc {release}"
html_show_sourcelink = False
html_copy_source = False
