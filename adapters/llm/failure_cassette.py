"""FailureCassette: failed calls recorded beside the answers, so that a replay fails the same way.

`ReplayLLM` records answers only, so a call that failed while recording (invalid JSON after the retries, a
timeout) would replay as "no recorded response", with another message and no tokens. Wrapped around a
`ReplayLLM`, this records such a failure as `<agent>/<fingerprint>.failed.json` beside where the answer would
go (the error, its type, and what the attempts cost) and raises it again on replay. Recording an answer
removes a stale failure of the same request and recording a failure removes a stale answer, so a cassette
directory holds what the last recording got. A replay prefers a recorded answer when, by another recorder,
both exist. The cost of a replayed failure follows the `ReplayLLM`'s `report_original_cost`.

Only the model's or the provider's failures are recorded: an `LLMCallFailedError` of a kind that is retried
(unusable answers, timeouts, 429 and 5xx after the retries). A failure of the setup (a missing or wrong key, a
bad request: not retried) or any other error is raised without touching the cassettes, so a run without its key
never replaces good recordings with failures.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from adapters.llm.litellm_adapter import LLMCallFailedError
from adapters.llm.replay import CASSETTE_VERSION, ReplayLLM, _write_atomic
from domain.errors import LLMError
from domain.ports.llm import LLM, Decision, LLMRequest, LLMUsage, OutputT

FAILED_SUFFIX = ".failed.json"


class FailureCassette(LLM):
    """Records (or replays) the failures of a `ReplayLLM` as well as its answers.

    Args:
        replay: the cassette LLM, in record or replay mode.
    """

    def __init__(self, replay: ReplayLLM) -> None:
        self.replay = replay

    @property
    def provider(self) -> str:
        """The wrapped LLM's provider ("replay" when replaying: replays cost nothing)."""
        return self.replay.provider

    def estimate_cost_usd(self, request: LLMRequest[Any]) -> float | None:
        """The wrapped LLM's estimate of one attempt of `request` (see `ReplayLLM.estimate_cost_usd`)."""
        return self.replay.estimate_cost_usd(request)

    def failure_path(self, request: LLMRequest[Any]) -> Path:
        """Where the failure of `request` is recorded."""
        answer = self.replay.path_for(request)
        return answer.with_name(answer.stem + FAILED_SUFFIX)

    async def complete(self, request: LLMRequest[OutputT]) -> Decision[OutputT]:
        """Record or replay the answer, or the failure, of `request`.

        Raises:
            LLMError: the call failed (recording), or failed when it was recorded (replay), or nothing was
                recorded for it (replay).
        """
        answer, failure = self.replay.path_for(request), self.failure_path(request)
        if self.replay.mode == "replay":
            if not answer.is_file() and failure.is_file():
                raise await asyncio.to_thread(self._recorded_failure, request, failure)
            return await self.replay.complete(request)
        try:
            decision = await self.replay.complete(request)
        except LLMCallFailedError as exc:
            if exc.retryable:
                await asyncio.to_thread(self._record_failure, request, exc, answer, failure)
            raise
        await asyncio.to_thread(failure.unlink, missing_ok=True)
        return decision

    def _record_failure(self, request: LLMRequest[Any], exc: LLMCallFailedError, answer: Path,
                        failure: Path) -> None:
        usage = exc.usage
        entry = {
            "version": CASSETTE_VERSION, "key": answer.stem, "agent": request.agent,
            "model": self.replay.model_for(request.agent), "schema": request.output_schema.__name__,
            "as_of": request.as_of.isoformat(), "cycle_id": request.cycle_id,
            "error_type": type(exc).__name__, "error": str(exc),
            "attempts": exc.attempts, "retryable": exc.retryable, "usage": asdict(usage),
        }
        _write_atomic(failure, entry)
        answer.unlink(missing_ok=True)

    def _recorded_failure(self, request: LLMRequest[Any], failure: Path) -> LLMError:
        try:
            entry = json.loads(failure.read_text(encoding="utf-8"))
            message = str(entry["error"])
        except (OSError, ValueError, KeyError) as exc:
            return LLMError(f"unreadable failure cassette {failure}: {exc}: delete it and re-record")
        recorded = entry.get("usage") or {}
        model = str(entry.get("model") or self.replay.model_for(request.agent))
        usage = LLMUsage(
            provider=str(recorded.get("provider", "replay")), model=model,
            prompt_tokens=int(recorded.get("prompt_tokens", 0)),
            completion_tokens=int(recorded.get("completion_tokens", 0)),
            cost_usd=float(recorded.get("cost_usd", 0.0)) if self.replay.report_original_cost else 0.0,
            latency_ms=float(recorded.get("latency_ms", 0.0)), attempts=int(recorded.get("attempts", 1)),
            replayed=True)
        return LLMCallFailedError(message, agent=request.agent, model=model, attempts=int(entry.get("attempts", 1)),
                                  retryable=bool(entry.get("retryable", True)), usage=usage)
