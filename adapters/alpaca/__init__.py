"""Alpaca adapters: `AlpacaBroker` (trading API) and `AlpacaMarketData` (assets and market data API).

Both talk to Alpaca's REST API with their own async httpx transport (`adapters.alpaca.rest.AlpacaRest`:
explicit timeouts, visible status codes and retries, idempotent order submission, every failure a
typed domain error) and read every answer through alpaca-py's pydantic models before mapping it to
domain models (`adapters.alpaca.sdk`). docs/alpaca.md lists the Alpaca rules the adapters rely on.
"""

from adapters.alpaca.broker import AlpacaBroker
from adapters.alpaca.config import LIVE_TRADING_ACK, AlpacaConfig
from adapters.alpaca.market_data import AlpacaMarketData

__all__ = ["LIVE_TRADING_ACK", "AlpacaBroker", "AlpacaConfig", "AlpacaMarketData"]
