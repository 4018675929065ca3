"""Discovery use cases: the LLM picker, the watchlist, discovery runs, forward returns, picker performance
and the paper-trade A/B tracker. `DiscoveryService` is the entry point."""
