"""`AlpacaBroker`: account, positions and orders on Alpaca's trading API (paper or live).

Submitting is idempotent on the client order id. When Alpaca answers that the id is already
used, the existing order is fetched and returned. When a submit times out or fails on
Alpaca's side (so it may have been executed), the order is looked up by client order id
before anything is sent again, so an order that reached Alpaca is never sent twice. If the
lookup races an order still in flight, the resend is refused by Alpaca as a duplicate
client order id, and the existing order is returned.

Cancelling: Alpaca answers DELETE /v2/orders/{id} with 204 while the order may still be
``pending_cancel`` ("waiting to be canceled", order statuses in
https://docs.alpaca.markets/docs/orders-at-alpaca), so `cancel` reads the order back, with short
growing pauses, until it is no longer open.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import httpx
import structlog
from alpaca.trading.models import Position as SdkPosition
from alpaca.trading.models import TradeAccount

from adapters.alpaca.config import AlpacaConfig
from adapters.alpaca.errors import TransientFailure, is_duplicate_client_order_id, with_attempts
from adapters.alpaca.mapping import account_from_sdk, fill_from_activity, position_from_sdk
from adapters.alpaca.order_reader import ORDERS, OrderReader, order_path
from adapters.alpaca.orders import order_from_sdk, sdk_order, status_of
from adapters.alpaca.rest import AlpacaRest, Sleep
from adapters.alpaca.sdk import FillActivity, as_list, as_object, parsed, validated
from adapters.alpaca.transfers import (
    TRANSFER_ACTIVITIES,
    TRANSFER_TYPES,
    TransferActivity,
    transfer_from_activity,
)
from adapters.alpaca.wire import is_fractional, order_body, rfc3339
from domain.errors import BrokerError, BrokerUnavailableError, OrderRejectedError
from domain.models.account import Account
from domain.models.cash_transfer import CashTransfer
from domain.models.trading import Fill, Order, OrderRequest, OrderStatus, Position
from domain.ports.broker import Broker

log = structlog.get_logger(__name__)

FILL_ACTIVITIES = "/v2/account/activities/FILL"
ACTIVITY_PAGE = 100
ALPACA_EPOCH = datetime(2015, 1, 1, tzinfo=UTC)
"""Alpaca was founded in 2015: no account has an activity before, so older `since` values send no ``after``."""
CANCEL_CHECKS = 6
CANCEL_FIRST_PAUSE = 0.1
CANCEL_MAX_PAUSE = 1.0


class AlpacaBroker(Broker):
    """The `Broker` port on Alpaca. Paper or live is taken from `AlpacaConfig` only.

    Args:
        config: keys, paper/live, endpoint overrides, timeout and retry policy. A live config
            can only exist with the ``I_UNDERSTAND`` acknowledgement (checked by `AlpacaConfig`).
        sleep: awaited between retries and cancel checks (tests inject a recorder so nothing sleeps).
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
        self.trading_url = config.trading_base_url
        self._rest = AlpacaRest(config, config.trading_base_url, sleep=sleep, transport=transport)
        self._orders = OrderReader(self._rest)
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
        """Cash, equity, buying power, the previous close's equity and the day-trade count."""
        body = as_object(await self._rest.request("GET", "/v2/account"), "the account", BrokerError)
        sdk = validated("an account", BrokerError, TradeAccount, **body)
        return parsed("an account", BrokerError, account_from_sdk, sdk)

    async def positions(self) -> list[Position]:
        """Open positions with `qty_available` (negative quantities for shorts)."""
        positions = []
        for item in as_list(await self._rest.request("GET", "/v2/positions"), "positions", BrokerError):
            sdk = validated("a position", BrokerError, SdkPosition, **as_object(item, "a position", BrokerError))
            positions.append(parsed("a position", BrokerError, position_from_sdk, sdk))
        return positions

    async def open_orders(self) -> list[Order]:
        """Orders that may still fill, oldest first; bracket/OTO legs as their own orders with `parent_id`."""
        return await self._orders.open_orders()

    async def get_by_client_id(self, client_order_id: str) -> Order | None:
        """The order with this client order id (a leg with `parent_id`), or None when Alpaca has none."""
        return await self._orders.by_client_id(client_order_id)

    async def get_order(self, broker_order_id: str) -> Order | None:
        """The order with this broker order id (a leg with `parent_id`), or None when Alpaca has none."""
        return await self._orders.get(broker_order_id)

    async def submit(self, request: OrderRequest) -> Order:
        """Submit an order, idempotently on `request.client_order_id`.

        Raises:
            InsufficientBuyingPowerError, InsufficientQtyError, WashTradeError, PatternDayTraderError,
            ForbiddenError, OrderRejectedError, BrokerAuthError, RateLimitedError, BrokerUnavailableError.
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

    async def cancel(self, broker_order_id: str) -> None:
        """Cancel an open order and return once Alpaca no longer holds it open.

        An order that is already canceled counts as done; one that filled or expired while the cancel
        was pending also returns (read it with `get_order`).

        Raises:
            NotFoundError: Alpaca has no such order.
            OrderRejectedError: Alpaca refused the cancel and the order is no longer open (e.g. filled).
            BrokerUnavailableError: the order was still open after the last check.
        """
        path = order_path(broker_order_id)
        try:
            await self._rest.request("DELETE", path)
        except OrderRejectedError:
            status = status_of(sdk_order(await self._rest.request("GET", path)))
            if status is OrderStatus.CANCELED:
                return
            if not status.is_open:
                raise
        log.info("alpaca_order_cancel_requested", broker_order_id=broker_order_id)
        await self._until_not_open(broker_order_id, path)

    async def fills_since(self, since: datetime) -> list[Fill]:
        """Executions at or after `since`, oldest first (FILL account activities).

        Raises:
            ValueError: `since` is naive.
        """
        if since.tzinfo is None:
            raise ValueError(f"fills_since needs a timezone-aware datetime, got naive {since!r}")
        params: dict[str, Any] = {"direction": "asc", "page_size": ACTIVITY_PAGE}
        if since > ALPACA_EPOCH:
            params["after"] = rfc3339(since - timedelta(seconds=1))
        fills = []
        for raw in await self._activities(FILL_ACTIVITIES, params):
            activity = validated("a FILL activity", BrokerError, FillActivity, **raw)
            facts = await self._orders.facts(str(activity.order_id))
            fill = parsed("a fill", BrokerError, fill_from_activity, raw, activity, facts.client_order_id,
                          facts.reason)
            if fill.at >= since:
                fills.append(fill)
        return sorted(fills, key=lambda f: f.at)

    async def cash_transfers_since(self, since: datetime) -> list[CashTransfer]:
        """Deposits, withdrawals and cash journals at or after `since`, oldest first (CSD, CSW and JNLC account
        activities; canceled ones left out).

        Raises:
            ValueError: `since` is naive.
        """
        if since.tzinfo is None:
            raise ValueError(f"cash_transfers_since needs a timezone-aware datetime, got naive {since!r}")
        params: dict[str, Any] = {"activity_types": TRANSFER_TYPES, "direction": "asc", "page_size": ACTIVITY_PAGE}
        if since > ALPACA_EPOCH:
            params["after"] = rfc3339(since - timedelta(days=1))
        transfers = []
        for raw in await self._activities(TRANSFER_ACTIVITIES, params):
            activity = validated("a cash activity", BrokerError, TransferActivity, **raw)
            transfer = parsed("a cash activity", BrokerError, transfer_from_activity, raw, activity)
            if transfer is not None and transfer.at >= since:
                transfers.append(transfer)
        return sorted(transfers, key=lambda t: t.at)

    async def _activities(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        activities: list[dict[str, Any]] = []
        while True:
            body = await self._rest.request("GET", path, params=params)
            page = [as_object(a, "an activity", BrokerError) for a in as_list(body, "activities", BrokerError)]
            activities.extend(page)
            if len(page) < ACTIVITY_PAGE:
                return activities
            token = str(page[-1].get("id") or "")
            if not token or token == params.get("page_token"):
                raise BrokerError(f"Alpaca's activities page ended without a usable id ({token!r}); stopping")
            params = {**params, "page_token": token}

    async def _until_not_open(self, broker_order_id: str, path: str) -> None:
        pause = CANCEL_FIRST_PAUSE
        status = ""
        for check in range(CANCEL_CHECKS):
            order = sdk_order(await self._rest.request("GET", path))
            status = order.status.value
            if not status_of(order).is_open:
                log.info("alpaca_order_no_longer_open", broker_order_id=broker_order_id, status=status)
                return
            if check + 1 < CANCEL_CHECKS:
                await self._rest.sleep(pause)
                pause = min(pause * 2, CANCEL_MAX_PAUSE)
        raise BrokerUnavailableError(
            f"Alpaca accepted the cancel of order {broker_order_id} but it was still {status} after "
            f"{CANCEL_CHECKS} checks; it may still fill: read it again with get_order"
        )

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
            order = sdk_order(answer, "the submitted order")
            self._orders.remember(order)
            return parsed("the submitted order", BrokerError, order_from_sdk, order)
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
