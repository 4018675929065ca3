"""Exchange rates over HTTP: `FrankfurterRates` (the ECB reference rates published by frankfurter.app)."""

from adapters.fx.frankfurter import FrankfurterRates

__all__ = ["FrankfurterRates"]
