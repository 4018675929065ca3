"""The backtest tearsheet in a real browser: a short backtest on the synthetic market writes report.html, and
Debian's chromium (Playwright, `executable_path`) opens it from disk with nothing else reachable.

Every chart must have rendered (non-zero size; every <img> decoded), every section must be there, the page must
ask for nothing outside its own file, and percentages must read as percentages. A full-page screenshot is saved
under the test's output. Under CI=true a missing chromium fails."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from adapters.reports.backtest_report import write_report
from adapters.reports.tearsheet_format import pct
from tests.ci_strict import require_or_skip
from tests.support.browser import CHROMIUM_ARGS, MISSING, chromium
from tests.support.world import make_world

pytestmark = [pytest.mark.slow, pytest.mark.integration]
SECTIONS = {"equity": "Equity against the benchmarks", "performance": "Performance", "drawdown": "Drawdown",
            "monthly": "Monthly returns", "rolling-sharpe": "Rolling Sharpe", "symbols": "Results per symbol",
            "exits": "Exit reasons", "costs": "Costs", "breaker": "Circuit breaker",
            "honesty": "Dividends and survivorship", "settings": "Settings used"}
CHARTS = ("equity", "drawdown", "rolling-sharpe")
TIMEOUT_MS = 30_000


async def _report(directory: Path) -> dict:  # type: ignore[type-arg]
    world = await make_world(start=date(2024, 1, 2), end=date(2024, 4, 30), n=15, seed=11)
    result = await world.app.runner.run(run_id="browser", start=date(2024, 1, 2), end=date(2024, 4, 30),
                                        symbols=world.app.symbols)
    assert result.round_trips, "the period should close trades"
    return write_report(result, directory, world.settings.model_dump(mode="json"))


async def test_the_tearsheet_renders_every_chart_and_section_offline_in_chromium(tmp_path: Path) -> None:
    executable = chromium()
    require_or_skip(executable is not None and executable.exists(), MISSING)
    assert executable is not None
    summary = await _report(tmp_path / "report")
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["run_id"] == "browser"
    from playwright.async_api import async_playwright

    requested: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            page.on("request", lambda r: requested.append(r.url))
            await page.goto((tmp_path / "report" / "report.html").as_uri(), wait_until="load")
            sizes = await page.eval_on_selector_all(
                "figure.chart svg", "els => els.map(e => [e.closest('figure').dataset.chart, "
                "e.getBoundingClientRect().width, e.getBoundingClientRect().height])")
            images = await page.eval_on_selector_all(
                "img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth, e.naturalHeight])")
            headings = await page.eval_on_selector_all("h2[id]", "els => els.map(e => [e.id, e.textContent])")
            card = await page.inner_text(".cards .card:first-child .value")
            monthly_cells = await page.locator("table.monthly tbody td.pos, table.monthly tbody td.neg").count()
            symbol_rows = await page.locator("#symbols + table tbody tr").count()
            shot = tmp_path / "report.png"
            await page.screenshot(path=str(shot), full_page=True)
        finally:
            await browser.close()

    assert [s[0] for s in sizes] == list(CHARTS)
    for name, width, height in sizes:
        assert width > 600 and height > 150, f"chart {name} did not render: {width}x{height}"
    for alt, complete, width, height in images:
        assert complete and width > 0 and height > 0, f"image {alt} did not decode"
    assert set(SECTIONS.items()) <= {(i, t.strip()) for i, t in headings}
    assert [u for u in requested if not u.startswith("file://")] == [], "the report must open offline"
    assert card == pct(summary["total_return"], signed=True) and card.endswith("%")
    assert monthly_cells >= 4, "January to April"
    assert symbol_rows >= 2
    assert shot.stat().st_size > 50_000
