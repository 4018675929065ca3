"""GET /health (liveness), GET /ready (database, Redis, broker) and GET /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Response, get

from entrypoints.api.common import READ_SECURITY
from entrypoints.api.errors import error_responses
from entrypoints.api.metrics import CONTENT_TYPE
from entrypoints.api.services import ApiServices


@get("/health", tags=["health"], summary="Liveness")
async def health() -> dict[str, str]:
    """The process is up and serving requests (no dependency is checked)."""
    return {"status": "ok"}


@get("/ready", tags=["health"], summary="Readiness", responses=error_responses(503))
async def ready(services: ApiServices) -> Response[dict[str, Any]]:
    """200 when every dependency (database, Redis, broker) answers, else 503 naming the ones that do not.

    The broker's answer is reused for a while (its "age_s" says how old it is): requests here never cost a broker
    call each.
    """
    results = await asyncio.gather(*(c.result() for c in services.readiness))
    checks = {c.name: r for c, r in zip(services.readiness, results, strict=True)}
    failing = sorted(name for name, r in checks.items() if not r["ok"])
    if failing:
        return Response({"error": f"not ready: {', '.join(failing)}", "detail": {"checks": checks}},
                        status_code=503)
    return Response({"status": "ready", "checks": checks}, status_code=200)


@get("/metrics", security=READ_SECURITY, tags=["health"], summary="Prometheus metrics", media_type=CONTENT_TYPE,
     responses=error_responses(401))
async def metrics(services: ApiServices) -> Response[bytes]:
    """Cycles, orders, fills, rejects by limit, breaker state, LLM latency/cost/tokens by provider, durations."""
    m = services.prometheus
    await m.refresh()
    return Response(m.render(), media_type=CONTENT_TYPE)
