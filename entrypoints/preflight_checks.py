"""The concrete checks of `quorum preflight`, built from settings and the container.

Blocking work (starting the embedded server, loading the embedding model, building the
calendar) runs in daemon threads, so a check that overruns its budget is abandoned
without keeping the process alive. Every failure carries a hint naming exactly what
to set or run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from pydantic import BaseModel

from adapters.postgres import migrate
from application.memory_reembed import check_stored_models
from application.preflight import Check, CheckResult, failed, passed, skipped
from domain.embedding_models import REEMBED_COMMAND
from domain.errors import (
    BrokerAuthError,
    BrokerError,
    ConfigurationError,
    DimensionMismatchError,
    EmbeddingModelMismatchError,
    LiveTradingRefusedError,
    LLMError,
)
from domain.ports.clock import Clock
from domain.ports.llm import AgentName, LLMRequest, Message
from entrypoints.container import Container
from entrypoints.settings import LIVE_TRADING_ACK, Settings

T = TypeVar("T")
AGENTS = ("signal", "risk", "validator", "picker")
LLM_PING_TIMEOUT_S = 15.0
UPGRADE = "run `quorum db upgrade`"
ALPACA_KEYS = "set QUORUM_BROKER__ALPACA_API_KEY and QUORUM_BROKER__ALPACA_SECRET_KEY"
LIVE_ACK = (f"set QUORUM_LIVE_TRADING={LIVE_TRADING_ACK} only if you mean to trade real money; "
            "otherwise set QUORUM_BROKER__PAPER=true")
_KEY_SETTINGS = {"openai": "QUORUM_LLM__OPENAI_API_KEY", "anthropic": "QUORUM_LLM__ANTHROPIC_API_KEY",
                 "gemini": "QUORUM_LLM__GEMINI_API_KEY"}


class PreflightPing(BaseModel):
    """The whole answer the LLM check asks for: {"ok": true}."""

    ok: bool


def in_daemon_thread(fn: Callable[[], T]) -> asyncio.Future[T]:
    """Run blocking `fn` in a daemon thread; a future for its result that does not keep the process alive."""
    done: concurrent.futures.Future[T] = concurrent.futures.Future()

    def work() -> None:
        if done.set_running_or_notify_cancel():
            try:
                done.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed over to the awaiting check
                done.set_exception(exc)

    threading.Thread(target=work, name="preflight-check", daemon=True).start()
    return asyncio.wrap_future(done)


class _Blocked(Exception):
    """A check cannot run because the one it depends on failed."""


@dataclass(frozen=True)
class _DbProbe:
    url: str
    description: str
    embedded: bool
    status: migrate.DatabaseStatus


class PreflightChecks:
    """The checks for one configuration; `checks()` lists them in their fixed order.

    Args:
        settings: the loaded settings.
        container: the live container (database URL, embedding model).
        clock: the wall clock, for the market calendar check.
    """

    def __init__(self, settings: Settings, container: Container, *, clock: Clock | None = None) -> None:
        self._settings = settings
        self._container = container
        self._clock = clock or container.system_clock()
        self._db: asyncio.Future[_DbProbe] | None = None
        self._llm_results: dict[str, tuple[str, CheckResult]] = {}

    def checks(self) -> list[tuple[str, Check]]:
        """(name, check) pairs, in the order they run."""
        items: list[tuple[str, Check]] = [
            ("settings", self.settings_loaded), ("database", self.database), ("migrations", self.migrations),
            ("vector_extension", self.vector_extension), ("embeddings", self.embeddings), ("broker", self.broker),
        ]
        items += [(f"llm:{agent}", partial(self.llm, agent)) for agent in AGENTS]
        return [*items, ("redis", self.redis), ("calendar", self.calendar)]

    async def settings_loaded(self) -> CheckResult:
        """Settings parsed (a bad one stops `quorum preflight` before any check)."""
        s = self._settings
        return passed(f"loaded (env {s.env}, broker {s.broker.provider}, "
                      f"{'DATABASE_URL' if s.effective_database_url else 'embedded database'})")

    def _probe_database(self) -> _DbProbe:
        os.environ.setdefault("PGCONNECT_TIMEOUT", "10")
        url, description = self._container.database()
        return _DbProbe(url, description, not self._settings.effective_database_url, migrate.status(url))

    async def _database_probe(self) -> _DbProbe:
        if self._db is None:
            self._db = in_daemon_thread(self._probe_database)
        elif not self._db.done() or self._db.cancelled():
            raise _Blocked("the database check did not finish")
        elif self._db.exception() is not None:
            raise _Blocked("the database is not reachable (see the database check)")
        return await self._db

    async def database(self) -> CheckResult:
        """Resolve the database (starting the embedded server by default) and connect."""
        try:
            probe = await self._database_probe()
        except ValueError as exc:
            return failed(str(exc), "set DATABASE_URL to a postgresql://user:password@host:5432/db URL")
        except Exception as exc:  # noqa: BLE001 - every connection failure is reported the same way
            if self._settings.effective_database_url:
                return failed(f"cannot connect: {type(exc).__name__}: {exc}",
                              "check that the server in DATABASE_URL is running and that its host, port, user, "
                              "password and database name are right")
            return failed(f"cannot start or reach the embedded server: {type(exc).__name__}: {exc}",
                          f"run `quorum db stop` and retry; if it persists, move "
                          f"{self._settings.database.embedded_dir} aside or set DATABASE_URL")
        return passed(f"{probe.description}, PostgreSQL {probe.status.server_version}")

    async def migrations(self) -> CheckResult:
        """Every migration applied (`migrate.status`)."""
        try:
            probe = await self._database_probe()
        except _Blocked as exc:
            return failed(str(exc), "fix the database check first")
        st = probe.status
        if st.at_head:
            return passed(f"at head ({st.head_revision})")
        if st.current_revision is None:
            return failed(f"no migrations applied (head is {st.head_revision})", UPGRADE)
        if st.current_revision in migrate.revisions(probe.url):
            return failed(f"at {st.current_revision}, head is {st.head_revision}", UPGRADE)
        return failed(f"at {st.current_revision}, a revision this version of Quorum does not know",
                      "install the Quorum version that migrated this database, or point DATABASE_URL elsewhere")

    async def vector_extension(self) -> CheckResult:
        """The pgvector extension is installed in the database."""
        try:
            probe = await self._database_probe()
        except _Blocked as exc:
            return failed(str(exc), "fix the database check first")
        if probe.status.vector_version:
            return passed(f"pgvector {probe.status.vector_version}")
        extra = "" if probe.embedded else " (on your own server, install pgvector first: pgvector/pgvector image)"
        return failed("the vector extension is not installed", UPGRADE + extra)

    def _load_embedder(self) -> tuple[str, int]:
        embedder: Any = self._container.embedder()
        vectors = embedder.embed(["preflight check"])
        return str(getattr(embedder, "model_name", type(embedder).__name__)), int(vectors.shape[1])

    async def embeddings(self) -> CheckResult:
        """The configured embedding model loads, its vectors have the configured dimension, and it made every stored
        vector."""
        e = self._settings.embeddings
        try:
            model, dimension = await in_daemon_thread(self._load_embedder)
        except DimensionMismatchError as exc:
            return failed(str(exc), f"set QUORUM_EMBEDDINGS__MODEL to a model with {exc.expected} dimensions "
                                    f"(the memory tables store {exc.expected})")
        except ConfigurationError as exc:
            return failed(str(exc), "install the ml extra: `pip install -e '.[ml]'`, or set QUORUM_EMBEDDINGS__MODEL "
                                    "to a model that is here")
        if dimension != e.dimension:
            return failed(f"{model} gives {dimension} dimensions, expected {e.dimension}",
                          f"set QUORUM_EMBEDDINGS__MODEL to a model with {e.dimension} dimensions")
        loaded = f"{model} loaded ({dimension} dimensions)"
        try:
            probe = await self._database_probe()
        except Exception:  # noqa: BLE001 - the database check says what is wrong
            return passed(f"{loaded}; stored vectors not checked (see the database check)")
        if not probe.status.at_head:
            return passed(f"{loaded}; stored vectors not checked (see the migrations check)")
        try:
            await check_stored_models(self._container.embedding_store(), model)
        except EmbeddingModelMismatchError as exc:
            return failed(str(exc), f"run `{REEMBED_COMMAND}`")
        return passed(f"{loaded}; it made every stored vector")

    async def broker(self) -> CheckResult:
        """Alpaca: the account answers with these keys in the configured paper/live mode. Sim: always ready."""
        s, b = self._settings, self._settings.broker
        if b.provider == "sim":
            return passed(f"simulated paper broker (in memory, {s.risk.starting_capital} USD); no keys needed")
        if b.alpaca_api_key is None or b.alpaca_secret_key is None:
            return failed("QUORUM_BROKER__PROVIDER=alpaca but the Alpaca keys are not set", ALPACA_KEYS)
        key = b.alpaca_api_key.get_secret_value()
        mode = "paper" if b.paper else "live"
        if key[:2] in ("PK", "AK") and (key[:2] == "PK") != b.paper:
            kind = "paper" if key[:2] == "PK" else "live"
            return failed(f"the API key looks like a {kind} key ({key[:2]}...) but QUORUM_BROKER__PAPER="
                          f"{str(b.paper).lower()} asks for {mode} trading",
                          f"set QUORUM_BROKER__PAPER={str(kind == 'paper').lower()} or use {mode} keys")
        try:
            probe = self._container.alpaca_probe()
        except LiveTradingRefusedError:
            return failed("QUORUM_BROKER__PAPER=false asks for live trading without the acknowledgement", LIVE_ACK)
        except ConfigurationError as exc:
            return failed(str(exc), "remove QUORUM_BROKER__TRADING_URL or set QUORUM_BROKER__PAPER to match it")
        url = probe.trading_url
        async with probe as alpaca:
            try:
                account = await alpaca.account()
            except BrokerAuthError:
                return failed(f"Alpaca {mode} API at {url} rejected the keys (401)",
                              f"{ALPACA_KEYS} to valid {mode} keys; paper keys work only with "
                              "QUORUM_BROKER__PAPER=true, live keys only with QUORUM_BROKER__PAPER=false")
            except BrokerError as exc:
                return failed(f"{type(exc).__name__}: {exc}",
                              f"check that {url} is reachable (QUORUM_BROKER__TRADING_URL overrides it)")
        found = (f"{mode} account at {url} (QUORUM_BROKER__PAPER={str(b.paper).lower()}): status {account.status}, "
                 f"equity {account.equity} {account.currency}, buying power {account.buying_power}")
        if account.trading_blocked:
            return failed(found + "; trading is blocked", "resolve the block in the Alpaca dashboard")
        return passed(found + ("; REAL MONEY" if not b.paper else ""))

    async def llm(self, agent: str) -> CheckResult:
        """One tiny call to the agent's model (once per distinct model); the offline policy needs none."""
        s = self._settings.llm
        model: str = getattr(s, f"{agent}_model")
        if model == "offline":
            return passed("offline policy (no key needed)")
        if model in self._llm_results:
            first, result = self._llm_results[model]
            return CheckResult("", result.ok, f"same model as the {first} agent: {result.detail}", result.hint)
        result = await self._ping(agent, model)
        self._llm_results[model] = (agent, result)
        return result

    async def _ping(self, agent: str, model: str) -> CheckResult:
        s = self._settings.llm
        provider = model.split("/", 1)[0]
        key_setting = _KEY_SETTINGS.get(provider, f"{provider.upper()}_API_KEY")
        if s.replay_dir is not None and not s.record:
            if s.replay_dir.is_dir():
                return passed(f"{model} replayed from {s.replay_dir} (no calls)")
            return failed(f"QUORUM_LLM__REPLAY_DIR={s.replay_dir} does not exist",
                          "set QUORUM_LLM__REPLAY_DIR to a directory of recordings, or unset it")
        await in_daemon_thread(partial(importlib.import_module, "litellm"))  # seconds, kept out of the latency
        lite = self._container.llm_probe(agent, model, LLM_PING_TIMEOUT_S)
        request = LLMRequest(agent=cast(AgentName, agent), output_schema=PreflightPing, context=PreflightPing(ok=True),
                             messages=(Message("system", "You are a connectivity check."),
                                       Message("user", 'Reply with {"ok": true}.')), as_of=self._clock.now())
        try:
            decision = await lite.complete(request)
        except LLMError as exc:
            text = str(exc)
            if any(w in text.lower() for w in ("401", "authentication", "api key", "api_key", "credentials")):
                hint = f"set {key_setting} to a valid key, or QUORUM_LLM__{agent.upper()}_MODEL=offline"
            elif any(w in text for w in ("Connection", "Timeout", "timed out")):
                hint = f"check that the provider is reachable (QUORUM_LLM__API_BASE={s.api_base or 'unset'})"
            else:
                hint = f"check QUORUM_LLM__{agent.upper()}_MODEL={model} and {key_setting}"
            return failed(text, hint)
        u = decision.usage
        cost = f"${u.cost_usd:.6f}" if u.cost_known else "cost unknown (not in litellm's cost map)"
        return passed(f"{model} answered in {u.latency_ms:.0f} ms, {cost}, "
                      f"{u.prompt_tokens}+{u.completion_tokens} tokens")

    async def redis(self) -> CheckResult:
        """PING the Redis of QUORUM_REDIS_URL / REDIS_URL; skipped when none is set."""
        url = self._settings.redis_url
        if not url:
            return skipped("QUORUM_REDIS_URL / REDIS_URL not set: jobs run in-process")
        import redis.asyncio as aioredis
        from redis.exceptions import AuthenticationError, RedisError

        parts = urlsplit(url)
        where = f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path}"
        fix = "start Redis (`redis-server`) or fix QUORUM_REDIS_URL; unset it to run jobs in-process"
        try:
            client = aioredis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        except ValueError as exc:
            return failed(f"QUORUM_REDIS_URL is not a Redis URL: {exc}", "set QUORUM_REDIS_URL=redis://host:6379/0")
        try:
            await client.ping()
            version = (await client.info("server")).get("redis_version", "?")
        except AuthenticationError as exc:
            return failed(f"Redis at {where} refused the credentials: {exc}",
                          "fix the password in QUORUM_REDIS_URL (redis://:PASSWORD@host:6379/0)")
        except (RedisError, OSError) as exc:
            return failed(f"cannot reach Redis at {where}: {type(exc).__name__}: {exc}", fix)
        finally:
            await client.aclose()  # type: ignore[attr-defined]
        return passed(f"Redis {version} at {where} answered PING")

    async def calendar(self) -> CheckResult:
        """The NYSE calendar loads; whether the market is open now and the next session."""
        now = self._clock.now()
        calendar = self._container.calendar()
        ny = calendar.tz
        try:
            is_open = await in_daemon_thread(partial(calendar.is_open, now))
        except (ImportError, ValueError) as exc:
            return failed(f"the NYSE calendar did not load: {type(exc).__name__}: {exc}",
                          "reinstall the calendar data: `pip install -e .` (exchange-calendars)")
        today = now.astimezone(ny).date()

        def et(at: datetime) -> str:
            return at.astimezone(ny).strftime("%Y-%m-%d %H:%M ET")

        if is_open:
            return passed(f"NYSE open now, closes {et(calendar.session_close(today))}")
        day = today if calendar.is_session(today) and now < calendar.session_open(today) \
            else calendar.next_session(today)
        return passed(f"NYSE closed now; next session opens {et(calendar.session_open(day))}, "
                      f"closes {et(calendar.session_close(day))}")
