"""Builds the AlertService from settings: Discord and/or SES channels, the log channel when neither is set."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from adapters.alerts import DiscordAlertChannel, LogAlertChannel, SesAlertChannel
from adapters.calendar.nyse import SystemClock
from application.alerts import AlertService
from domain.alerts import DISCORD, EMAIL, LOG, AlertRoutes
from domain.errors import ConfigurationError
from domain.events import EventType, Severity
from domain.ports.alerts import AlertChannel
from domain.ports.clock import Clock
from domain.ports.uow import UnitOfWorkFactory
from entrypoints.logging_setup import redact, register_secret
from entrypoints.settings import AlertSettings, Settings


def build_channels(alerts: AlertSettings) -> dict[str, AlertChannel]:
    """The channels configured in `alerts`; just the log channel when none is.

    Raises:
        ConfigurationError: an SES sender without recipients (or recipients without a sender).
    """
    channels: dict[str, AlertChannel] = {}
    if alerts.discord_webhook_url is not None:
        url = alerts.discord_webhook_url.get_secret_value()
        register_secret(url)
        channels[DISCORD] = DiscordAlertChannel(url)
    if alerts.ses_sender or alerts.ses_recipients:
        if not (alerts.ses_sender and alerts.ses_recipients):
            raise ConfigurationError("email alerts need both QUORUM_ALERTS__SES_SENDER and "
                                     "QUORUM_ALERTS__SES_RECIPIENTS")
        channels[EMAIL] = SesAlertChannel(alerts.ses_sender, alerts.ses_recipients, region=alerts.ses_region)
    if not channels:
        channels[LOG] = LogAlertChannel()
    return channels


def build_routes(alerts: AlertSettings, channels: dict[str, AlertChannel]) -> AlertRoutes:
    """Routing rules from the per-channel minimum severities and the per-type overrides.

    Raises:
        ConfigurationError: an override names an unknown event type.
    """
    minimum = {DISCORD: alerts.discord_min_severity, EMAIL: alerts.email_min_severity, LOG: alerts.log_min_severity}
    known = {t.value for t in EventType}
    unknown = sorted(set(alerts.routes) - known)
    if unknown:
        raise ConfigurationError(f"QUORUM_ALERTS__ROUTES: unknown event types {unknown}")
    return AlertRoutes({name: minimum.get(name, Severity.WARNING) for name in channels},
                       overrides={t: tuple(names) for t, names in alerts.routes.items()})


def build_alert_service(settings: Settings, uow_factory: UnitOfWorkFactory, scope: str, *,
                        clock: Clock | None = None,
                        sleep: Callable[[float], Awaitable[Any]] | None = None) -> AlertService:
    """The AlertService of `settings` (channels, routes, retries), scrubbing registered secrets."""
    alerts = settings.alerts
    channels = build_channels(alerts)
    options: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
    return AlertService(uow_factory, channels, build_routes(alerts, channels), scope=scope,
                        clock=clock or SystemClock(), max_attempts=alerts.max_attempts,
                        backoff_base=alerts.backoff_seconds, redact=redact, **options)
