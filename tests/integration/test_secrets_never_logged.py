"""Secrets never reach a log line, an error message or a repr, even through failing calls.

Keys are loaded the way programs load them (environment -> settings -> `register_secrets`),
then used for real against local peers that refuse them: the Alpaca replay server (401),
the OpenAI stub server (401, echoing the key back like a careless provider), a database
URL whose server does not answer, and Redis refusing a password. Everything logged on the
way (structlog, stdlib loggers at DEBUG, litellm's own handler) is captured and searched.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import structlog
from pydantic import BaseModel

from adapters.alpaca import AlpacaConfig
from adapters.postgres import migrate
from domain.errors import BrokerAuthError, LLMError
from domain.ports.llm import LLMRequest, Message
from entrypoints.bootstrap import register_secrets
from entrypoints.container import build_container, close_container
from entrypoints.logging_setup import configure_logging
from entrypoints.preflight_checks import PreflightChecks
from entrypoints.settings import Settings, load_settings
from tests.integration.alpaca_replay_server import AlpacaReplayServer
from tests.integration.openai_stub_server import Behaviour, OpenAIStubServer

pytestmark = pytest.mark.integration

ALPACA_KEY = "PKLEAKCHECK7Q2W9E4R1"
ALPACA_SECRET = "alpaca-secret-NEVER-PRINTED-9f8e7d6c5b"
OPENAI_KEY = "sk-test-SECRET-never-printed-0a1b2c3d4e5f"
DB_PASSWORD = "db-pw-NEVER-PRINTED-5150"
REDIS_PASSWORD = "redis-pw-NEVER-PRINTED-7788"
SECRETS = (ALPACA_KEY, ALPACA_SECRET, OPENAI_KEY, DB_PASSWORD, REDIS_PASSWORD)
DEBUG_LOGGERS = ("httpx", "httpcore", "LiteLLM", "litellm", "asyncio", "redis")
log = structlog.get_logger("test_secrets")


class Ping(BaseModel):
    ok: bool


@dataclass
class Captured:
    stream: io.StringIO
    caplog: pytest.LogCaptureFixture
    capfd: pytest.CaptureFixture[str]

    def everything(self) -> str:
        out, err = self.capfd.readouterr()
        return "\n".join((self.stream.getvalue(), self.caplog.text, out, err))


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"secret {secret[:6]}... leaked into: {text[:2000]}"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> pytest.MonkeyPatch:
    """Only this test's settings: the developer's QUORUM_* variables and .env stay out."""
    for key in list(os.environ):
        if key.startswith("QUORUM_") or key in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path_factory.mktemp("secrets"))
    monkeypatch.setenv("DATABASE_URL", f"postgresql://quorum:{DB_PASSWORD}@127.0.0.1:1/quorum")
    monkeypatch.setenv("QUORUM_REDIS_URL", f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0")
    monkeypatch.setenv("QUORUM_BROKER__ALPACA_API_KEY", ALPACA_KEY)
    monkeypatch.setenv("QUORUM_BROKER__ALPACA_SECRET_KEY", ALPACA_SECRET)
    monkeypatch.setenv("QUORUM_LLM__OPENAI_API_KEY", OPENAI_KEY)
    return monkeypatch


def settings_from(env: pytest.MonkeyPatch, **variables: str) -> Settings:
    for key, value in variables.items():
        env.setenv(key, value)
    settings = load_settings()
    register_secrets(settings)
    return settings


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Iterator[Captured]:
    """structlog into a StringIO, every stdlib logger at DEBUG into caplog, and the process's stdout/stderr."""
    stream = io.StringIO()
    levels = {name: logging.getLogger(name).level for name in DEBUG_LOGGERS}
    old_structlog = structlog.get_config()
    root = logging.getLogger()
    old_handlers, old_level = root.handlers[:], root.level
    configure_logging("DEBUG", stream=stream)
    for name in DEBUG_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    root.addHandler(caplog.handler)
    try:
        yield Captured(stream, caplog, capfd)
    finally:
        structlog.configure(**old_structlog)
        root.handlers[:] = old_handlers
        root.setLevel(old_level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def test_settings_reprs_and_dumps_hide_every_key_and_password(env: pytest.MonkeyPatch) -> None:
    settings = settings_from(env)
    assert settings.broker.alpaca_secret_key is not None
    assert settings.broker.alpaca_secret_key.get_secret_value() == ALPACA_SECRET
    dumped = settings.model_dump_json()
    shown = (repr(settings.broker), repr(settings.llm), repr(settings.database), repr(settings.database_url), dumped,
             str(settings.llm), repr(AlpacaConfig.from_values(ALPACA_KEY, ALPACA_SECRET)))
    assert_no_secret(*(text.replace(REDIS_PASSWORD, "") for text in shown))


async def test_alpaca_401_logs_and_errors_carry_no_key(env: pytest.MonkeyPatch, captured: Captured) -> None:
    with AlpacaReplayServer(api_key="PKTHEREALKEY00000000", secret_key="the-real-secret") as server:
        settings = settings_from(env, QUORUM_BROKER__PROVIDER="alpaca", QUORUM_BROKER__TRADING_URL=server.url,
                                 QUORUM_BROKER__DATA_URL=server.url)
        container = build_container(settings, "live")
        broker = container.broker()
        try:
            with pytest.raises(BrokerAuthError) as info:
                await broker.account()
            log.exception("account_failed", config=AlpacaConfig.from_values(ALPACA_KEY, ALPACA_SECRET),
                          header=f"APCA-API-SECRET-KEY: {ALPACA_SECRET}")
            logging.getLogger("httpx").error("request failed with key %s", ALPACA_KEY, exc_info=info.value)
        finally:
            await close_container(container)
        (request,) = server.received("GET", "/v2/account")
        assert request.had_keys, "the keys were not even sent: the test would prove nothing"
    logs = captured.everything()
    assert "account_failed" in logs and "BrokerAuthError" in logs and "request failed with key ***" in logs
    assert_no_secret(logs, str(info.value), repr(info.value), repr(broker))


async def test_litellm_401_that_echoes_the_key_is_never_logged(env: pytest.MonkeyPatch, captured: Captured) -> None:
    with OpenAIStubServer('{"ok": true}') as stub:
        stub.script(Behaviour("unauthorized"))
        settings = settings_from(env, QUORUM_LLM__SIGNAL_MODEL="openai/gpt-4o-mini", QUORUM_LLM__API_BASE=stub.api_base,
                                 QUORUM_LLM__MAX_RETRIES="0", QUORUM_LLM__TIMEOUT_SECONDS="10")
        llm = build_container(settings, "test").llms()["signal"]
        request = LLMRequest(agent="signal", messages=(Message("user", 'Reply {"ok": true}'),), output_schema=Ping,
                             context=Ping(ok=True), as_of=datetime(2024, 3, 1, tzinfo=UTC))
        with pytest.raises(LLMError) as info:
            await llm.complete(request)
        log.error("llm_failed", error=info.value, exc_info=info.value)
        assert stub.requests[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"
        stub.script(Behaviour("unauthorized"))
        raw = await raw_litellm_error(stub.api_base)
    assert OPENAI_KEY in str(raw), "the stub no longer echoes the key: this test would prove nothing"
    log.error("litellm_raw_error", error=raw, exc_info=raw)
    logging.getLogger("LiteLLM").error("provider said: %s", raw, exc_info=raw)
    logs = captured.everything()
    assert "llm_failed" in logs and "llm.failed" in logs and "litellm_raw_error" in logs and "provider said" in logs
    assert_no_secret(logs, str(info.value), repr(info.value), repr(llm))


async def raw_litellm_error(api_base: str) -> BaseException:
    """The exception litellm itself raises for a 401 whose body echoes the key (before the adapter masks it)."""
    import litellm

    try:
        await litellm.acompletion(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                  api_base=api_base, api_key=OPENAI_KEY, max_retries=0, num_retries=0, timeout=10)
    except Exception as exc:
        return exc
    raise AssertionError("the stub answered a request it was told to refuse")


async def test_unreachable_database_url_never_shows_its_password(env: pytest.MonkeyPatch, captured: Captured) -> None:
    settings = settings_from(env)
    container = build_container(settings, "live")
    url, description = container.database()
    assert DB_PASSWORD in url  # the real URL is used to connect...
    errors: list[BaseException] = []
    for attempt in (lambda: migrate.status(url),):
        try:
            attempt()
        except Exception as exc:
            errors.append(exc)
            log.exception("database_unreachable", url=url, description=description)
    engine = container.engine()
    try:
        async with engine.connect():
            pass
    except Exception as exc:
        errors.append(exc)
        log.exception("engine_connect_failed", engine=engine)
        logging.getLogger("sqlalchemy.pool").error("connect failed: %s", url, exc_info=exc)
    finally:
        await engine.dispose()
    assert len(errors) == 2, "both connections should have failed (nothing listens on port 1)"
    probe = await PreflightChecks(settings, container).database()
    logs = captured.everything()
    assert "database_unreachable" in logs and "engine_connect_failed" in logs
    assert not probe.ok
    assert_no_secret(logs, description, repr(engine), probe.detail, probe.hint or "",
                     *(f"{e}\n{e!r}" for e in errors))


async def test_redis_refusing_the_password_never_shows_it(env: pytest.MonkeyPatch, captured: Captured) -> None:
    settings = settings_from(env)
    result = await PreflightChecks(settings, build_container(settings, "test")).redis()
    assert not result.ok, "Redis accepted a password it was never given, or the check did not run"
    assert result.hint is not None and "QUORUM_REDIS_URL" in result.hint
    log.warning("redis_failed", url=settings.redis_url, detail=result.detail)
    logs = captured.everything()
    assert "redis_failed" in logs
    assert_no_secret(logs, result.detail)
