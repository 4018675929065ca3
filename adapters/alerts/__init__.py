"""Alert channels: `DiscordAlertChannel` (webhook embeds), `SesAlertChannel` (email via AWS SES) and
`LogAlertChannel` (structlog) and `JsonlAlertChannel` (a local file, for rehearsals)."""

from adapters.alerts.discord import DiscordAlertChannel
from adapters.alerts.jsonl import JsonlAlertChannel
from adapters.alerts.log import LogAlertChannel
from adapters.alerts.ses import SesAlertChannel

__all__ = ["DiscordAlertChannel", "JsonlAlertChannel", "LogAlertChannel", "SesAlertChannel"]
