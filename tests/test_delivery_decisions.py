"""What a failed provider call means for its message (`tasks.delivery.judge`), decided without Redis or a worker.

The end-to-end tests (test_end_to_end, test_faults, test_pacing) drive the same decisions through real workers
and fake providers; these pin each rule in a millisecond.
"""

import json

import pytest

from dispatcher import statuses
from providers import PermanentProviderError, ProviderConfigurationError, TransientProviderError
from tasks.backoff import RETRY_AFTER_MAX_SECONDS
from tasks.delivery import RetryPolicy, judge

POLICY = RetryPolicy(attempts=3, base_seconds=2.0, max_seconds=60.0)


def error_of(outcome) -> dict:
    return json.loads(outcome.error)


def test_a_refused_message_fails_at_once_whatever_its_budget():
    outcome = judge(PermanentProviderError("not on WhatsApp", "not_on_whatsapp"), 1, POLICY)
    assert outcome.status == statuses.FAILED
    assert error_of(outcome) == {"kind": "permanent", "code": "not_on_whatsapp", "message": "not on WhatsApp"}


def test_a_misconfigured_service_fails_the_message_as_configuration():
    outcome = judge(ProviderConfigurationError("bad key", "http_401"), 1, POLICY)
    assert (outcome.status, error_of(outcome)["kind"]) == (statuses.FAILED, "configuration")


@pytest.mark.parametrize("attempt", [1, 2])
def test_a_transient_error_within_the_budget_retries_after_a_capped_jittered_backoff(attempt):
    outcome = judge(TransientProviderError("busy", "http_503"), attempt, POLICY)
    ceiling = min(POLICY.max_seconds, POLICY.base_seconds * 2 ** (attempt - 1))
    assert outcome.status == statuses.RETRYING
    assert ceiling / 2 <= outcome.retry_in <= ceiling
    assert error_of(outcome)["kind"] == "transient"
    assert outcome.hold_sender_seconds == 0


def test_the_last_attempt_fails_instead_of_retrying():
    outcome = judge(TransientProviderError("busy", "http_503"), POLICY.attempts, POLICY)
    assert (outcome.status, error_of(outcome)["code"]) == (statuses.FAILED, "http_503")


def test_a_providers_retry_after_wins_when_longer_and_is_capped():
    assert judge(TransientProviderError("slow down", retry_after=30), 1, POLICY).retry_in == 30
    far_off = judge(TransientProviderError("slow down", retry_after=10**6), 1, POLICY)
    assert far_off.retry_in == RETRY_AFTER_MAX_SECONDS


def test_a_throttled_sender_is_held_back_as_long_as_the_message_waits():
    outcome = judge(TransientProviderError("429", "http_429", retry_after=5, throttled=True), 1, POLICY)
    assert outcome.status == statuses.RETRYING
    assert outcome.hold_sender_seconds == outcome.retry_in >= 5


def test_a_bug_in_a_provider_gets_the_retry_budget_and_names_its_type():
    outcome = judge(KeyError("key"), 1, POLICY)
    assert (outcome.status, error_of(outcome)["code"]) == (statuses.RETRYING, "KeyError")
    assert judge(KeyError("key"), POLICY.attempts, POLICY).status == statuses.FAILED


def test_a_pool_member_that_cannot_send_any_more_is_paused_and_its_message_goes_elsewhere():
    down = ProviderConfigurationError("(#131031) account locked", "131031", sender_down=True)
    outcome = judge(down, 1, POLICY, pooled=True)
    assert (outcome.status, outcome.retry_in) == (statuses.RETRYING, 0.0)
    assert outcome.pause_sender.startswith("the provider refused the sender: (#131031)")
    assert judge(down, 1, POLICY).status == statuses.FAILED  # a sender named by the request: nowhere else to go
    assert judge(down, POLICY.attempts, POLICY, pooled=True).status == statuses.FAILED  # the budget still holds
