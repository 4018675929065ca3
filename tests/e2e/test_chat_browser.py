"""The chat in a real browser: Debian's chromium driven by Playwright (`executable_path`, no browser download)
against `quorum chat`.

Logs in with the password form (user admin, the API key as password), asks for the portfolio, pauses trading with
the confirmation button and saves a screenshot under the test's output. With QUORUM_UPDATE_SCREENSHOTS=1 the
screenshot is also copied to docs/images/chat.png (the README's). Under CI=true a missing chromium fails.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, pool, text

from tests.ci_strict import require_or_skip
from tests.e2e.chat_server import API_KEY, REPO, ChatServer, own_database, running_chat
from tests.support.browser import chromium

pytestmark = [pytest.mark.slow, pytest.mark.integration]
SCREENSHOT = REPO / "docs" / "images" / "chat.png"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def chat(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    with own_database(pg_url) as db, running_chat(db, tmp_path_factory.mktemp("chat-browser")) as server:
        yield server


def paused_by(database_url: str) -> list[str]:
    engine = create_engine(database_url.replace("+asyncpg", "+psycopg"), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT payload->>'by' FROM events WHERE type = 'trading_paused'"))
                        .scalars())
    finally:
        engine.dispose()


async def test_log_in_ask_for_the_portfolio_and_pause_trading_in_chromium(chat: ChatServer, tmp_path: Path) -> None:
    executable = chromium()
    require_or_skip(executable is not None and executable.exists(), "chromium is not installed "
                    "(`apt-get install -y chromium`; `make test` installs it when it can)")
    assert executable is not None
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(executable), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1060})
            page.set_default_timeout(TIMEOUT_MS)
            connected = asyncio.Event()
            page.on("websocket", lambda ws: connected.set() if "/ws/socket.io" in ws.url else None)

            await page.goto(chat.url)
            await page.fill("#email", "admin")
            await page.fill("#password", "not the key")
            await page.click("button[type=submit]")
            await page.get_by_text("Unable to sign in").wait_for()
            assert not connected.is_set()

            await page.fill("#password", API_KEY)
            await page.click("button[type=submit]")
            async with asyncio.timeout(TIMEOUT_MS / 1000):
                await connected.wait()                            # the socket is up: typing now is not lost
            await page.wait_for_selector("#starter-show-me-the-portfolio")

            await page.fill("#chat-input", "show me the portfolio")
            await page.press("#chat-input", "Enter")
            await page.get_by_text("Used portfolio").wait_for()
            await page.get_by_text("Open orders").first.wait_for()

            await page.fill("#chat-input", "pause trading")
            await page.press("#chat-input", "Enter")
            confirm = page.get_by_role("button", name="Confirm")
            await confirm.wait_for()
            assert await page.get_by_role("button", name="Cancel").is_visible()
            assert paused_by(chat.database_url) == []
            await confirm.click()
            await page.get_by_text("trading paused by admin").wait_for()

            shot = tmp_path / "chat.png"
            await page.screenshot(path=str(shot))
        finally:
            await browser.close()

    assert paused_by(chat.database_url) == ["admin"]
    assert shot.stat().st_size > 10_000
    if os.environ.get("QUORUM_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
