"""ReplayLLM: record real answers once, replay them for free and identically.

In "record" mode every successful answer of the wrapped LLM is written to a
cassette directory, one JSON file per request: `<dir>/<agent>/<fingerprint>.json`
where the fingerprint is `LLMRequest.fingerprint(model)` (a hash of the model,
agent, schema and messages). In "replay" mode answers come from the cassette
only, so a backtest or an eval re-runs without keys and gives the same result.

Cost of a replay: `usage.cost_usd` is 0.0 (nothing was spent) unless
`report_original_cost` is set; the original cost, tokens and latency stay in
the cassette file and the replayed usage keeps the original tokens and latency.

Each file is written to a temporary file in the same directory, flushed and
renamed over the target, so a reader never sees half a file and concurrent
recordings (asyncio tasks or threads) never corrupt each other: the last one wins.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from domain.errors import ConfigurationError, LLMError
from domain.ports.llm import LLM, AgentName, CallEstimating, Decision, LLMRequest, LLMUsage, OutputT

ReplayMode = Literal["record", "replay"]
CASSETTE_VERSION = 1


class ReplayLLM(LLM):
    """Records the answers of an inner LLM, or replays them from a cassette directory.

    Args:
        cassette_dir: where the cassette files live (created when recording).
        models: agent name -> model string, exactly as configured when recording
            (the model is part of the key); "default" serves agents not listed.
        mode: "record" (call `inner`, store every success) or "replay" (cassette only).
        inner: the real LLM; required to record.
        report_original_cost: in replay, report the recorded cost in `usage.cost_usd`
            instead of 0.0 (to show what a live run would have spent).
    """

    def __init__(
        self,
        cassette_dir: Path | str,
        models: Mapping[str, str],
        *,
        mode: ReplayMode = "replay",
        inner: LLM | None = None,
        report_original_cost: bool = False,
    ) -> None:
        if mode not in ("record", "replay"):
            raise ConfigurationError(f"ReplayLLM mode must be 'record' or 'replay', not {mode!r}")
        if mode == "record" and inner is None:
            raise ConfigurationError("ReplayLLM in record mode needs the real LLM to record from")
        self.cassette_dir = Path(cassette_dir)
        self.models = dict(models)
        self.mode: ReplayMode = mode
        self.inner = inner
        self.report_original_cost = report_original_cost

    @property
    def provider(self) -> str:
        """The inner LLM's provider when recording; "replay" when replaying (replays cost nothing)."""
        if self.mode == "record" and self.inner is not None:
            return str(getattr(self.inner, "provider", "replay"))
        return "replay"

    def estimate_cost_usd(self, request: LLMRequest[Any]) -> float | None:
        """When recording, what the real LLM estimates one attempt of `request` costs (the daily cap reserves it);
        a replay costs nothing."""
        if self.mode == "record" and isinstance(self.inner, CallEstimating):
            return self.inner.estimate_cost_usd(request)
        return 0.0

    def model_for(self, agent: AgentName | str) -> str:
        """The model string of `agent`.

        Raises:
            ConfigurationError: no model for the agent.
        """
        model = self.models.get(agent) or self.models.get("default")
        if model is None:
            raise ConfigurationError(f"no LLM model configured for the {agent} agent")
        return model

    def path_for(self, request: LLMRequest[Any]) -> Path:
        """The cassette file of `request`."""
        return self.cassette_dir / request.agent / f"{request.fingerprint(self.model_for(request.agent))}.json"

    async def complete(self, request: LLMRequest[OutputT]) -> Decision[OutputT]:
        """Record or replay the answer to `request`.

        Raises:
            LLMError: replay: no recorded answer, or it no longer validates; record: the inner LLM failed.
        """
        if self.mode == "replay":
            return await asyncio.to_thread(self._replay, request)
        if self.inner is None:
            raise ConfigurationError("ReplayLLM in record mode needs the LLM to record (inner)")
        decision = await self.inner.complete(request)
        await asyncio.to_thread(_write_atomic, self.path_for(request), self._entry(request, decision))
        return decision

    def _entry(self, request: LLMRequest[OutputT], decision: Decision[OutputT]) -> dict[str, Any]:
        model = self.model_for(request.agent)
        return {
            "version": CASSETTE_VERSION,
            "key": request.fingerprint(model),
            "agent": request.agent,
            "model": model,
            "schema": request.output_schema.__name__,
            "as_of": request.as_of.isoformat(),
            "cycle_id": request.cycle_id,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "output": decision.output.model_dump(mode="json"),
            "raw": decision.raw,
            "usage": asdict(decision.usage),
        }

    def _replay(self, request: LLMRequest[OutputT]) -> Decision[OutputT]:
        path = self.path_for(request)
        key = path.stem
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LLMError(f"no recorded response for {request.agent} request {key} in {self.cassette_dir}: "
                           f"re-record with keys set") from None
        except (OSError, ValueError) as exc:
            raise LLMError(f"unreadable cassette {path}: {exc}: delete it and re-record") from None
        try:
            output = request.output_schema.model_validate(entry["output"])
        except (KeyError, ValidationError) as exc:
            raise LLMError(f"recorded response {path} no longer validates against "
                           f"{request.output_schema.__name__}: {exc}: re-record") from None
        recorded = entry.get("usage") or {}
        usage = LLMUsage(
            provider=str(recorded.get("provider", "replay")),
            model=str(entry.get("model", self.model_for(request.agent))),
            prompt_tokens=int(recorded.get("prompt_tokens", 0)),
            completion_tokens=int(recorded.get("completion_tokens", 0)),
            cost_usd=float(recorded.get("cost_usd", 0.0)) if self.report_original_cost else 0.0,
            latency_ms=float(recorded.get("latency_ms", 0.0)),
            attempts=int(recorded.get("attempts", 1)),
            replayed=True,
        )
        return Decision(output, usage, raw=str(entry.get("raw", "")))


def _write_atomic(path: Path, entry: Mapping[str, Any]) -> None:
    """Write `entry` as JSON to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:16]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(entry, fh, indent=1, sort_keys=True, ensure_ascii=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
