"""GET /api/paper through Litestar's test client on the in-memory container: 404 before a campaign, then the
campaign measured now; it needs the API key like every other read."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from application.paper.campaign import start_campaign
from application.paper.criteria import CRITERIA
from tests.e2e.test_api import API_KEY, OPEN, assert_error, build_api, open_client


async def test_the_paper_campaign_is_read_with_its_criteria() -> None:
    api = await build_api()
    async with open_client(api.app, key=API_KEY) as client:
        assert_error(await client.get("/api/paper"), 404)
        broker: Any = api.container.broker()
        await start_campaign(api.services.uow_factory, broker, api.services.scope, name="june", days=10,
                             settings_snapshot={"cycle_minutes": 30}, as_of=OPEN - timedelta(days=1))
        body = (await client.get("/api/paper")).json()
        assert (body["name"], body["sessions"], body["target_sessions"], body["met"]) == ("june", 1, 10, False)
        assert [k["name"] for k in body["criteria"]] == list(CRITERIA)
        assert {k["passed"] for k in body["criteria"]} <= {True, False, None}
        assert [c["name"] for c in body["campaigns"]] == ["june"]
        assert_error(await client.get("/api/paper", params={"name": "july"}), 404)
        assert_error(await client.get("/api/paper", params={"name": "bad;name"}), 400)
    async with open_client(api.app, host="203.0.113.9") as stranger:
        assert (await stranger.get("/api/paper")).status_code == 401
