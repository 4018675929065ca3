"""Alpaca's cash transfer activities (CSD deposits, CSW withdrawals, JNLC cash journals) as `CashTransfer`s.

A non-trade activity carries a `date` (New York) but no time; its id starts with the UTC time to the millisecond
("20190801011955195::<uuid>", alpaca-py's BaseActivity and alpaca-docs' account-nontrade-activity-v2 example),
so the time is read from the id and falls back to the start of the New York `date`. `net_amount` is read from
the raw decimal text (the SDK declares it a float).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from alpaca.trading.enums import NonTradeActivityStatus
from alpaca.trading.models import NonTradeActivity

from domain.models.cash_transfer import TRANSFER_KINDS, CashTransfer

NEW_YORK = ZoneInfo("America/New_York")
TRANSFER_ACTIVITIES = "/v2/account/activities"
TRANSFER_TYPES = ",".join(TRANSFER_KINDS)
_STAMP = "%Y%m%d%H%M%S%f"


class TransferActivity(NonTradeActivity):
    """A non-trade activity of the Trading API. alpaca-py's model is the Broker API's: it requires
    ``account_id`` and ``description``, which the Trading API's documentation example does not send; both are
    optional here, every other field is the SDK's."""

    account_id: UUID | None = None  # type: ignore[assignment]
    description: str = ""


def activity_time(activity_id: str, day: date) -> datetime:
    """The activity's time from its id ("YYYYMMDDhhmmssSSS::uuid", UTC), else midnight of `day` in New York."""
    stamp = activity_id.split("::", 1)[0]
    if len(stamp) == 17 and stamp.isdigit():
        return datetime.strptime(stamp + "000", _STAMP).replace(tzinfo=UTC)
    return datetime(day.year, day.month, day.day, tzinfo=NEW_YORK)


def transfer_from_activity(raw: dict[str, Any], activity: TransferActivity) -> CashTransfer | None:
    """The transfer of a CSD, CSW or JNLC activity; None for another type or a canceled one."""
    kind = activity.activity_type.value
    if kind not in TRANSFER_KINDS or activity.status is NonTradeActivityStatus.CANCELED:
        return None
    return CashTransfer(id=activity.id, amount=Decimal(str(raw["net_amount"])),
                        at=activity_time(activity.id, activity.date), kind=kind,
                        description=activity.description or "")
