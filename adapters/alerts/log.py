"""LogAlertChannel: alerts as structlog lines (the default when no other channel is configured)."""

from __future__ import annotations

import structlog

from domain.events import Severity
from domain.ports.alerts import Alert, AlertChannel

_LEVELS = {Severity.CRITICAL: "critical", Severity.WARNING: "warning", Severity.INFO: "info", Severity.DEBUG: "debug"}


class LogAlertChannel(AlertChannel):
    """Implements `AlertChannel` by writing one structured log line per alert; never fails.

    Args:
        name: the channel name used in routes.
    """

    def __init__(self, name: str = "log") -> None:
        self.name = name
        self._log = structlog.get_logger("quorum.alerts")

    async def send(self, alert: Alert) -> None:
        """Log `alert` at the level of its severity."""
        method = getattr(self._log, _LEVELS.get(Severity(alert.severity), "info"))
        method("alert", alert_type=alert.type, severity=Severity(alert.severity).value, title=alert.title,
               body=alert.body, fields=alert.fields, at=alert.at.isoformat(), event_id=alert.event_id)
