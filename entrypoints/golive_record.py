"""The go-live record on disk: `<data_dir>/golive.json`, written by `quorum golive`, required by live trading.

The live account is named by a fingerprint of its API key (a hash, never the key). `check_live` is what the
settings' `check_live_trading` asks: the record must exist for these keys, have every gate passed and be recent;
the first live start activates it (then it stays valid for these keys).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.calendar.nyse import SystemClock
from application.golive import GoLiveRecord, record_refusal

if TYPE_CHECKING:
    from entrypoints.settings import Settings

RECORD_FILE = "golive.json"


def record_path(data_dir: Path) -> Path:
    """Where the go-live record of `data_dir` lives."""
    return data_dir / RECORD_FILE


def account_fingerprint(settings: Settings) -> str:
    """"alpaca-<paper|live>:<12 hex of sha256(API key)>", or "sim" for the simulated broker."""
    b = settings.broker
    if b.provider != "alpaca" or b.alpaca_api_key is None:
        return "sim"
    digest = hashlib.sha256(b.alpaca_api_key.get_secret_value().encode()).hexdigest()[:12]
    return f"alpaca-{'paper' if b.paper else 'live'}:{digest}"


def read_record(data_dir: Path) -> GoLiveRecord | None:
    """The record in `data_dir`, or None when there is none or it cannot be read."""
    try:
        return GoLiveRecord.from_json(json.loads(record_path(data_dir).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_record(data_dir: Path, record: GoLiveRecord) -> Path:
    """Write `record` atomically (readable by the owner only). Returns its path."""
    path = record_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record.to_json(), indent=2))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path


def check_live(settings: Settings, now: datetime | None = None) -> str | None:
    """Why live trading may not start with `settings` (no or a stale go-live record for these keys), or None.

    A valid record that was never used is activated (written back with `activated_at`)."""
    at = now or SystemClock().now()
    record = read_record(settings.data_dir)
    refusal = record_refusal(record, account=account_fingerprint(settings), now=at)
    if refusal is not None or record is None:
        return refusal
    if record.activated_at is None:
        with contextlib.suppress(OSError):  # a read-only data dir: the record stays valid for its max age
            write_record(settings.data_dir, record.activated(at))
    return None
