"""Settings, read once from the environment and validated before anything starts.

Every process (API, worker, Flower, the reconciler) reads the same variables, so a wrong value
stops each of them at start with a message naming the variable, instead of failing later on the
first message. Names that come from the legacy systems keep their meaning and defaults.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlsplit

from dotenv import load_dotenv

from dispatcher.accounts import ApiKey, parse_api_keys
from dispatcher.dev_stack import apply_running_stack
from dispatcher.provider_registry import PROVIDERS, Pacing, Shared
from dispatcher.send_window import SendWindow
from dispatcher.settings_reader import Reader, SettingsError
from providers.inbound import InboundAdapter

PROVIDER_NAMES = tuple(PROVIDERS)
LOG_LEVELS = ("debug", "info", "warning", "warn", "error", "critical")
LEASE_EXPIRED_ACTIONS = ("resend", "fail")
REDIS_TLS_VERIFY = ("required", "none")


# The largest bulk body by default: 10,000 rows of a templated campaign (a number, an external_id and a few
# variables: under 300 bytes each) fit with room to spare, and no single request can write much more than
# this into Redis. Rows that each carry a long text of their own come in several requests, or with more.
BULK_MAX_BYTES_DEFAULT = 8 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """The service's whole configuration. Field docs live in `.env.example` and docs/configuration.md."""

    environment: str
    host: str
    port: int
    log_level: str
    api_keys: tuple[ApiKey, ...]
    whatsapp_provider: str
    redis_url: str
    queue_name: str
    job_attempts: int
    job_backoff_delay_ms: int
    job_backoff_max_ms: int
    job_remove_on_complete: int | None
    job_remove_on_fail: int | None
    worker_concurrency: int
    worker_pool: str
    worker_rate_limit: str | None
    # Celery's task events, which Flower's task list is made of: three a task, published in batches
    # (tasks/event_batches.py), a few percent of a single send's rate (docs/performance.md). Off, Flower still
    # shows workers and queues, not tasks.
    task_events: bool
    worker_api_call_delay_ms: int
    default_region: str
    message_retention_days: int
    message_validity_seconds: int | None  # how long a message may wait unsent by default (None: for ever)
    pool_sticky_days: int  # how long a pool remembers which member wrote to a recipient
    message_body_max_chars: int
    bulk_max_messages: int
    bulk_chunk_size: int
    bulk_max_bytes: int
    send_lease_seconds: int
    lease_expired_action: str
    queued_republish_after_seconds: int
    reconcile_interval_seconds: int
    whatsapp_providers: tuple[str, ...] = ()
    provider_connect_timeout: float = 3.05
    provider_read_timeout: float = 30.0
    public_base_url: str = ""
    # provider → its settings (dispatcher/provider_registry.py), for each provider enabled
    provider_settings: dict = field(default_factory=dict)
    # provider → (messages per second, burst, jitter); a rate of 0 means not paced.
    sender_limits: dict = field(default_factory=dict)
    auto_pause_window: int = 50
    auto_pause_ratio: float = 0.2
    send_window: SendWindow | None = None
    callbacks: CallbackSettings = field(default_factory=lambda: CallbackSettings())
    inbound: dict = field(default_factory=dict)  # provider → its webhook adapter, holding its secrets
    metrics_token: str = ""  # a bearer token for /metrics; without it, /metrics takes an operator key
    admin_api_keys: tuple[str, ...] = ()  # ADMIN_API_KEY: the operators' keys
    quotas: QuotaSettings = field(default_factory=lambda: QuotaSettings())
    contacts: ContactSettings = field(default_factory=lambda: ContactSettings())

    @property
    def session_window_providers(self) -> tuple[str, ...]:
        """The enabled providers whose free-form sends must fall within the contact's 24-hour window: those that
        WhatsApp holds to it, unless SESSION_WINDOW=off; by default only where their webhook is configured (only
        then do we see the replies that open it), with SESSION_WINDOW=enforce even where it is not."""
        mode = self.contacts.session_window
        return tuple(
            name
            for name in self.whatsapp_providers
            if PROVIDERS[name].session_window
            and (mode == "enforce" or (mode == "auto" and name in self.inbound and self.inbound[name].receives))
        )

    @property
    def api_keys_act_as_operator(self) -> bool:
        """In development with no ADMIN_API_KEY, the API keys open operator routes too (`make run` is one command)."""
        return self.environment == "development" and not self.admin_api_keys

    @property
    def message_retention_seconds(self) -> int:
        return self.message_retention_days * 86400


@dataclass(frozen=True)
class QuotaSettings:
    """What one account may ask of us: requests a second (a token bucket shared by every web process) and
    messages a UTC day. A rate or count of 0 means no limit."""

    requests_per_second: float = 0.0
    burst: int = 0  # the bucket's size: requests allowed at once after a quiet spell
    messages_per_day: int = 0


# Replies whose whole text (trimmed, any case, accents ignored) opts the contact out, or back in. Meta's marketing
# templates carry a "Stop promotions" button, whose tap comes back as a reply with that text.
OPT_OUT_KEYWORDS = ("SAIR", "PARAR", "CANCELAR", "DESCADASTRAR", "NÃO QUERO MAIS", "STOP", "UNSUBSCRIBE", "BAJA",
                    "STOP PROMOTIONS")  # fmt: skip
OPT_IN_KEYWORDS = ("VOLTAR", "START")
SESSION_WINDOW_MODES = ("enforce", "off")


@dataclass(frozen=True)
class ContactSettings:
    """Contacts' rules (dispatcher/contacts.py): opt-outs, the 24-hour window, messages a contact a day."""

    opt_out_keywords: tuple[str, ...] = OPT_OUT_KEYWORDS
    opt_in_keywords: tuple[str, ...] = OPT_IN_KEYWORDS
    opt_out_reply: str = ""  # OPT_OUT_REPLY: sent once, through the same sender, to a contact who opts out by reply
    session_window: str = "auto"  # SESSION_WINDOW: enforce, off, or unset (auto: where the webhook is configured)
    daily_cap: int = 0  # CONTACT_DAILY_CAP: an account's messages a contact a UTC day; 0 = no cap
    daily_cap_by_account: dict = field(default_factory=dict)  # CONTACT_DAILY_CAP_BY_ACCOUNT: account → its own cap

    def cap_for(self, account: str) -> int:
        return self.daily_cap_by_account.get(account, self.daily_cap)


@dataclass(frozen=True)
class CallbackSettings:
    """Status events we POST to the caller (reach-town): where by default, signed with what, for how long."""

    status_webhook_url: str = ""  # for messages sent without a callback_url of their own
    secret: str = ""  # WEBHOOK_SECRET: the HMAC key of X-Dispatcher-Signature
    account_secrets: dict = field(default_factory=dict)  # CALLBACK_SECRETS: account → its own HMAC key
    allowlist: tuple[str, ...] = ()  # addresses and CIDR ranges allowed although private; names lift `localhost`
    timeout_seconds: float = 5.0
    retry_for_seconds: int = 86400  # then the delivery is dead
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 3600.0
    queue_name: str = "dispatch-callbacks"

    def secret_for(self, account: str | None) -> str:
        """The key that signs `account`'s events: its own (CALLBACK_SECRETS), else WEBHOOK_SECRET."""
        return self.account_secrets.get(account, self.secret) if account else self.secret


def _redis_url(read: Reader) -> str:
    """REDIS_URL wins (Heroku's convention, rediss:// included); else REDIS_HOST/PORT/PASSWORD."""
    url = read.raw("REDIS_URL")
    if url is not None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(f"REDIS_URL must start with redis://, rediss:// or unix://; got {url.split(':')[0]!r}")
        return url
    host = read.text("REDIS_HOST", "127.0.0.1")
    port = read.integer("REDIS_PORT", 6379, minimum=1, maximum=65535)
    password = read.raw("REDIS_PASSWORD")
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{host}:{port}/0"


def _redis_tls(read: Reader, url: str) -> str:
    """REDIS_TLS_VERIFY=none puts `ssl_cert_reqs=none` on a rediss:// URL; `required` (the default) leaves it as is.

    Heroku Redis serves TLS with a self-signed certificate that no client can verify, while a managed Redis with a
    real certificate should be verified. The choice travels in the URL so that every client built from it agrees:
    redis-py in the API and the tasks, Celery's broker, the control app that pings workers (see `redis_ssl_options`).
    A `ssl_cert_reqs` already in REDIS_URL is kept.
    """
    verify = read.choice("REDIS_TLS_VERIFY", "required", REDIS_TLS_VERIFY)
    parts = urlsplit(url)
    if verify == "required" or parts.scheme != "rediss" or "ssl_cert_reqs" in parse_qs(parts.query):
        return url
    return parts._replace(query="&".join(filter(None, [parts.query, "ssl_cert_reqs=none"]))).geturl()


def redis_ssl_options(url: str) -> dict[str, int] | None:
    """The TLS options for a Redis client of `url`: None for redis://, else whether to verify the certificate.

    Celery's broker needs them spelled out: kombu, given a rediss:// URL and no `broker_use_ssl`, does not verify
    the certificate at all (it warns and goes on), whereas redis-py verifies by default. Verifying unless the URL
    says `ssl_cert_reqs=none` (or `optional`) makes both behave the same, and fail safe.
    """
    parts = urlsplit(url)
    if parts.scheme != "rediss":
        return None
    wanted = parse_qs(parts.query).get("ssl_cert_reqs", ["required"])[0].lower().removeprefix("cert_")
    return {"ssl_cert_reqs": {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL}.get(wanted, ssl.CERT_REQUIRED)}


def _listed(read: Reader, name: str) -> list[str]:
    """A comma-separated variable's non-empty entries."""
    return [entry.strip() for entry in (read.raw(name) or "").split(",") if entry.strip()]


def _api_keys(read: Reader) -> tuple[ApiKey, ...]:
    if read.raw("API_KEY") is None:
        raise SettingsError("API_KEY must be set: one key, or several separated by commas, each `key` or `account:key`")
    try:
        keys = parse_api_keys(_listed(read, "API_KEY"))
    except ValueError as error:
        raise SettingsError(f"API_KEY: {error}") from None
    if not keys:
        raise SettingsError("API_KEY must hold at least one non-empty key")
    return keys


def _account_secrets(read: Reader) -> dict[str, str]:
    """CALLBACK_SECRETS: `account:secret` entries, so one tenant's receiver cannot be fed events signed by
    another's key."""
    secrets = {}
    for entry in _listed(read, "CALLBACK_SECRETS"):
        account, colon, secret = entry.partition(":")
        if not colon or not account.strip() or not secret.strip():
            raise SettingsError(f"CALLBACK_SECRETS entries must look like account:secret; got {account.strip()!r}:...")
        if len(secret.strip()) < 16:
            raise SettingsError(
                f"CALLBACK_SECRETS: the secret of account {account.strip()!r} must be at least 16 characters"
            )
        secrets[account.strip()] = secret.strip()
    return secrets


def _quotas(read: Reader) -> QuotaSettings:
    rate = read.number("ACCOUNT_REQUESTS_PER_SECOND", 100.0, 0.0, "requests a second")
    return QuotaSettings(
        requests_per_second=rate,
        burst=read.integer("ACCOUNT_REQUEST_BURST", max(1, round(rate * 2)), minimum=1),
        messages_per_day=read.integer("ACCOUNT_MESSAGES_PER_DAY", 0),
    )


def _contacts(read: Reader) -> ContactSettings:
    opt_out = tuple(_listed(read, "OPT_OUT_KEYWORDS")) or OPT_OUT_KEYWORDS
    opt_in = tuple(_listed(read, "OPT_IN_KEYWORDS")) or OPT_IN_KEYWORDS
    both = {word.casefold() for word in opt_out} & {word.casefold() for word in opt_in}
    if both:
        word = sorted(both)[0]
        raise SettingsError(f"OPT_OUT_KEYWORDS and OPT_IN_KEYWORDS must not share a word; both hold {word!r}")
    mode = read.raw("SESSION_WINDOW")
    if mode is not None and mode.strip().lower() not in SESSION_WINDOW_MODES:
        raise SettingsError(f"SESSION_WINDOW must be enforce or off (unset: where the webhook is set); got {mode!r}")
    caps = {}
    for entry in _listed(read, "CONTACT_DAILY_CAP_BY_ACCOUNT"):
        account, _, cap = entry.partition(":")
        if not account.strip() or not cap.strip().isdigit():
            raise SettingsError(f"CONTACT_DAILY_CAP_BY_ACCOUNT entries must look like account:5; got {entry!r}")
        caps[account.strip()] = int(cap)
    return ContactSettings(
        opt_out_keywords=opt_out,
        opt_in_keywords=opt_in,
        opt_out_reply=(read.raw("OPT_OUT_REPLY") or "").strip(),
        session_window=mode.strip().lower() if mode is not None else "auto",
        daily_cap=read.integer("CONTACT_DAILY_CAP", 0),
        daily_cap_by_account=caps,
    )


def _message_validity(read: Reader, retention_days: int) -> int | None:
    """MESSAGE_VALIDITY_SECONDS: how long a message may wait unsent when its request gives no valid_for or
    expires_at (unset: for ever). At most the retention, as a request's own validity: a validity of months is
    more likely a slip than a plan."""
    seconds = read.integer("MESSAGE_VALIDITY_SECONDS", 0, minimum=1)
    if seconds > retention_days * 86400:
        raise SettingsError(
            f"MESSAGE_VALIDITY_SECONDS must be at most MESSAGE_RETENTION_DAYS ({retention_days} days, "
            f"{retention_days * 86400} seconds); got {seconds}"
        )
    return seconds or None


def _worker_rate_limit(read: Reader) -> str | None:
    value = read.raw("WORKER_RATE_LIMIT")
    if value is None:
        return None
    number, _, unit = value.partition("/")
    if not number.replace(".", "", 1).isdigit() or unit not in ("", "s", "m", "h"):
        raise SettingsError(f"WORKER_RATE_LIMIT must look like 100/s, 600/m or 3600/h; got {value!r}")
    return value


def _providers(read: Reader, default: str) -> tuple[str, ...]:
    """WHATSAPP_PROVIDERS: every provider a request may choose; WHATSAPP_PROVIDER is always one of them."""
    listed = read.raw("WHATSAPP_PROVIDERS")
    names = tuple(part.strip().lower() for part in listed.split(",") if part.strip()) if listed else ()
    for name in names:
        if name not in PROVIDER_NAMES:
            raise SettingsError(f"WHATSAPP_PROVIDERS must list names from {', '.join(PROVIDER_NAMES)}; got {name!r}")
    return (default, *(name for name in names if name != default))


def _sender_limits(read: Reader, shared: Shared) -> dict[str, Pacing]:
    """Each provider's default pace per sender (its declaration's `pacing`), which SENDER_RATE_<PROVIDER>
    (messages/s), SENDER_BURST_<PROVIDER> and SENDER_JITTER_<PROVIDER> (each gap varies by up to ± that share
    of the interval) override."""
    limits = {}
    for provider, declaration in PROVIDERS.items():
        rate, burst, jitter = declaration.pacing(shared)
        name = provider.upper()
        limits[provider] = (
            read.number(f"SENDER_RATE_{name}", rate, 0.0, "messages per second"),
            read.integer(f"SENDER_BURST_{name}", burst, minimum=1, maximum=10_000),
            read.fraction(f"SENDER_JITTER_{name}", jitter),
        )
    return limits


def _callbacks(read: Reader) -> CallbackSettings:
    url = read.url("STATUS_WEBHOOK_URL", required=False)
    secret = read.raw("WEBHOOK_SECRET") or ""
    if url and not secret:
        raise SettingsError("WEBHOOK_SECRET must be set when STATUS_WEBHOOK_URL is: every callback is signed")
    if secret and len(secret) < 16:
        raise SettingsError("WEBHOOK_SECRET must be at least 16 characters long")
    listed = read.raw("CALLBACK_URL_ALLOWLIST") or ""
    allowlist = tuple(part.strip().lower() for part in listed.split(",") if part.strip())
    for entry in allowlist:
        if "/" in entry:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise SettingsError(f"CALLBACK_URL_ALLOWLIST holds host names and CIDR ranges; got {entry!r}") from None
    return CallbackSettings(
        status_webhook_url=url,
        secret=secret,
        account_secrets=_account_secrets(read),
        allowlist=allowlist,
        timeout_seconds=_callback_timeout(read),
        retry_for_seconds=read.integer("CALLBACK_RETRY_FOR", 86400, minimum=1),
        backoff_base_seconds=read.number("CALLBACK_BACKOFF_BASE", 1.0, 0.01, "seconds"),
        backoff_max_seconds=read.number("CALLBACK_BACKOFF_MAX", 3600.0, 0.01, "seconds"),
        queue_name=read.text("CALLBACK_QUEUE_NAME", "dispatch-callbacks"),
    )


# A callbacks task holds its chain's lease (60 s, tasks/callbacks.py) for a 20 s budget plus one last
# delivery: a delivery must end well within what is left, or a second task could deliver beside it.
CALLBACK_TIMEOUT_MAX = 30.0


def _callback_timeout(read: Reader) -> float:
    timeout = read.number("CALLBACK_TIMEOUT", 5.0, 0.1, "seconds")
    if timeout > CALLBACK_TIMEOUT_MAX:
        raise SettingsError(
            f"CALLBACK_TIMEOUT must be at most {CALLBACK_TIMEOUT_MAX:g} seconds (a delivery must end within its "
            f"chain's lease); got {timeout:g}"
        )
    return timeout


def _inbound(read: Reader) -> dict[str, InboundAdapter]:
    """Every provider's webhook adapter with its secrets (read whether the provider sends or not: replies and
    reports may come in for a provider no longer used to send)."""
    adapters = {}
    for name, declaration in PROVIDERS.items():
        if (adapter := declaration.inbound) is not None:
            adapters[name] = adapter(**{field: read.raw(variable) or "" for field, variable in adapter.SECRETS.items()})
    return adapters


def _send_window(read: Reader) -> SendWindow | None:
    text = read.raw("SEND_WINDOW")
    if text is None:
        return None
    zone = read.text("SEND_TIMEZONE", "America/Sao_Paulo")
    try:
        return SendWindow.parse(text, zone)
    except (ValueError, KeyError):
        raise SettingsError(
            f"SEND_WINDOW must look like 08:00-20:00 and SEND_TIMEZONE name a zone such as America/Sao_Paulo; "
            f"got {text!r} in {zone!r}"
        ) from None


# Secrets, and how to find the secret parts of each value. In production each must be at least
# SECRET_MIN_CHARS long and none may be a value our own files ship: the seeds' and `make run`'s development
# key, `.env.example`'s placeholders, Flower's development login.
SECRET_MIN_CHARS = 16
DEVELOPMENT_VALUES = ("dev-api-key-12345", "admin", "change-me", "changeme", "password", "secret")
PLACEHOLDER_PREFIX = "replace-with-"


def _after_colon(entry: str) -> str:
    return entry.partition(":")[2] if ":" in entry else entry


SECRET_PARTS: dict[str, Callable[[str], str]] = {
    "API_KEY": _after_colon,  # account:key
    "ADMIN_API_KEY": str,
    "WEBHOOK_SECRET": str,
    "CALLBACK_SECRETS": _after_colon,  # account:secret
    "FLOWER_BASIC_AUTH": _after_colon,  # user:password
    "EVOLUTION_WEBHOOK_SECRET": str,
    "META_WEBHOOK_VERIFY_TOKEN": str,
    "WEBHOOK_PROVIDER_SECRET": str,
    "METRICS_TOKEN": str,
}


def refuse_development_secrets(env: Mapping[str, str]) -> None:
    """In production: every secret set is long, and none is a development value; the error names the variable."""
    for name, part in SECRET_PARTS.items():
        for entry in filter(None, (entry.strip() for entry in (env.get(name) or "").split(","))):
            secret = part(entry).strip()
            if secret.lower() in DEVELOPMENT_VALUES or secret.lower().startswith(PLACEHOLDER_PREFIX):
                raise SettingsError(f"{name} holds a development value or a placeholder: set a secret of your own")
            if len(secret) < SECRET_MIN_CHARS:
                raise SettingsError(
                    f"{name}: every secret must be at least {SECRET_MIN_CHARS} characters in production"
                )


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from `env` (default: the process environment after loading `.env` and, in development
    with no Redis configured, what a running `make run` gave its stack: dispatcher/dev_stack.py)."""
    if env is None:
        load_dotenv(override=False)
        apply_running_stack(os.environ)
        env = os.environ
    read = Reader(env)
    region = read.text("DEFAULT_REGION", "BR").upper()
    if len(region) != 2 or not region.isalpha():
        raise SettingsError(f"DEFAULT_REGION must be a two-letter country code such as BR; got {region!r}")
    provider = read.choice("WHATSAPP_PROVIDER", "mock", PROVIDER_NAMES)
    public_base_url = read.url("PUBLIC_BASE_URL", required=False)
    providers = _providers(read, provider)
    read_timeout = read.number("PROVIDER_READ_TIMEOUT", 30.0, 0.1, "seconds")
    connect_timeout = read.number("PROVIDER_CONNECT_TIMEOUT", 3.05, 0.1, "seconds")
    shared = Shared(read_timeout, public_base_url, read.integer("WORKER_API_CALL_DELAY", 1000))
    # The lease is renewed every third of it while its holder lives (tasks/leases.py), so it need not outlast
    # a provider call: it is how long a dead worker's messages wait before another worker takes them.
    lease = read.integer("SEND_LEASE_SECONDS", 6, minimum=2)
    environment = read.choice("APP_ENV", read.text("NODE_ENV", "production"), ("development", "production", "test"))
    retention_days = read.integer("MESSAGE_RETENTION_DAYS", 30, minimum=1)
    if environment == "production":
        refuse_development_secrets(env)
    return Settings(
        environment=environment,
        host=read.text("HOST", "0.0.0.0"),
        port=read.integer("PORT", 3001, minimum=1, maximum=65535),
        log_level=read.choice("LOG_LEVEL", "info", LOG_LEVELS),
        api_keys=_api_keys(read),
        whatsapp_provider=provider,
        redis_url=_redis_tls(read, _redis_url(read)),
        queue_name=read.text("QUEUE_NAME", "message-dispatch-queue"),
        job_attempts=read.integer("JOB_ATTEMPTS", 3, minimum=1, maximum=100),
        job_backoff_delay_ms=read.integer("JOB_BACKOFF_DELAY", 5000),
        job_backoff_max_ms=read.integer("JOB_BACKOFF_MAX", 300_000),
        job_remove_on_complete=read.keep_count("JOB_REMOVE_ON_COMPLETE", None),
        job_remove_on_fail=read.keep_count("JOB_REMOVE_ON_FAIL", 1000),
        worker_concurrency=read.integer("WORKER_CONCURRENCY", 5, minimum=1, maximum=1000),
        worker_pool=read.choice("WORKER_POOL", "threads", ("threads", "prefork", "solo")),
        worker_rate_limit=_worker_rate_limit(read),
        task_events=read.choice("TASK_EVENTS", "on", ("on", "off")) == "on",
        worker_api_call_delay_ms=read.integer("WORKER_API_CALL_DELAY", 1000),
        default_region=region,
        message_retention_days=retention_days,
        message_validity_seconds=_message_validity(read, retention_days),
        pool_sticky_days=read.integer("POOL_STICKY_DAYS", 30, minimum=1, maximum=3650),
        message_body_max_chars=read.integer("MESSAGE_BODY_MAX_CHARS", 4096, minimum=1),
        bulk_max_messages=read.integer("BULK_MAX_MESSAGES", 10_000, minimum=1, maximum=100_000),
        bulk_chunk_size=read.integer("BULK_CHUNK_SIZE", 500, minimum=1, maximum=10_000),
        bulk_max_bytes=read.integer("BULK_MAX_BYTES", BULK_MAX_BYTES_DEFAULT, minimum=1024),
        send_lease_seconds=lease,
        lease_expired_action=read.choice("LEASE_EXPIRED_ACTION", "resend", LEASE_EXPIRED_ACTIONS),
        queued_republish_after_seconds=read.integer("QUEUED_REPUBLISH_AFTER", 300, minimum=1),
        reconcile_interval_seconds=read.integer("RECONCILE_INTERVAL", 2, minimum=1),
        whatsapp_providers=providers,
        provider_connect_timeout=connect_timeout,
        provider_read_timeout=read_timeout,
        public_base_url=public_base_url,
        provider_settings={name: PROVIDERS[name].read(read, shared) for name in providers},
        sender_limits=_sender_limits(read, shared),
        auto_pause_window=read.integer("SENDER_AUTO_PAUSE_WINDOW", 50, maximum=10_000),
        auto_pause_ratio=read.fraction("SENDER_AUTO_PAUSE_RATIO", 0.2),
        send_window=_send_window(read),
        callbacks=_callbacks(read),
        inbound=_inbound(read),
        metrics_token=read.raw("METRICS_TOKEN") or "",
        admin_api_keys=tuple(_listed(read, "ADMIN_API_KEY")),
        quotas=_quotas(read),
        contacts=_contacts(read),
    )


def settings_or_exit() -> Settings:
    """The process's settings, for an entry point (the web, the workers, Flower, the CLIs): a setting missing or
    wrong stops it with one line that names the variable, and exit status 2, not a traceback."""
    try:
        return load_settings()
    except SettingsError as error:
        print(f"dispatcher: configuration error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
