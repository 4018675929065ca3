"""LangSmith tracing against a local LangSmith endpoint the test starts (tests/integration/langsmith_stub_server.py).

A real trading cycle runs through the "test" container with LANGSMITH_TRACING on and LANGSMITH_ENDPOINT pointed at
the stub: it arrives as ONE trace, the six stages its children, every agent call under the decide stage and every
LLM call under its agent call, with the cycle id, agent, provider, model, tokens, cost and latency the gateway
books. The API key goes to the server and never into a log, even when the server echoes it back. With tracing off
no request is made, langsmith is not even imported, and the cycles are the same.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import structlog

from adapters.calendar.nyse import NyseCalendar
from application.tracing import NULL_TRACER
from entrypoints.container import Container, build_container, close_container
from entrypoints.logging_setup import configure_logging
from entrypoints.settings import load_settings
from tests.integration.langsmith_stub_server import LangSmithStubServer

pytestmark = pytest.mark.integration

API_KEY = "lsv2_pt_TRACE-KEY-never-logged-4e1d"
CALENDAR = NyseCalendar()
DAY = date(2024, 3, 4)
"""Seed 5's first session: two signal chunks (concurrent), then risk and validator, three orders."""
STAGES = ["gate", "snapshot", "send_exits", "decide", "execute", "book_keeping"]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def container(*, tracing: bool, endpoint: str) -> Container:
    settings = load_settings(env="test", _env_file=None, langsmith_tracing=tracing, langsmith_endpoint=endpoint,
                             langsmith_api_key=API_KEY, langsmith_project="quorum-tests")
    return build_container(settings, "test", start=date(2024, 3, 1), end=date(2024, 3, 29), seed=5)


async def run_sessions(c: Container, days: list[date]) -> list[Any]:
    """The cycles of `days` (closing the container, which sends what the tracer holds)."""
    try:
        return [await c.runner().run_cycle(as_of=CALENDAR.session_open(d)) for d in days]
    finally:
        await close_container(c)


def metadata(run: dict[str, Any]) -> dict[str, Any]:
    return dict((run.get("extra") or {}).get("metadata") or {})


def ordered(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(runs, key=lambda r: str(r["dotted_order"]))


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Everything logged, at DEBUG (structlog, langsmith's and urllib3's loggers, the process's output)."""
    stream = io.StringIO()
    old_structlog = structlog.get_config()
    root = logging.getLogger()
    old_handlers, old_level = root.handlers[:], root.level
    configure_logging("DEBUG", stream=stream)
    noisy = {name: logging.getLogger(name).level for name in ("langsmith", "urllib3")}
    for name in noisy:
        logging.getLogger(name).setLevel(logging.DEBUG)
    root.addHandler(caplog.handler)

    def everything() -> str:
        out, err = capfd.readouterr()
        return "\n".join((stream.getvalue(), caplog.text, out, err))

    try:
        yield everything
    finally:
        structlog.configure(**old_structlog)
        root.handlers[:] = old_handlers
        root.setLevel(old_level)
        for name, level in noisy.items():
            logging.getLogger(name).setLevel(level)


async def test_a_cycle_is_one_trace_with_its_stages_agent_calls_and_llm_calls(logs: Any) -> None:
    with LangSmithStubServer() as server:
        c = container(tracing=True, endpoint=server.url)
        (result,) = await run_sessions(c, [DAY])
        async with c.uow_factory()() as uow:
            booked = [r for r in await uow.llm_calls.list(c.scope()) if r.cycle_id == result.cycle_id]
        runs = list(server.runs().values())
    assert result.status == "completed" and result.orders == 3

    (root,) = [r for r in runs if r.get("parent_run_id") is None]
    assert root["name"] == "cycle scheduled" and root["session_name"] == "quorum-tests"
    assert {r["trace_id"] for r in runs} == {root["id"]}  # one trace
    assert {k: metadata(root)[k] for k in ("cycle_id", "scope", "kind", "as_of")} == {
        "cycle_id": result.cycle_id, "scope": c.scope(), "kind": "scheduled", "as_of": "2024-03-04T14:30:00+00:00"}
    assert root["outputs"]["status"] == "completed" and root["outputs"]["orders"] == 3
    assert root.get("end_time") and root.get("error") is None

    children = ordered([r for r in runs if r.get("parent_run_id") == root["id"]])
    assert [r["name"] for r in children] == STAGES
    decide = children[STAGES.index("decide")]
    assert all(metadata(r)["cycle_id"] == result.cycle_id and r.get("end_time") for r in children)

    agents = [r for r in runs if r["name"].startswith("agent ")]
    llms = [r for r in runs if r["run_type"] == "llm"]
    assert Counter(r["name"] for r in agents) == {"agent signal": 2, "agent risk": 2, "agent validator": 2}
    assert all(r["parent_run_id"] == decide["id"] for r in agents)
    assert sorted(r["parent_run_id"] for r in llms) == sorted(r["id"] for r in agents)  # one LLM call under each
    agent_of = {r["id"]: metadata(r)["agent"] for r in agents}
    for agent in agents:
        m = metadata(agent)
        assert m["cycle_id"] == result.cycle_id and m["n_symbols"] == len(agent["inputs"]["symbols"]) > 0
    for llm in llms:
        m = metadata(llm)
        assert m["agent"] == agent_of[llm["parent_run_id"]] and m["cycle_id"] == result.cycle_id
        assert m["latency_ms"] >= 0 and llm["outputs"]["usage_metadata"]["total_tokens"] == (
            m["prompt_tokens"] + m["completion_tokens"])
        assert llm["inputs"]["messages"][0]["role"] == "system"
    traced = Counter((metadata(r)["agent"], metadata(r)["provider"], metadata(r)["model"], metadata(r)["prompt_tokens"],
                      metadata(r)["completion_tokens"], metadata(r)["cost_usd"]) for r in llms)
    assert traced == Counter((r.agent, r.provider, r.model, r.prompt_tokens, r.completion_tokens, r.cost_usd)
                             for r in booked)  # what the trace says is what the gateway booked

    writes = server.writes()
    assert writes and all(w.headers.get("x-api-key") == API_KEY for w in writes)  # the key was used...
    assert API_KEY not in logs()  # ...and never logged


async def test_a_failed_cycle_is_a_failed_trace_ending_at_the_stage_that_raised() -> None:
    with LangSmithStubServer() as server:
        c = container(tracing=True, endpoint=server.url)

        async def down(*_a: Any, **_k: Any) -> Any:
            raise RuntimeError("broker down")

        c.broker().open_orders = down
        (result,) = await run_sessions(c, [DAY])
        runs = list(server.runs().values())
    assert result.status == "failed"
    (root,) = [r for r in runs if r.get("parent_run_id") is None]
    assert root["error"] == result.error == "RuntimeError: broker down"
    assert root["outputs"]["status"] == "failed"
    gate, snapshot = ordered([r for r in runs if r.get("parent_run_id") == root["id"]])
    assert (gate["name"], gate.get("error")) == ("gate", None)
    assert snapshot["name"] == "snapshot" and snapshot["error"].startswith("RuntimeError('broker down')")


async def test_a_server_that_echoes_the_key_back_gets_it_masked_in_the_log_and_trading_goes_on(logs: Any) -> None:
    with LangSmithStubServer(refuse=True) as server:
        (result,) = await run_sessions(container(tracing=True, endpoint=server.url), [DAY])
        assert server.writes(), "nothing was sent: this test would prove nothing"
    assert result.status == "completed" and result.orders == 3
    text = logs()
    assert "is not allowed to write to this workspace" in text, "the refusal was not logged: nothing to mask"
    assert API_KEY not in text and "API key *** is not allowed" in text


async def test_with_tracing_off_nothing_is_sent_and_the_cycles_are_the_same() -> None:
    days = CALENDAR.sessions(DAY, date(2024, 3, 8))
    with LangSmithStubServer() as on, LangSmithStubServer() as off:
        untraced = container(tracing=False, endpoint=off.url)
        assert untraced.tracer() is NULL_TRACER
        plain = await run_sessions(untraced, days)
        traced = await run_sessions(container(tracing=True, endpoint=on.url), days)
        assert off.requests == []
        assert len([r for r in on.runs().values() if r.get("parent_run_id") is None]) == len(days)

    def summary(results: list[Any]) -> list[Any]:
        return [(r.cycle_id, r.status, r.orders, r.shadow, str(r.equity), [o.to_json() for o in r.outcomes])
                for r in results]

    assert sum(r.orders for r in plain) > 0
    assert summary(traced) == summary(plain)


OFF_SCRIPT = textwrap.dedent("""
    import asyncio, json, sys
    from datetime import date
    from adapters.calendar.nyse import NyseCalendar
    from entrypoints.container import build_container, close_container
    from entrypoints.settings import load_settings

    async def main():
        c = build_container(load_settings(env="test", _env_file=None), "test", start=date(2024, 3, 1),
                            end=date(2024, 3, 29), seed=5)
        result = await c.runner().run_cycle(as_of=NyseCalendar().session_open(date(2024, 3, 4)))
        await close_container(c)
        print(json.dumps({"status": result.status, "orders": result.orders,
                          "langsmith": sorted(m for m in sys.modules if m.split(".")[0] == "langsmith")}))

    asyncio.run(main())
""")


def test_with_tracing_off_langsmith_is_not_even_imported() -> None:
    with LangSmithStubServer() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_", "QUORUM_"))}
        env.update(LANGSMITH_TRACING="false", LANGSMITH_ENDPOINT=server.url, LANGSMITH_API_KEY=API_KEY,
                   PYTHONPATH=REPO, QUORUM_NO_DOTENV="1")
        done = subprocess.run([sys.executable, "-c", OFF_SCRIPT], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert server.requests == []
    assert out == {"status": "completed", "orders": 3, "langsmith": []}
