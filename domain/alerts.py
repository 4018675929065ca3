"""Which events become alerts, and which channels each alert goes to.

Default routing (`AlertRoutes.default`): CRITICAL -> Discord and email, WARNING -> Discord, INFO only for
the daily summary, watchlist changes and discovery divergence (-> Discord), DEBUG never. The log channel,
when configured, receives everything that is routed at all. The paper campaign's daily report goes to every
channel (`EVERY_CHANNEL_TYPES`) unless QUORUM_ALERTS__ROUTES overrides it. Templates live in `domain.alert_templates`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from domain.alert_templates import TEMPLATES, fmt_pct, render_alert
from domain.events import Event, EventType, Severity
from domain.ports.alerts import Alert

__all__ = [
    "DEFAULT_INFO_TYPES",
    "DISCORD",
    "EMAIL",
    "EVERY_CHANNEL_TYPES",
    "LOG",
    "NEVER_ALERTED",
    "TEMPLATED_TYPES",
    "Alert",
    "AlertRoutes",
    "is_alert_worthy",
    "large_position_change_event",
    "render_alert",
    "severity_at_least",
]

DISCORD = "discord"
EMAIL = "email"
LOG = "log"
DEFAULT_INFO_TYPES: frozenset[str] = frozenset(
    {EventType.DAILY_SUMMARY.value, EventType.WATCHLIST_CHANGED.value, EventType.DISCOVERY_DIVERGENCE.value}
)
TEMPLATED_TYPES: tuple[EventType, ...] = tuple(TEMPLATES)
EVERY_CHANNEL_TYPES: frozenset[str] = frozenset({EventType.PAPER_REPORT.value})
"""Reports the user asked for by name (the paper campaign's daily report): every channel, whatever its severity."""
NEVER_ALERTED: frozenset[str] = frozenset({EventType.ALERT_UNDELIVERABLE.value})
_RANK = {s: i for i, s in enumerate(Severity)}


def severity_at_least(severity: Severity, minimum: Severity) -> bool:
    """Whether `severity` is `minimum` or more severe."""
    return _RANK[Severity(severity)] >= _RANK[Severity(minimum)]


@dataclass(frozen=True)
class AlertRoutes:
    """Routing rules: alert (severity x type) -> channel names.

    Attributes:
        min_severity: channel name -> the least severe alert it receives.
        info_types: the only types whose INFO alerts are sent at all (DEBUG alerts never are).
        overrides: type -> channel names, replacing the severity rule for that type (an empty tuple mutes it).
    """

    min_severity: Mapping[str, Severity]
    info_types: frozenset[str] = DEFAULT_INFO_TYPES
    overrides: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def default(cls, channels: Iterable[str] = (DISCORD, EMAIL, LOG)) -> AlertRoutes:
        """CRITICAL -> discord+email, WARNING and the INFO types -> discord; `log` gets all of it."""
        defaults = {DISCORD: Severity.INFO, EMAIL: Severity.CRITICAL, LOG: Severity.INFO}
        return cls({c: defaults.get(c, Severity.WARNING) for c in channels})

    def channels_for(self, alert: Alert) -> tuple[str, ...]:
        """The channels `alert` goes to, in the order of `min_severity`."""
        if alert.type in NEVER_ALERTED:
            return ()
        if alert.type in self.overrides:
            return tuple(self.overrides[alert.type])
        if alert.type in EVERY_CHANNEL_TYPES:
            return tuple(self.min_severity)
        severity = Severity(alert.severity)
        if severity is Severity.DEBUG or (severity is Severity.INFO and alert.type not in self.info_types):
            return ()
        return tuple(name for name, minimum in self.min_severity.items() if severity_at_least(severity, minimum))


def is_alert_worthy(event: Event) -> bool:
    """Whether an event of the log is forwarded to the alert service.

    Every templated type is (routing then decides by severity), and so is any other event of WARNING or
    CRITICAL severity; ALERT_UNDELIVERABLE never is (an alert about a lost alert would loop).
    """
    if EventType(event.type).value in NEVER_ALERTED:
        return False
    return EventType(event.type) in TEMPLATES or severity_at_least(event.severity, Severity.WARNING)


def large_position_change_event(*, symbol: str, side: str, qty: Decimal, price: Decimal, equity: Decimal,
                                at: datetime, scope: str, threshold_pct: float,
                                qty_before: Decimal | None = None, qty_after: Decimal | None = None,
                                cycle_id: str | None = None) -> Event | None:
    """A LARGE_POSITION_CHANGE event when a trade's notional is at least `threshold_pct` of equity, else None.

    Args:
        symbol: what was traded.
        side: "buy" or "sell".
        qty: shares traded (positive).
        price: execution price.
        equity: account equity before the trade (positive).
        at: when it was executed (timezone-aware).
        scope: event log scope.
        threshold_pct: a fraction of equity (0.2 is 20%).
        qty_before: position size before the trade, if known.
        qty_after: position size after the trade, if known.
        cycle_id: the cycle that traded.
    """
    if equity <= 0:
        return None
    notional = abs(qty) * price
    share = float(notional / equity)
    if share < threshold_pct:
        return None
    payload: dict[str, object] = {"side": side, "qty": str(qty), "price": str(price), "notional": str(notional),
                                  "equity": str(equity), "pct_of_equity": round(share, 6)}
    if qty_before is not None:
        payload["qty_before"] = str(qty_before)
    if qty_after is not None:
        payload["qty_after"] = str(qty_after)
    return Event(EventType.LARGE_POSITION_CHANGE, at,
                 f"{side} {qty} {symbol} at {price} is {fmt_pct(share, signed=False)} of equity",
                 Severity.WARNING, cycle_id, symbol, payload, scope)
