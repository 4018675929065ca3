"""build_alert_service: channels and routes from settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.alerts import DiscordAlertChannel, LogAlertChannel, SesAlertChannel
from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from domain.errors import ConfigurationError
from domain.events import EventType, Severity
from domain.ports.alerts import Alert
from entrypoints.logging_setup import redact
from entrypoints.settings import AlertSettings, Settings
from entrypoints.wiring.alerts import build_alert_service, build_channels

WEBHOOK = "https://discord.com/api/webhooks/1/wiring-test-token"


def settings(**alerts: object) -> Settings:
    return Settings(alerts=AlertSettings(**alerts))  # type: ignore[arg-type]


def db_factory() -> InMemoryUnitOfWork:
    return InMemoryUnitOfWork(InMemoryDatabase(HashingEmbedder()))


def test_without_configuration_alerts_go_to_the_log() -> None:
    service = build_alert_service(settings(), db_factory, "live")
    assert service.channel_names == ["log"]
    assert isinstance(build_channels(AlertSettings())["log"], LogAlertChannel)


def test_discord_and_email_are_built_and_the_webhook_is_registered_as_a_secret() -> None:
    channels = build_channels(AlertSettings(discord_webhook_url=WEBHOOK, ses_sender="q@example.com",
                                            ses_recipients=["me@example.com"]))
    assert isinstance(channels["discord"], DiscordAlertChannel) and isinstance(channels["email"], SesAlertChannel)
    assert "log" not in channels
    assert redact(f"posting to {WEBHOOK}") == "posting to ***"


def test_routes_follow_the_minimum_severities_and_overrides() -> None:
    service = build_alert_service(
        settings(discord_webhook_url=WEBHOOK, ses_sender="q@example.com", ses_recipients="me@example.com",
                 email_min_severity="warning", routes={"daily_summary": ["email"]}), db_factory, "live")

    def route(t: EventType, s: Severity) -> tuple[str, ...]:
        return service.routes.channels_for(Alert(t.value, s, "t", "b", datetime(2024, 3, 4, tzinfo=UTC)))
    assert route(EventType.RECONCILIATION_DIFF, Severity.WARNING) == ("discord", "email")
    assert route(EventType.DAILY_SUMMARY, Severity.INFO) == ("email",)
    assert route(EventType.WATCHLIST_CHANGED, Severity.INFO) == ("discord",)


@pytest.mark.parametrize("alerts", [{"ses_sender": "q@example.com"}, {"ses_recipients": ["me@example.com"]},
                                    {"routes": {"no_such_event": ["discord"]}}])
def test_incomplete_or_wrong_settings_are_refused(alerts: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        build_alert_service(settings(**alerts), db_factory, "live")
