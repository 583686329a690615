"""`/v1/pools`: sender pools (dispatcher/pools.py), defined by operators, read by every key."""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, jsonify
from marshmallow import Schema, fields, validate

from dispatcher.api import context
from dispatcher.api.auth import require_any_key, require_operator
from dispatcher.api.errors import ApiError
from dispatcher.api.openapi import documented
from dispatcher.api.request_input import json_object, load
from dispatcher.message_rules import InvalidInput
from dispatcher.names import INSTANCE_NAME_RULE, is_instance_name
from dispatcher.pools import Member, Pool

blueprint = Blueprint("pools", __name__)
MEMBERS_MAX = 50


class PoolMemberSchema(Schema):
    provider = fields.String(
        required=True,
        validate=validate.Length(min=1, max=32, error="provider must be 1 to 32 characters"),
        metadata={"example": "evolution"},
    )
    sender = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64, error="sender must be 1 to 64 characters"),
        metadata={"example": "loja-1"},
    )
    weight = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=100, error="weight must be between 1 and 100"),
        metadata={"description": "Shares the messages among members free at the same time (default 1)."},
    )


class PoolSchema(Schema):
    """PUT /v1/pools/<name>: the pool's members (any configured provider and sender) and stickiness."""

    members = fields.List(
        fields.Nested(PoolMemberSchema),
        required=True,
        validate=validate.Length(min=1, max=MEMBERS_MAX, error=f"members must hold 1 to {MEMBERS_MAX} senders"),
    )
    sticky = fields.Boolean(
        load_default=False,
        metadata={"description": "Keep each recipient on the member that last wrote to them, while it can send."},
    )


NOT_FOUND = "No pool has that name"


def _named(name: str) -> str:
    if not is_instance_name(name):
        raise ApiError(400, f"a pool's name must be {INSTANCE_NAME_RULE}", "invalid_field", field="name")
    return name


def _own(name: str) -> Pool:
    pool = context.services().pools.get(_named(name))
    if pool is None:
        raise ApiError(404, NOT_FOUND, "pool_not_found", field="name")
    return pool


def _view(pool: Pool) -> dict:
    return asdict(context.services().pools.view(pool))


@blueprint.put("/v1/pools/<name>")
@documented(
    body=PoolSchema,
    answers={
        200: "The pool, replaced, as GET shows it",
        201: "The pool, created, as GET shows it",
        400: "A bad name, member or weight, or a member named twice",
    },
)
@require_operator
def put_pool(name: str):
    """Create or replace a sender pool; a member it gains can take what the pool held."""
    data = load(PoolSchema(), json_object())
    pool = Pool(_named(name), tuple(Member(**member) for member in data["members"]), data["sticky"])
    registry = context.services().pools
    try:
        registry.check_members(pool.members)
    except InvalidInput as invalid:
        raise ApiError.invalid(invalid) from None
    created = registry.save(pool)
    return jsonify(_view(pool)), 201 if created else 200


@blueprint.get("/v1/pools")
@documented(answers={200: "`{pools: [...]}`, each as GET /v1/pools/<name> shows it"})
@require_any_key
def list_pools():
    """Every sender pool, with its members' state."""
    registry = context.services().pools
    pools = [registry.get(name) for name in registry.names()]
    return jsonify({"pools": [_view(pool) for pool in pools if pool is not None]})


@blueprint.get("/v1/pools/<name>")
@documented(
    answers={
        200: "`{name, sticky, held, members: [{provider, sender, weight, state, paused_reason, rate_per_second, "
        "daily_cap, sent_today, current_wait_seconds, sent}]}`",
        400: "A name no pool can have",
        404: NOT_FOUND,
    }
)
@require_any_key
def get_pool(name: str):
    """A sender pool: each member's state, pace, sends today and current wait, and what the pool holds."""
    return jsonify(_view(_own(name)))


@blueprint.delete("/v1/pools/<name>")
@documented(
    answers={
        200: "`{deleted: name}`",
        400: "A name no pool can have",
        404: NOT_FOUND,
        409: "The pool holds messages no member could send: resume a member, or retry them elsewhere, first",
    }
)
@require_operator
def delete_pool(name: str):
    """Delete a sender pool. Messages already given a member keep it; one not given any fails (unknown_pool)."""
    outcome = context.services().pools.delete(_own(name).name)
    if outcome == "holds_messages":
        raise ApiError(409, "The pool holds messages that no member could send yet", "pool_holds_messages")
    return jsonify({"deleted": name})
