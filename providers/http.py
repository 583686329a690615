"""What every provider that speaks HTTP shares: one pooled `requests.Session`, explicit timeouts, a
total deadline per call, and transport failures sorted into the error taxonomy before any
provider-specific code sees them.

The deadline (PROVIDER_CONNECT_TIMEOUT + PROVIDER_READ_TIMEOUT, for the whole call) matters because
`requests`' own timeouts bound each socket read: an answer trickling in would otherwise hold a call,
and its worker thread, without end.

A timeout, a refused connection, or an answer that is not the provider's JSON (an HTML page from a
proxy or load balancer) is transient: worth another attempt later.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any
from urllib.parse import quote

import requests

from providers.base import Provider, ProviderConfigurationError, TransientProviderError
from providers.deadline import DeadlineAdapter, deadline


class HttpProvider(Provider):
    def __init__(self, base_url: str, connect_timeout: float = 3.05, read_timeout: float = 30.0, pool_size: int = 50):
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.session = requests.Session()
        adapter = DeadlineAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

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
                    ) from None
        except requests.Timeout:
            raise TransientProviderError(f"{self.name}: no answer within {self.timeout[1]} s", code="timeout") from None
        except requests.ConnectionError as error:
            raise TransientProviderError(
                f"{self.name}: cannot reach {self.base_url}: {type(error).__name__}", code="connection_error"
            ) from None

    def json_or_transient(self, response: requests.Response) -> Any:
        """The answer's JSON; anything else (a proxy's HTML page) is a transient error."""
        try:
            return response.json()
        except ValueError:
            raise TransientProviderError(
                f"{self.name}: HTTP {response.status_code} answer is not JSON "
                f"({response.headers.get('Content-Type', 'no content type')})",
                code=f"http_{response.status_code}",
                raw=response.text[:500],
                retry_after=retry_after(response),
            ) from None


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
