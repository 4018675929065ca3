"""Alpaca adapters: `AlpacaBroker` (trading API) and `AlpacaMarketData` (assets and market data API).

Both talk to Alpaca's REST API directly with httpx (see `adapters.alpaca.errors.AlpacaRest`)
rather than through alpaca-py, for explicit control of timeouts, retries, idempotent order
submission and the mapping of every failure to a typed domain error.
"""

from adapters.alpaca.broker import AlpacaBroker
from adapters.alpaca.config import LIVE_TRADING_ACK, AlpacaConfig
from adapters.alpaca.market_data import AlpacaMarketData

__all__ = ["LIVE_TRADING_ACK", "AlpacaBroker", "AlpacaConfig", "AlpacaMarketData"]
