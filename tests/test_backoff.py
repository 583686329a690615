"""The one backoff, for provider calls and callback deliveries: exponential, jittered, capped, and a peer's
Retry-After honoured up to an hour."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tasks.backoff import RETRY_AFTER_MAX_SECONDS, backoff_seconds


@given(st.integers(1, 200), st.floats(0.01, 10), st.floats(0.01, 4000))
def test_a_wait_is_between_half_and_all_of_its_doubling_and_never_past_the_cap(attempt, base, cap):
    ceiling = min(cap, base * 2 ** min(attempt - 1, 40))
    assert ceiling / 2 <= backoff_seconds(attempt, base, cap) <= ceiling


def test_retry_after_wins_when_longer_up_to_an_hour():
    assert backoff_seconds(1, 0.1, 1, retry_after=30) == 30
    assert backoff_seconds(1, 0.1, 1, retry_after=10 * 86400) == RETRY_AFTER_MAX_SECONDS
    assert backoff_seconds(1, 0.1, 1, retry_after=0.01) <= 0.1
