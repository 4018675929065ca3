"""Alert channels against real peers: a local HTTP server standing in for the Discord webhook, moto for SES,
and the migrated PostgreSQL for the undeliverable-alert record."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from adapters.alerts import DiscordAlertChannel, SesAlertChannel
from adapters.calendar.nyse import SystemClock
from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.postgres.uow import PgUnitOfWork
from application.alerts import AlertService
from domain.alerts import AlertRoutes
from domain.errors import AlertDeliveryError
from domain.events import Event, EventType, Severity
from domain.ports.alerts import Alert, AlertChannel, AlertStatus
from domain.ports.repositories import EventQuery

pytestmark = pytest.mark.integration
AT = datetime(2024, 3, 4, 21, 0, tzinfo=UTC)
SECRET_PATH = "/api/webhooks/123456/s3cr3t-T0KEN"


@dataclass
class Reply:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class WebhookServer(ThreadingHTTPServer):
    """A fake Discord webhook: answers from a script (then 204) and records every request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{SECRET_PATH}"


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.server.requests.append({"path": self.path, "headers": dict(self.headers),
                                     "json": json.loads(self.rfile.read(length) or b"null")})
        reply = self.server.script.pop(0) if self.server.script else Reply(204)
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        for k, v in {"Content-Type": "application/json", **reply.headers}.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    server = WebhookServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def alert(severity: Severity = Severity.CRITICAL) -> Alert:
    return Alert(EventType.BREAKER_TRIPPED.value, severity, "Circuit breaker tripped: drawdown",
                 "drawdown 10.40% > 10.00%", AT, {"Trigger": "drawdown", "Equity": "582.10"}, 7, "event:7")


class Recorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def service(pg_sessionmaker: Any, scope: str, channel: AlertChannel, sleep: Recorder,
            max_attempts: int = 5) -> AlertService:
    return AlertService(lambda: PgUnitOfWork(pg_sessionmaker, HashingEmbedder()), {channel.name: channel},
                        AlertRoutes.default(), scope=scope, clock=SystemClock(), max_attempts=max_attempts,
                        sleep=sleep)


async def test_discord_posts_one_embed_with_colour_fields_and_timestamp(webhook: WebhookServer,
                                                                         client: httpx.AsyncClient) -> None:
    await DiscordAlertChannel(webhook.url, client=client).send(alert())
    [req] = webhook.requests
    assert req["path"] == SECRET_PATH and req["headers"]["Content-Type"] == "application/json"
    body = req["json"]
    assert body["allowed_mentions"] == {"parse": []} and body["username"] == "Quorum"
    [embed] = body["embeds"]
    assert embed["title"] == "Circuit breaker tripped: drawdown"
    assert embed["description"] == "drawdown 10.40% > 10.00%"
    assert embed["color"] == 0xE74C3C
    assert embed["timestamp"] == "2024-03-04T21:00:00+00:00"
    assert embed["fields"] == [{"name": "Trigger", "value": "drawdown", "inline": True},
                               {"name": "Equity", "value": "582.10", "inline": True}]


async def test_429_retry_after_from_the_body_or_header_is_honoured(webhook: WebhookServer, client: httpx.AsyncClient,
                                                                   pg_sessionmaker: Any, scope: str) -> None:
    webhook.script = [Reply(429, {"message": "You are being rate limited.", "retry_after": 2.5, "global": False}),
                      Reply(429, None, {"Retry-After": "3"}), Reply(200, {"id": "1"})]
    sleep = Recorder()
    [result] = await service(pg_sessionmaker, scope, DiscordAlertChannel(webhook.url, client=client), sleep).send(
        alert())
    assert sleep.delays == [2.5, 3.0]
    assert (result.status, result.attempts, len(webhook.requests)) == (AlertStatus.DELIVERED, 3, 3)


async def test_5xx_is_retried_with_back_off(webhook: WebhookServer, client: httpx.AsyncClient, pg_sessionmaker: Any,
                                            scope: str) -> None:
    webhook.script = [Reply(500), Reply(502)]
    sleep = Recorder()
    [result] = await service(pg_sessionmaker, scope, DiscordAlertChannel(webhook.url, client=client), sleep).send(
        alert())
    assert sleep.delays == [1.0, 2.0]
    assert (result.status, result.attempts) == (AlertStatus.DELIVERED, 3)


async def test_400_is_not_retried(webhook: WebhookServer, client: httpx.AsyncClient, pg_sessionmaker: Any,
                                  scope: str) -> None:
    webhook.script = [Reply(400, {"message": "Invalid Form Body", "code": 50035})]
    sleep = Recorder()
    [result] = await service(pg_sessionmaker, scope, DiscordAlertChannel(webhook.url, client=client), sleep).send(
        alert())
    assert (len(webhook.requests), sleep.delays, result.status) == (1, [], AlertStatus.UNDELIVERABLE)
    assert result.error == "Discord refused the alert with HTTP 400: Invalid Form Body"


async def test_undeliverable_after_max_attempts_is_kept_in_the_database_and_the_event_log(
        webhook: WebhookServer, client: httpx.AsyncClient, pg_sessionmaker: Any, scope: str) -> None:
    webhook.script = [Reply(503) for _ in range(3)]
    sleep = Recorder()
    svc = service(pg_sessionmaker, scope, DiscordAlertChannel(webhook.url, client=client), sleep, max_attempts=3)
    event = Event(EventType.BREAKER_TRIPPED, AT, "tripped", Severity.CRITICAL, "c-1", None,
                  {"trigger": "drawdown", "reason": "drawdown 10.40% > 10.00%"}, scope, 99)
    with capture_logs() as logs:
        [result] = await svc.dispatch([event])
    assert (result.status, result.attempts, sleep.delays) == (AlertStatus.UNDELIVERABLE, 3, [1.0, 2.0])
    async with PgUnitOfWork(pg_sessionmaker, HashingEmbedder()) as uow:
        row = await uow.alerts.get(result.alert_id)  # type: ignore[arg-type]
        lost = await uow.events.query(EventQuery(scope, types=(EventType.ALERT_UNDELIVERABLE,)))
    assert row is not None
    assert (row.status, row.attempts, row.channel) == (AlertStatus.UNDELIVERABLE, 3, "discord")
    assert row.last_error == "Discord webhook failed with HTTP 503"
    assert row.alert.title == "Circuit breaker tripped: drawdown" and row.alert.dedupe_key == "event:99"
    [lost_event] = lost
    assert lost_event.payload["alert_id"] == result.alert_id and lost_event.severity is Severity.CRITICAL
    assert "s3cr3t-T0KEN" not in json.dumps(logs, default=str)


async def test_the_webhook_url_never_appears_in_errors_or_logs(client: httpx.AsyncClient) -> None:
    channel = DiscordAlertChannel("http://127.0.0.1:9" + SECRET_PATH, client=client, timeout=2)
    with capture_logs() as logs, pytest.raises(AlertDeliveryError) as caught:
        await channel.send(alert())
    assert caught.value.retryable
    assert "s3cr3t" not in str(caught.value) and "s3cr3t" not in repr(channel)
    assert "s3cr3t" not in json.dumps(logs, default=str)


async def test_an_empty_rate_limit_bucket_delays_the_next_post(webhook: WebhookServer,
                                                               client: httpx.AsyncClient) -> None:
    webhook.script = [Reply(200, {"id": "1"}, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "1.5"})]
    sleep = Recorder()
    channel = DiscordAlertChannel(webhook.url, client=client, sleep=sleep)
    await channel.send(alert())
    await channel.send(alert())
    assert len(sleep.delays) == 1 and 1.0 < sleep.delays[0] <= 1.5
    assert len(webhook.requests) == 2


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    mock_aws = pytest.importorskip("moto").mock_aws
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    import boto3

    with mock_aws():
        yield boto3.client("ses", region_name="us-east-1")


async def test_ses_sends_subject_and_body_to_every_recipient(aws: Any) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses import ses_backends

    aws.verify_email_identity(EmailAddress="quorum@example.com")
    channel = SesAlertChannel("quorum@example.com", ["me@example.com", "ops@example.com"], region="us-east-1",
                              client=aws)
    await channel.send(alert())
    [message] = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    assert message.source == "quorum@example.com"
    assert message.destinations["ToAddresses"] == ["me@example.com", "ops@example.com"]
    assert message.subject == "[Quorum CRITICAL] Circuit breaker tripped: drawdown"
    assert "drawdown 10.40% &gt; 10.00%" in message.body or "drawdown 10.40% > 10.00%" in message.body
    assert "582.10" in message.body
    assert aws.get_send_quota()["SentLast24Hours"] == 2


async def test_ses_rejects_an_unverified_sender_without_retry(aws: Any) -> None:
    channel = SesAlertChannel("nobody@example.com", ["me@example.com"], client=aws)
    with pytest.raises(AlertDeliveryError) as caught:
        await channel.send(alert())
    assert not caught.value.retryable and "MessageRejected" in str(caught.value)


async def test_ses_throttling_is_retryable() -> None:
    from botocore.exceptions import ClientError

    class Throttled:
        def send_email(self, **_: Any) -> None:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Maximum sending rate exceeded."}},
                              "SendEmail")

    with pytest.raises(AlertDeliveryError) as caught:
        await SesAlertChannel("a@example.com", ["b@example.com"], client=Throttled()).send(alert())
    assert caught.value.retryable and "Throttling" in str(caught.value)


async def test_the_alert_service_retries_ses_throttling_and_delivers(aws: Any, pg_sessionmaker: Any,
                                                                     scope: str) -> None:
    from botocore.exceptions import ClientError

    aws.verify_email_identity(EmailAddress="quorum@example.com")

    class ThrottledOnce:
        calls = 0

        def send_email(self, **kw: Any) -> Any:
            ThrottledOnce.calls += 1
            if ThrottledOnce.calls == 1:
                raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "SendEmail")
            return aws.send_email(**kw)

    sleep = Recorder()
    channel = SesAlertChannel("quorum@example.com", ["me@example.com"], client=ThrottledOnce())
    [result] = await service(pg_sessionmaker, scope, channel, sleep).send(alert())
    assert (result.channel, result.status, result.attempts, sleep.delays) == ("email", AlertStatus.DELIVERED, 2,
                                                                              [1.0])
    assert aws.get_send_quota()["SentLast24Hours"] == 1
