"""Alert channels: `DiscordAlertChannel` (webhook embeds), `SesAlertChannel` (email via AWS SES) and
`LogAlertChannel` (structlog)."""

from adapters.alerts.discord import DiscordAlertChannel
from adapters.alerts.log import LogAlertChannel
from adapters.alerts.ses import SesAlertChannel

__all__ = ["DiscordAlertChannel", "LogAlertChannel", "SesAlertChannel"]
