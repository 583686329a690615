"""The message store: every message's record, its history and its idempotency key, in Redis.

Each change is one Lua script, so it is atomic: two requests with one external_id create one
message, a task delivered twice claims the message once, and a status never moves backwards.

Keys (all under `dispatch:`):
  msg:<id>                  hash: the message record
  msg:<id>:history          list: one JSON entry per status change, oldest first
  ext:<key_id>:<external_id>  the message id an external_id maps to, per API key
  pending                   sorted set: unfinished messages, scored by the time by which something
                            should have happened to them; the reconciler republishes the overdue ones
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis

from dispatcher import statuses
from dispatcher.settings import Settings

PREFIX = "dispatch:"
PENDING_KEY = PREFIX + "pending"

_CREATE = """
local existing = redis.call('GET', KEYS[1])
if existing then return {0, existing} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('RPUSH', KEYS[3], ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
if ARGV[5] ~= '' then redis.call('LPUSH', KEYS[5], ARGV[5]) end
return {1, ARGV[1]}
"""

_CLAIM = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', 0} end
if status == 'sending' then
  local lease = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0')
  if lease > tonumber(ARGV[1]) then return {'busy', 0} end
  if ARGV[3] ~= '1' then return {'lease_expired', 0} end
elseif status ~= 'queued' and status ~= 'retrying' then
  return {status, 0}
end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'status', 'sending', 'lease_until', ARGV[2], 'updated_at', ARGV[4])
redis.call('RPUSH', KEYS[2], cjson.encode({status='sending', at=ARGV[4], attempt=attempts}))
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[5])
local fields = redis.call('HMGET', KEYS[1], 'recipient', 'body', 'external_id')
return {'claimed', attempts, fields[1], fields[2], fields[3]}
"""

_ADVANCE = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if not string.find(',' .. ARGV[3] .. ',', ',' .. status .. ',', 1, true) then return status end
redis.call('HSET', KEYS[1], 'status', ARGV[2], unpack(ARGV, 6))
redis.call('RPUSH', KEYS[2], ARGV[5])
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
end
return 'ok'
"""


def connect(url: str) -> redis.Redis:
    """A Redis client with timeouts short enough that an outage becomes a quick, clear error."""
    return redis.Redis.from_url(
        url, decode_responses=True, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30
    )


def iso(timestamp: float) -> str:
    """ISO-8601 UTC with milliseconds and a Z, as the seed service wrote its times."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class NewMessage:
    """A validated message the API is about to accept."""

    message_id: str
    key_id: str
    external_id: str
    recipient: str
    body: str
    fingerprint: str
    provider: str
    created_at: float


@dataclass(frozen=True)
class Message:
    message_id: str
    key_id: str
    external_id: str
    recipient: str
    body: str
    fingerprint: str
    status: str
    provider: str
    provider_message_id: str | None
    attempts: int
    last_error: dict | None
    created_at: str
    updated_at: str
    history: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class Claim:
    """The outcome of a task's claim: `claimed` (send now), or why not (`busy`, `lease_expired`, a status).

    A successful claim carries what the send needs, so the task makes no second round trip.
    """

    outcome: str
    attempt: int
    recipient: str = ""
    body: str = ""
    external_id: str = ""

    @property
    def claimed(self) -> bool:
        return self.outcome == "claimed"


class MessageStore:
    def __init__(self, client: redis.Redis, retention_seconds: int, queued_grace_seconds: int, lease_seconds: int):
        self.redis = client
        self.retention_seconds = retention_seconds
        self.queued_grace_seconds = queued_grace_seconds
        self.lease_seconds = lease_seconds
        self._create = client.register_script(_CREATE)
        self._claim = client.register_script(_CLAIM)
        self._advance = client.register_script(_ADVANCE)

    @classmethod
    def from_settings(cls, settings: Settings) -> MessageStore:
        return cls(
            connect(settings.redis_url),
            retention_seconds=settings.message_retention_seconds,
            queued_grace_seconds=settings.queued_republish_after_seconds,
            lease_seconds=settings.send_lease_seconds,
        )

    @staticmethod
    def message_key(message_id: str) -> str:
        return f"{PREFIX}msg:{message_id}"

    @staticmethod
    def external_key(key_id: str, external_id: str) -> str:
        return f"{PREFIX}ext:{key_id}:{external_id}"

    def _keys(self, message_id: str) -> list[str]:
        key = self.message_key(message_id)
        return [key, key + ":history", PENDING_KEY]

    def create(self, new: NewMessage, queue_key: str = "", task_payload: str = "") -> tuple[bool, str]:
        """Record `new` and push its task in one atomic step, unless its external_id is taken.

        Returns (created, message_id): the new id, or the id that the external_id already maps to.
        The record and the task are written together, so an accepted message always has a task,
        and a failed write leaves nothing behind.
        """
        stamp = iso(new.created_at)
        fields = {
            "message_id": new.message_id,
            "key_id": new.key_id,
            "external_id": new.external_id,
            "recipient": new.recipient,
            "body": new.body,
            "fingerprint": new.fingerprint,
            "status": statuses.QUEUED,
            "provider": new.provider,
            "attempts": 0,
            "created_at": stamp,
            "updated_at": stamp,
        }
        flat = [item for pair in fields.items() for item in pair]
        created, message_id = self._create(
            keys=[self.external_key(new.key_id, new.external_id), *self._keys(new.message_id), queue_key],
            args=[
                new.message_id,
                self.retention_seconds,
                new.created_at + self.queued_grace_seconds,
                json.dumps({"status": statuses.QUEUED, "at": stamp}),
                task_payload,
                *flat,
            ],
        )
        return bool(created), message_id

    def get(self, message_id: str) -> Message | None:
        key = self.message_key(message_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(key)
        pipe.lrange(key + ":history", 0, -1)
        record, history = pipe.execute()
        if not record:
            return None
        return Message(
            message_id=record["message_id"],
            key_id=record["key_id"],
            external_id=record["external_id"],
            recipient=record["recipient"],
            body=record["body"],
            fingerprint=record["fingerprint"],
            status=record["status"],
            provider=record["provider"],
            provider_message_id=record.get("provider_message_id"),
            attempts=int(record.get("attempts", 0)),
            last_error=json.loads(record["last_error"]) if record.get("last_error") else None,
            created_at=record["created_at"],
            updated_at=record["updated_at"],
            history=[json.loads(entry) for entry in history],
        )

    def find_by_external_id(self, key_id: str, external_id: str) -> Message | None:
        message_id = self.redis.get(self.external_key(key_id, external_id))
        return self.get(message_id) if message_id else None

    def claim(self, message_id: str, take_over_expired: bool) -> Claim:
        """Move a message to `sending` with a lease, if nobody else holds it.

        A message whose lease ran out (its worker died mid-send) is taken over only when
        `take_over_expired`; otherwise the outcome is `lease_expired` and the caller decides.
        """
        now = time.time()
        outcome, attempt, *fields = self._claim(
            keys=self._keys(message_id),
            args=[now, now + self.lease_seconds, "1" if take_over_expired else "0", iso(now), message_id],
        )
        return Claim(outcome, int(attempt), *fields)

    def advance(
        self,
        message_id: str,
        status: str,
        allowed_from: tuple[str, ...],
        pending_deadline: float | None = None,
        detail: dict | None = None,
        **fields: str,
    ) -> str:
        """Move to `status` if the message is in one of `allowed_from`; returns 'ok' or the status that refused it.

        `pending_deadline` keeps the message watched by the reconciler until then; None stops watching it.
        """
        stamp = iso(time.time())
        entry = {"status": status, "at": stamp, **(detail or {})}
        flat = [item for pair in {**fields, "updated_at": stamp}.items() for item in pair]
        return self._advance(
            keys=self._keys(message_id),
            args=[
                message_id,
                status,
                ",".join(allowed_from),
                "" if pending_deadline is None else pending_deadline,
                json.dumps(entry),
                *flat,
            ],
        )

    def overdue(self, limit: int = 500) -> list[str]:
        """Unfinished messages past their deadline: their task was lost or their worker died."""
        return self.redis.zrangebyscore(PENDING_KEY, "-inf", time.time(), start=0, num=limit)

    def watch_until(self, message_id: str, deadline: float) -> None:
        self.redis.zadd(PENDING_KEY, {message_id: deadline}, xx=True)

    def forget_pending(self, message_id: str) -> None:
        self.redis.zrem(PENDING_KEY, message_id)
