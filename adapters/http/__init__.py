"""Clients of Quorum's own HTTP API: `HttpCycleTrigger` (asks the API server for an event cycle)."""

from adapters.http.cycle_trigger import HttpCycleTrigger

__all__ = ["HttpCycleTrigger"]
