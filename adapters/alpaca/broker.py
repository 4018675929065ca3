"""`AlpacaBroker`: account, positions and orders on Alpaca's trading API (paper or live).

Submitting is idempotent on the client order id. When Alpaca answers that the id is already
used, the existing order is fetched and returned. When a submit times out or fails on
Alpaca's side (so it may have been executed), the order is looked up by client order id
before anything is sent again, so an order that reached Alpaca is never sent twice. If the
lookup races an order still in flight, the resend is refused by Alpaca as a duplicate
client order id, and the existing order is returned.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from adapters.alpaca.config import AlpacaConfig
from adapters.alpaca.errors import (
    AlpacaRest,
    Sleep,
    TransientFailure,
    is_duplicate_client_order_id,
    with_attempts,
)
from adapters.alpaca.mapping import (
    account_from_json,
    fill_from_activity,
    is_fractional,
    order_body,
    order_from_json,
    parsed,
    position_from_json,
)
from domain.errors import BrokerError, BrokerUnavailableError, NotFoundError, OrderRejectedError
from domain.models.account import Account
from domain.models.trading import Fill, Order, OrderRequest, OrderStatus, Position
from domain.ports.broker import Broker

log = structlog.get_logger(__name__)

ORDERS = "/v2/orders"
BY_CLIENT_ID = "/v2/orders:by_client_order_id"
FILL_ACTIVITIES = "/v2/account/activities/FILL"
_MAX_OPEN_ORDERS = 500
_ACTIVITY_PAGE = 100


class AlpacaBroker(Broker):
    """The `Broker` port on Alpaca. Paper or live is taken from `AlpacaConfig` only.

    Args:
        config: keys, paper/live, endpoint overrides, timeout and retry policy. A live config
            can only exist with the ``I_UNDERSTAND`` acknowledgement (checked by `AlpacaConfig`).
        sleep: awaited between retries (tests inject a recorder so nothing really sleeps).
        transport: optional httpx transport.
    """

    def __init__(
        self,
        config: AlpacaConfig,
        *,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._paper = config.paper
        self._rest = AlpacaRest(config, config.trading_base_url, sleep=sleep, transport=transport)
        self._client_ids: dict[str, str] = {}
        log.info("alpaca_broker_ready", paper=config.paper, trading_url=config.trading_base_url)

    def __repr__(self) -> str:
        return f"AlpacaBroker(paper={self._paper})"

    async def __aenter__(self) -> AlpacaBroker:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._rest.aclose()

    @property
    def is_paper(self) -> bool:
        """Whether orders move simulated (paper) money."""
        return self._paper

    async def account(self) -> Account:
        """Cash, equity, buying power and day-trade count."""
        body = await self._rest.request("GET", "/v2/account")
        return parsed("an account", BrokerError, account_from_json, body)

    async def positions(self) -> list[Position]:
        """Open positions (negative quantity for shorts)."""
        body = await self._rest.request("GET", "/v2/positions")
        return [parsed("a position", BrokerError, position_from_json, p) for p in _list(body, "positions")]

    async def open_orders(self) -> list[Order]:
        """Orders that may still fill, bracket legs included as their own orders, oldest first."""
        params = {"status": "open", "limit": _MAX_OPEN_ORDERS, "direction": "asc"}
        items = _list(await self._rest.request("GET", ORDERS, params=params), "orders")
        if len(items) >= _MAX_OPEN_ORDERS:
            log.warning("alpaca_open_orders_truncated", limit=_MAX_OPEN_ORDERS)
        orders = []
        for item in items:
            if isinstance(item, dict) and item.get("qty") is None:
                log.warning("alpaca_notional_order_skipped", broker_order_id=item.get("id"), symbol=item.get("symbol"))
                continue
            orders.append(parsed("an order", BrokerError, order_from_json, item))
        return orders

    async def submit(self, request: OrderRequest) -> Order:
        """Submit an order, idempotently on `request.client_order_id`.

        Raises:
            InsufficientBuyingPowerError, ForbiddenError, OrderRejectedError, BrokerAuthError,
            RateLimitedError, BrokerUnavailableError.
        """
        body = order_body(request)
        cid = request.client_order_id
        if is_fractional(request) and request.stop_price is not None:
            log.info("alpaca_fractional_stop_kept_by_quorum", client_order_id=cid, symbol=request.symbol)
        attempt = 0
        while True:
            try:
                answer = await self._rest.send_once("POST", ORDERS, body=body)
            except OrderRejectedError as exc:
                if not is_duplicate_client_order_id(exc):
                    raise
                existing = await self.get_by_client_id(cid)
                if existing is None:
                    raise
                return self._reuse(existing, request, "duplicate_client_order_id")
            except TransientFailure as failure:
                if failure.maybe_executed:
                    existing = await self._lookup_after_failure(cid, failure)
                    if existing is not None:
                        return self._reuse(existing, request, "found_after_failed_submit")
                if attempt >= self._rest.max_retries:
                    raise with_attempts(failure.error, attempt + 1) from None
                await self._rest.back_off(attempt, failure, "POST", ORDERS)
                attempt += 1
                continue
            return await self._read_submitted(answer, cid)

    async def get_by_client_id(self, client_order_id: str) -> Order | None:
        """The order with this client order id, or None when Alpaca has none."""
        try:
            body = await self._rest.request("GET", BY_CLIENT_ID, params={"client_order_id": client_order_id})
        except NotFoundError:
            return None
        return parsed("an order", BrokerError, order_from_json, body)

    async def cancel(self, broker_order_id: str) -> None:
        """Cancel an open order. An order that is already canceled counts as done.

        Raises:
            NotFoundError: Alpaca has no such order.
            OrderRejectedError: the order can no longer be canceled (e.g. it has filled).
        """
        path = f"{ORDERS}/{quote(broker_order_id, safe='')}"
        try:
            await self._rest.request("DELETE", path)
        except OrderRejectedError:
            body = await self._rest.request("GET", path)
            if parsed("an order", BrokerError, order_from_json, body).status is OrderStatus.CANCELED:
                return
            raise
        log.info("alpaca_order_cancel_requested", broker_order_id=broker_order_id)

    async def fills_since(self, since: datetime) -> list[Fill]:
        """Executions at or after `since`, oldest first (FILL account activities)."""
        params: dict[str, Any] = {
            "after": (since - timedelta(seconds=1)).isoformat().replace("+00:00", "Z"),
            "direction": "asc",
            "page_size": _ACTIVITY_PAGE,
        }
        activities: list[dict[str, Any]] = []
        while True:
            page = _list(await self._rest.request("GET", FILL_ACTIVITIES, params=params), "activities")
            activities.extend(page)
            if len(page) < _ACTIVITY_PAGE:
                break
            params = {**params, "page_token": page[-1]["id"]}
        fills = []
        for item in activities:
            cid = await self._client_id_of(str(item["order_id"]))
            fill = parsed("a fill", BrokerError, fill_from_activity, item, cid)
            if fill.at >= since:
                fills.append(fill)
        return sorted(fills, key=lambda f: f.at)

    async def _client_id_of(self, broker_order_id: str) -> str:
        if broker_order_id not in self._client_ids:
            body = await self._rest.request("GET", f"{ORDERS}/{quote(broker_order_id, safe='')}")
            self._client_ids[broker_order_id] = str(_object(body, "order")["client_order_id"])
        return self._client_ids[broker_order_id]

    async def _lookup_after_failure(self, cid: str, failure: TransientFailure) -> Order | None:
        try:
            return await self.get_by_client_id(cid)
        except BrokerError as exc:
            raise BrokerUnavailableError(
                f"order {cid} may or may not have reached Alpaca: the submit failed ({failure.error}) and looking it "
                f"up by client_order_id failed too ({exc}); it is looked up again before any resubmission"
            ) from None

    async def _read_submitted(self, answer: Any, cid: str) -> Order:
        try:
            return parsed("an order", BrokerError, order_from_json, answer)
        except BrokerError as unreadable:
            existing = await self.get_by_client_id(cid)
            if existing is not None:
                return existing
            raise BrokerError(
                f"Alpaca accepted order {cid} but its answer could not be read ({unreadable}) and the order "
                "cannot be found by client_order_id; check the account before resubmitting"
            ) from None

    def _reuse(self, existing: Order, request: OrderRequest, why: str) -> Order:
        same = (existing.symbol, existing.request.side, existing.request.qty) == (
            request.symbol, request.side, request.qty
        )
        log.info("alpaca_order_already_exists", client_order_id=request.client_order_id, why=why,
                 broker_order_id=existing.broker_order_id, matches_request=same)
        if not same:
            log.warning("alpaca_client_order_id_reused_for_other_order", client_order_id=request.client_order_id,
                        symbol=existing.symbol, requested_symbol=request.symbol)
        return existing


def _list(body: Any, what: str) -> list[Any]:
    if not isinstance(body, list):
        raise BrokerError(f"Alpaca returned {type(body).__name__} for {what}, expected a list")
    return body


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BrokerError(f"Alpaca returned {type(body).__name__} for {what}, expected an object")
    return body
