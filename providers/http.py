"""What every provider that speaks HTTP shares: one pooled `requests.Session`, explicit timeouts, a
total deadline per call, and transport failures sorted into the error taxonomy before any
provider-specific code sees them.

The deadline (PROVIDER_CONNECT_TIMEOUT + PROVIDER_READ_TIMEOUT, for the whole call) matters because
`requests`' own timeouts bound each socket read: an answer trickling in would otherwise hold a call,
and its worker thread, without end.

A timeout, a refused connection, or an answer that is not the provider's JSON (an HTML page from a
proxy or load balancer) is transient: worth another attempt later.

`HttpProvider.transmit` is the flow every HTTP provider follows, so a provider only fills in its hooks:
`build_request` (the path and body for a message), `accepted` (the SendResult when the answer is a
success), and optionally `known_error` (its own code table). Whatever the table does not know falls to
`http_error`, the one HTTP-status fallback: 429 and 5xx transient (429 throttles the sender), 401/403
configuration, a success without a message id transient, any other status permanent.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from typing import Any
from urllib.parse import quote

import requests

from providers.base import (
    DEBUG_ANSWER_CHARS,
    OutboundMessage,
    PermanentProviderError,
    Provider,
    ProviderConfigurationError,
    ProviderError,
    SendResult,
    TransientProviderError,
)
from providers.deadline import DeadlineAdapter, deadline
from providers.redaction import redact

log = logging.getLogger(__name__)


class HttpProvider(Provider):
    """A provider reached over HTTP: `transmit` builds the request, sends it, reads the answer, and returns the
    SendResult or raises the error the answer means. Subclasses fill in the hooks below.

    The fallback's error texts are templates with `{label}`, `{status}`, `{code}` and `{detail}`, so each
    provider keeps its own wording: override a template, `label`, `error_code` or `error_detail`.
    """

    label = "provider"  # how the error texts name the provider ("Evolution API")
    busy_text = "{label} busy or failing (HTTP {status}): {detail}"
    credentials_text = "{label} refused the credentials (HTTP {status}): {detail}"
    refused_text = "{label} refused the message (HTTP {status}): {detail}"
    no_id_text = "{label} answered without a message id: {detail}"

    def __init__(self, base_url: str, connect_timeout: float = 3.05, read_timeout: float = 30.0, pool_size: int = 50):
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.session = requests.Session()
        adapter = DeadlineAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def transmit(self, message: OutboundMessage) -> SendResult:
        path, body = self.build_request(message)
        if log.isEnabledFor(logging.DEBUG):
            shown = redact(
                json.dumps(body, ensure_ascii=False, default=str), message.recipient, limit=DEBUG_ANSWER_CHARS
            )
            log.debug(
                "[%s_API_REQUEST] %s %s", self.name.upper(), path, shown, extra={"message_id": message.message_id}
            )
        response = self.request("POST", path, **body)
        answer = self.read_answer(response, message)
        result = self.accepted(response.status_code, answer, message)
        if result is not None:
            return result
        # Providers' error answers quote the number and at times the text: `send` redacts them.
        raise self.classify(response.status_code, answer, retry_after(response))

    # --- the hooks ---

    def build_request(self, message: OutboundMessage) -> tuple[str, dict[str, Any]]:
        """The path (after the base URL) to POST `message` to, and the body as `requests` takes it:
        `{"json": ...}` or `{"data": ...}`."""
        raise NotImplementedError

    def accepted(self, status: int, answer: Any, message: OutboundMessage) -> SendResult | None:
        """The SendResult when the answer says the provider took the message; None makes it an error."""
        raise NotImplementedError

    def known_error(self, status: int, answer: Any, wait: float | None) -> ProviderError | None:
        """The provider's own code table: the error its answer's code means, or None to let the HTTP status decide."""
        return None

    def read_answer(self, response: requests.Response, message: OutboundMessage) -> Any:
        """The answer as `accepted` and the error hooks see it: its JSON (anything else is transient)."""
        return self.json_or_transient(response)

    def error_code(self, status: int, answer: Any) -> str:
        """The code an error keeps: the provider's own when its answer has one."""
        return f"http_{status}"

    def error_detail(self, answer: Any) -> str:
        """What of the answer an error's text quotes."""
        return json.dumps(answer, ensure_ascii=False)

    # --- the flow's end ---

    def error_text(self, template: str, status: int, answer: Any) -> str:
        words = {"label": self.label, "status": status, "code": self.error_code(status, answer)}
        return template.format(**words, detail=self.error_detail(answer))

    def classify(self, status: int, answer: Any, wait: float | None) -> ProviderError:
        """The provider's code table first, then the HTTP status."""
        error = self.known_error(status, answer, wait) or self.http_error(status, answer, wait)
        error.provider, error.status = self.name, status
        return error

    def http_error(self, status: int, answer: Any, wait: float | None) -> ProviderError:
        """The one HTTP-status fallback, for every provider."""
        code = self.error_code(status, answer)
        if status == 429 or status >= 500:
            text = self.error_text(self.busy_text, status, answer)
            return TransientProviderError(text, code, answer, wait, throttled=status == 429)
        if status in (401, 403):
            return ProviderConfigurationError(self.error_text(self.credentials_text, status, answer), code, answer)
        if status < 400:
            return TransientProviderError(self.error_text(self.no_id_text, status, answer), "no_message_id", answer)
        return PermanentProviderError(self.error_text(self.refused_text, status, answer), code, answer)

    # --- transport ---

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One HTTP call; a timeout or a connection failure becomes a TransientProviderError."""
        url = f"{self.base_url}{path}"
        limit = sum(self.timeout)
        try:
            with deadline(limit) as call:
                try:
                    return self.session.request(method, url, timeout=self.timeout, **kwargs)
                except requests.RequestException as error:
                    if not call.expired:
                        raise
                    raise TransientProviderError(
                        f"{self.name}: no complete answer within {limit:g} s ({type(error).__name__})",
                        code="deadline",
                        provider=self.name,
                    ) from error
        except requests.Timeout as error:
            raise TransientProviderError(
                f"{self.name}: no answer within {self.timeout[1]} s", code="timeout", provider=self.name
            ) from error
        except requests.ConnectionError as error:
            raise TransientProviderError(
                f"{self.name}: cannot reach {self.base_url}: {type(error).__name__}",
                code="connection_error",
                provider=self.name,
            ) from error

    def json_or_transient(self, response: requests.Response) -> Any:
        """The answer's JSON; anything else (a proxy's HTML page) is a transient error."""
        try:
            return response.json()
        except ValueError as error:
            raise TransientProviderError(
                f"{self.name}: HTTP {response.status_code} answer is not JSON "
                f"({response.headers.get('Content-Type', 'no content type')})",
                code=f"http_{response.status_code}",
                raw=response.text[:500],
                retry_after=retry_after(response),
                provider=self.name,
                status=response.status_code,
            ) from error


def retry_after(response: requests.Response) -> float | None:
    """The Retry-After header in seconds (it may be seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def path_segment(name: str) -> str:
    """`name` (an instance, a phone-number id) as exactly one segment of a provider's URL path.

    Percent-encoded, so a `/`, `?`, `#` or `%` in it stays inside its segment; and never empty, `.` or `..`,
    which no encoding keeps in place (requests turns `%2E%2E` back into `..`, and clients and proxies
    resolve dot segments against the path). Names are checked where they enter the service; this keeps one
    that slipped through from reaching another route of the provider.
    """
    if name in ("", ".", ".."):
        raise ProviderConfigurationError(f"{name!r} cannot name a provider resource in a URL path", "invalid_name")
    return quote(name, safe="")
