"""SesAlertChannel: alerts as emails sent through AWS SES (boto3 `send_email`, run in a worker thread)."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from domain.errors import AlertDeliveryError
from domain.events import Severity
from domain.ports.alerts import Alert, AlertChannel

RETRYABLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "TooManyRequestsException", "ServiceUnavailable",
    "ServiceUnavailableException", "InternalFailure", "InternalError", "RequestTimeout", "RequestTimeoutException",
})
_SUBJECT_LIMIT = 200


def subject(alert: Alert) -> str:
    """The email subject: severity and title."""
    text = f"[Quorum {Severity(alert.severity).value.upper()}] {alert.title}"
    return text if len(text) <= _SUBJECT_LIMIT else text[: _SUBJECT_LIMIT - 1] + "…"


def text_body(alert: Alert) -> str:
    """The plain-text email body."""
    lines = [alert.title, "", alert.body, ""]
    lines += [f"{k}: {v}" for k, v in alert.fields.items()]
    lines += ["", f"{alert.type} · {Severity(alert.severity).value} · {alert.at.isoformat()}"]
    return "\n".join(lines)


def html_body(alert: Alert) -> str:
    """The HTML email body (everything escaped)."""
    rows = "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                   for k, v in alert.fields.items())
    body = html.escape(alert.body).replace("\n", "<br>")
    return (f"<h2>{html.escape(alert.title)}</h2><p>{body}</p><table>{rows}</table>"
            f"<p><small>{html.escape(alert.type)} · {Severity(alert.severity).value} · "
            f"{alert.at.isoformat()}</small></p>")


class SesAlertChannel(AlertChannel):
    """Implements `AlertChannel` on AWS SES.

    Args:
        sender: the verified From address.
        recipients: To addresses.
        region: the AWS region of SES.
        client: a boto3 SES client (created from the default credential chain when None).
        name: the channel name used in routes.
    """

    def __init__(self, sender: str, recipients: Sequence[str], *, region: str = "us-east-1", client: Any = None,
                 name: str = "email") -> None:
        if not sender or not recipients:
            raise ValueError("SES alerts need a sender and at least one recipient")
        self.name = name
        self._sender = sender
        self._recipients = list(recipients)
        self._region = region
        self._client = client

    def _ses(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("ses", region_name=self._region)
        return self._client

    async def send(self, alert: Alert) -> None:
        """Email `alert` to the recipients.

        Raises:
            AlertDeliveryError: throttling, service and connection errors are retryable; rejected messages,
                unverified senders and missing credentials are not.
        """
        await asyncio.to_thread(self._send, alert)

    def _send(self, alert: Alert) -> None:
        message = {
            "Subject": {"Data": subject(alert), "Charset": "UTF-8"},
            "Body": {"Text": {"Data": text_body(alert), "Charset": "UTF-8"},
                     "Html": {"Data": html_body(alert), "Charset": "UTF-8"}},
        }
        try:
            self._ses().send_email(Source=self._sender, Destination={"ToAddresses": self._recipients},
                                   Message=message)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = str(err.get("Code", "Unknown"))
            raise AlertDeliveryError(f"SES {code}: {err.get('Message', '')}".strip(),
                                     retryable=code in RETRYABLE_CODES) from None
        except NoCredentialsError:
            raise AlertDeliveryError("SES: no AWS credentials found", retryable=False) from None
        except EndpointConnectionError:
            raise AlertDeliveryError(f"SES endpoint of {self._region} unreachable", retryable=True) from None
        except BotoCoreError as exc:
            raise AlertDeliveryError(f"SES failed: {type(exc).__name__}", retryable=True) from None
