"""Generated requests against our own `/openapi.json`: schemathesis drives the real Flask app in-process
(WSGI), backed by the real Redis of the fixtures, for every operation the spec lists.

The property, for every answer: never a 5xx; its status code is one the operation documents; its
content type and body match what is documented for that status. Those are schemathesis's
`not_a_server_error`, `status_code_conformance`, `content_type_conformance` and
`response_schema_conformance` checks, none relaxed.

Requests come in several flavours per operation, because purely random data stops at the first
check: with a valid API key, schema-valid data (positive) and schema-breaking data (negative); the
same with the ids of a real message and batch and with valid phone numbers, so that the success
answers (whose bodies have the most to conform to) are reached; and a few with a random, wrong key.
The webhooks get their provider's credentials (a signed body for Meta and Twilio), so their parsers
are fuzzed rather than the signature check alone. Every run is counted, and the count asserted.
For a deeper search than the default (about 3,500 requests), scale every budget:
`FUZZ_SCALE=10 pytest tests/test_fuzz.py --timeout=0`.

Instances (`/v1/instances...`) relay to Evolution API, which is not enabled here: they answer 400
`provider_not_enabled`, documented. Their 502 (Evolution unreachable) is documented too, but not
reached here: with Evolution enabled and down it would be a 5xx by design, which `not_a_server_error`
rightly refuses to bless, so this run does not configure it (tests/test_instances.py covers that 502).
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import os
import random
import time
from urllib.parse import urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from providers import twilio_inbound
from tests.conftest import auth, operator

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
EVOLUTION_SECRET = "evolution-secret-for-fuzzing"
META_SECRET = "meta-app-secret-for-fuzzing"
META_VERIFY = "meta-verify-token-for-fuzzing"
TWILIO_TOKEN = "twilio-auth-token-for-fuzzing"
# Hypothesis examples per operation and flavour: (mode, with the valid key, with real ids and phones).
# Operations with few inputs (GET /health) run out of distinct examples sooner; the total is asserted.
BUDGET = {
    (POSITIVE, True, False): 60,
    (POSITIVE, True, True): 40,
    (NEGATIVE, True, False): 30,
    (NEGATIVE, True, True): 15,
    (POSITIVE, False, False): 5,
    (NEGATIVE, False, False): 4,
}
MIN_REQUESTS = 2_000
# Numbers that are valid and reachable, in the ways people write them.
OPTED_OUT = "+5511900000001"
PHONES = ("+5564999998888", "5564999998888", "64999998888", "+55 (64) 99999-8888", "0055 64 99999 8888", "+14155552671")


@pytest.fixture
def app(make_app):
    """The real app, with the providers' webhook credentials set so their parsers are reachable."""
    return make_app(
        EVOLUTION_WEBHOOK_SECRET=EVOLUTION_SECRET,
        META_APP_SECRET=META_SECRET,
        META_WEBHOOK_VERIFY_TOKEN=META_VERIFY,
        TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        WEBHOOK_SECRET="callback-signing-secret-0123456789",
    ).application


@pytest.fixture
def known(app) -> dict[str, str]:
    """Ids that exist, so generated requests reach the answers of real objects, not only 404."""
    client = app.test_client()
    sent = client.post(
        "/v1/messages/send",
        json={"recipient_phone": "+5564999998888", "message_body": "fuzz", "external_id": "fuzz-known-1"},
        headers=auth(),
    )
    bulk = client.post(
        "/v1/messages/bulk",
        json={"messages": [{"recipient_phone": p, "external_id": f"fuzz-row-{i}"} for i, p in enumerate(PHONES)]}
        | {"template": "hello {{name|there}}"},
        headers=auth(),
    )
    assert sent.status_code == 200 and bulk.status_code == 200, (sent.json, bulk.json)
    message_id, batch_id = sent.json["message_id"], bulk.json["batch_id"]
    return {
        "message_id": message_id,
        "job_id": message_id,
        "batch_id": batch_id,
        "provider": "mock",
        "sender": "fuzz-sender",
        "external_id": "fuzz-known-1",
    }


KNOWN_QUERIES = {"GET /v1/messages", "GET /v1/webhooks/meta"}


def _flavours(operation) -> dict[tuple, int]:
    """The flavours that can make distinct requests for this operation, with their budgets. Negative mode
    needs something to break (a body, a query, the key header); the realistic flavour needs something to
    make real (an id in the path, a known query, a body). Others would only make hypothesis search in vain."""
    has_inputs = bool(len(operation.body) or len(operation.query))
    secured = bool(operation.definition.raw.get("security"))
    can_be_real = bool(has_inputs or len(operation.path_parameters) or operation.label in KNOWN_QUERIES)
    wanted = {
        (POSITIVE, True, False): True,
        (POSITIVE, True, True): can_be_real,
        (NEGATIVE, True, False): has_inputs,
        (NEGATIVE, True, True): has_inputs and can_be_real,
        (POSITIVE, False, False): True,
        (NEGATIVE, False, False): has_inputs or secured,
    }
    scale = float(os.environ.get("FUZZ_SCALE", "1"))
    return {flavour: round(examples * scale) for flavour, examples in BUDGET.items() if wanted[flavour]}


def _key(operation) -> dict[str, str]:
    """The valid key for the operation: an operator's where only an operator's opens it, else an account's."""
    schemes = {name for requirement in operation.definition.raw.get("security", []) for name in requirement}
    return operator() if schemes == {"OperatorKey"} else auth()


def _strategy(operation, mode, keyed: bool, realistic: bool, known: dict[str, str]):
    headers = {**_key(operation)} if keyed else {}
    if operation.path == "/v1/webhooks/evolution":
        headers["X-Webhook-Secret"] = EVOLUTION_SECRET
    kwargs = {"generation_mode": mode, "headers": headers or None}
    if realistic:
        names = {parameter.name for parameter in operation.path_parameters}
        kwargs["path_parameters"] = {name: known[name] for name in names if name in known} or None
        if operation.label == "GET /v1/messages":  # the names in KNOWN_QUERIES
            kwargs["query"] = {"external_id": known["external_id"]}
        if operation.label == "GET /v1/webhooks/meta":
            kwargs["query"] = {"hub.mode": "subscribe", "hub.verify_token": META_VERIFY}
    cases = operation.as_strategy(**kwargs)
    if not (realistic and mode is POSITIVE):
        return cases
    return st.tuples(cases, st.randoms(use_true_random=False)).map(lambda pair: _realistic(*pair, known))


def _realistic(case, rng: random.Random, known: dict[str, str]):
    """Swap generated values for ones that pass the checks the schema cannot express (a phone number
    that exists, a provider and a sender we have), so the request can succeed."""
    body = case.body
    if not isinstance(body, dict):
        return case
    body = dict(body)
    # A number the fuzzed opt-outs take is one the sends then refuse (422): they get one no send uses.
    phones = (OPTED_OUT,) if case.operation.path == "/v1/opt-outs" else PHONES
    for name in ("recipient_phone", "phone"):
        if name in body:
            body[name] = rng.choice(phones)
    for name in ("messages", "recipients"):
        if isinstance(body.get(name), list):
            body[name] = [
                {**row, ("phone" if name == "recipients" else "recipient_phone"): rng.choice(PHONES)}
                if isinstance(row, dict)
                else row
                for row in body[name]
            ]
    if rng.random() < 0.7:
        body.pop("provider", None)
        body.pop("sender", None)
    if "instanceName" in body:
        body["instanceName"] = known["sender"]
        body["type"] = "text"
    case.body = body
    return case


def _send(case):
    """Send the case to the app; bodies of the signed webhooks are signed exactly as sent."""
    label = case.operation.label
    if label == "POST /v1/webhooks/meta":
        raw = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
        signature = "sha256=" + hmac.new(META_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
        return case.call(data=raw, headers=headers)
    if label == "POST /v1/webhooks/twilio" and isinstance(case.body, dict):
        pairs = [(str(name), str(value)) for name, value in case.body.items()]
        signature = twilio_inbound.signature(TWILIO_TOKEN, "http://localhost/v1/webhooks/twilio", pairs)
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
        return case.call(data=urlencode(pairs).encode(), headers=headers)
    return case.call()


def _fuzz(strategy, examples: int, record) -> None:
    """Send `examples` generated cases and check each answer; hypothesis shrinks any failure it finds."""

    # deadline=None: a request's time depends on Redis and the machine, not on the property.
    # Health checks are off because an operation with few inputs legitimately repeats its examples.
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
    )
    @given(case=strategy)
    def run(case):
        response = _send(case)
        record(response.status_code)
        case.validate_response(response, checks=CHECKS)

    run()


def test_every_operation_answers_as_documented(app, known):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 35, [op.label for op in operations]  # the whole spec, not a stub of it

    runs: collections.Counter = collections.Counter()
    answers: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

    def _count(operation, flavour, status: int) -> None:
        runs[flavour] += 1
        answers[operation.label][status] += 1

    failures: list[str] = []
    started = time.monotonic()
    for operation in operations:
        for (mode, keyed, realistic), examples in _flavours(operation).items():
            strategy = _strategy(operation, mode, keyed, realistic, known)
            try:
                flavour = (mode, keyed, realistic)
                _fuzz(strategy, examples, lambda status, op=operation, f=flavour: _count(op, f, status))
            except Unsatisfiable:
                # Negative mode has nothing to break in an operation whose only inputs are fixed here
                # (the key header, a real id) or that takes none: there is no invalid request to make.
                assert mode is NEGATIVE, operation.label
            except (Exception, FailureGroup) as failure:
                failures.append(f"{operation.label} {mode.value} keyed={keyed} realistic={realistic}:\n{failure}")
    elapsed = time.monotonic() - started

    assert not failures, "\n\n".join(failures)
    total = sum(runs.values())
    print(f"\n{total} generated requests in {elapsed:.1f}s; by flavour {dict(runs)}")
    for label, counter in answers.items():
        print(label, dict(sorted(counter.items())))
    assert total >= MIN_REQUESTS, dict(runs)
    seen = {label: set(counter) for label, counter in answers.items()}
    assert {op.label for op in operations} <= set(seen), "an operation was never called"
    assert not [code for codes in seen.values() for code in codes if code >= 500]
    # The realistic flavour does reach success: these bodies were generated and then accepted.
    for label in ("POST /v1/messages/send", "POST /v1/messages/bulk", "POST /api/v1/dispatch/single"):
        assert 200 in seen[label], (label, answers[label])
    for label in ("GET /v1/messages/{message_id}", "GET /v1/batches/{batch_id}", "GET /v1/webhooks/meta"):
        assert 200 in seen[label], (label, answers[label])


def test_the_docs_page_renders_every_operation(client):
    """/docs is built from the same spec; a body declared in another media type must not break it."""
    page = client.get("/docs")
    spec = client.get("/openapi.json").json
    assert page.status_code == 200
    for path in spec["paths"]:
        assert f"<code>{path}</code>" in page.get_data(as_text=True)
