"""Alpaca connection settings: keys, paper or live, endpoints, feed, timeout and retries.

Paper or live is chosen only here, from settings. Live trading is refused unless the
acknowledgement string ``I_UNDERSTAND`` was given as well (``QUORUM_LIVE_TRADING``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from domain.errors import ConfigurationError, LiveTradingRefusedError

LIVE_TRADING_ACK = "I_UNDERSTAND"
PAPER_TRADING_URL = "https://paper-api.alpaca.markets"
LIVE_TRADING_URL = "https://api.alpaca.markets"
DATA_URL = "https://data.alpaca.markets"
_LIVE_HOST = urlsplit(LIVE_TRADING_URL).hostname
_PAPER_HOST = urlsplit(PAPER_TRADING_URL).hostname

Feed = Literal["iex", "sip"]


@dataclass(frozen=True, slots=True)
class AlpacaConfig:
    """How to reach Alpaca. Keys never appear in `repr()`.

    Attributes:
        api_key: sent as the ``APCA-API-KEY-ID`` header only.
        secret_key: sent as the ``APCA-API-SECRET-KEY`` header only.
        paper: True for the paper account (simulated money), False for live.
        trading_url: override of the trading API base URL (tests point it at a local server).
        data_url: override of the market data API base URL.
        feed: feed of quotes, trades, snapshots and minute bars: ``iex`` (free, real time) or ``sip``
            (consolidated; real time needs a paid plan).
        bars_feed: feed of daily bars. ``sip`` (default) gives consolidated volumes, which the backtests
            and the dollar-volume filter assume; the free plan serves SIP history older than 15 minutes,
            so daily bars are read up to 15 minutes before the wall clock. ``iex`` volumes are IEX-only.
        timeout: seconds before one HTTP request is abandoned.
        max_retries: retries after the first attempt on 429, 5xx and timeouts.
        backoff_seconds: first back-off delay; doubled on every retry.
        max_backoff_seconds: upper bound of one back-off delay, including Retry-After.
        live_trading_ack: must equal ``I_UNDERSTAND`` when ``paper`` is False.
    """

    api_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    paper: bool = True
    trading_url: str | None = None
    data_url: str | None = None
    feed: Feed = "iex"
    bars_feed: Feed = "sip"
    timeout: float = 10.0
    max_retries: int = 3
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    live_trading_ack: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.paper and self.live_trading_ack != LIVE_TRADING_ACK:
            raise LiveTradingRefusedError(
                "QUORUM_BROKER__PAPER=false asks for live trading with real money; "
                f"set QUORUM_LIVE_TRADING={LIVE_TRADING_ACK} as well to allow it"
            )
        if not self.api_key or not self.api_key.strip():
            raise ConfigurationError("QUORUM_BROKER__ALPACA_API_KEY is not set")
        if not self.secret_key or not self.secret_key.strip():
            raise ConfigurationError("QUORUM_BROKER__ALPACA_SECRET_KEY is not set")
        if self.feed not in ("iex", "sip"):
            raise ConfigurationError(f"QUORUM_BROKER__DATA_FEED must be 'iex' or 'sip', got {self.feed!r}")
        if self.bars_feed not in ("iex", "sip"):
            raise ConfigurationError(f"QUORUM_BROKER__BARS_FEED must be 'sip' or 'iex', got {self.bars_feed!r}")
        if self.timeout <= 0:
            raise ConfigurationError(f"QUORUM_BROKER__TIMEOUT_SECONDS must be positive, got {self.timeout}")
        if self.max_retries < 0:
            raise ConfigurationError(f"Alpaca max_retries must be >= 0, got {self.max_retries}")
        host = urlsplit(self.trading_url).hostname if self.trading_url else None
        if self.paper and host == _LIVE_HOST:
            raise ConfigurationError(
                f"QUORUM_BROKER__TRADING_URL points at the live API ({self.trading_url}) while "
                "QUORUM_BROKER__PAPER=true; remove the override or choose live mode explicitly"
            )
        if not self.paper and host == _PAPER_HOST:
            raise ConfigurationError(
                f"QUORUM_BROKER__TRADING_URL points at the paper API ({self.trading_url}) while "
                "QUORUM_BROKER__PAPER=false"
            )

    @classmethod
    def from_values(
        cls,
        api_key: str | None,
        secret_key: str | None,
        *,
        paper: bool = True,
        live_trading_ack: str | None = None,
        trading_url: str | None = None,
        data_url: str | None = None,
        feed: Feed = "iex",
        bars_feed: Feed = "sip",
        timeout: float = 10.0,
        max_retries: int = 3,
    ) -> AlpacaConfig:
        """Build a config from plain setting values (the composition root unwraps secrets).

        Raises:
            LiveTradingRefusedError: ``paper`` is False and ``live_trading_ack`` is not ``I_UNDERSTAND``.
            ConfigurationError: a key is missing or a value is invalid.
        """
        return cls(
            api_key=api_key or "",
            secret_key=secret_key or "",
            paper=paper,
            trading_url=trading_url,
            data_url=data_url,
            feed=feed,
            bars_feed=bars_feed,
            timeout=timeout,
            max_retries=max_retries,
            live_trading_ack=live_trading_ack,
        )

    @property
    def trading_base_url(self) -> str:
        """Trading API base URL: the override, else the paper or live default."""
        url = self.trading_url or (PAPER_TRADING_URL if self.paper else LIVE_TRADING_URL)
        return url.rstrip("/")

    @property
    def data_base_url(self) -> str:
        """Market data API base URL: the override, else Alpaca's data host."""
        return (self.data_url or DATA_URL).rstrip("/")

    def auth_headers(self) -> dict[str, str]:
        """The two authentication headers. Keep the result out of logs."""
        return {"APCA-API-KEY-ID": self.api_key, "APCA-API-SECRET-KEY": self.secret_key}

    def secrets(self) -> tuple[str, str]:
        """The key values, for scrubbing them out of any text before it is shown."""
        return (self.api_key, self.secret_key)
