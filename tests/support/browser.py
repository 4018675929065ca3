"""The chromium the browser tests drive: Debian's (`apt-get install chromium`) through Playwright's
`executable_path`, so no browser is downloaded."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu"]
MISSING = "chromium is not installed (`apt-get install -y chromium`; `make test` installs it when it can)"


def chromium() -> Path | None:
    """QUORUM_CHROMIUM, Debian's /usr/bin/chromium, or a chromium on PATH (Ubuntu's chromium-browser)."""
    named = os.environ.get("QUORUM_CHROMIUM")
    if named:
        return Path(named)
    if DEBIAN_CHROMIUM.exists():
        return DEBIAN_CHROMIUM
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return Path(found) if found else None
