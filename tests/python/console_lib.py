"""Helpers for the web console's end-to-end tests: Debian's Chromium driven by
Playwright (never Playwright's own browser downloads), on a fresh profile, with the
flags that keep it from reaching for the internet this machine does not have."""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = os.environ.get("ROENTGEN_CHROMIUM", "/usr/bin/chromium")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

REPO_ROOT = Path(__file__).resolve().parents[2]


def launch(playwright, profile_dir: Path, width: int = 1400, height: int = 900):
    """A headless Chromium context on a fresh user-data-dir."""
    return playwright.chromium.launch_persistent_context(
        str(profile_dir),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": width, "height": height},
    )


def screenshot(page, name: str, tmp_dir: Path) -> Path:
    """Save a screenshot of `page` as <name>.png: under $ROENTGEN_SCREENSHOTS_DIR when
    set (scripts/console-screenshots points it at docs/images), else in `tmp_dir`."""
    out = Path(os.environ.get("ROENTGEN_SCREENSHOTS_DIR") or tmp_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
