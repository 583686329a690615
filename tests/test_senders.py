"""/v1/senders, and fairness: a slow sender does not slow a fast one on the same queue and workers."""

from dispatcher import statuses
from dispatcher.messages import MessageService, Route, new_message
from dispatcher.store import MessageStore, Move, connect
from tests.conftest import auth, operator, wait_for
from tests.test_pacing import bulk, completed, sending_times


def test_a_senders_own_pace_is_set_and_shown(make_app):
    client = make_app(SENDER_RATE_MOCK="5")
    assert client.get("/v1/senders/mock/loja-1", headers=auth()).json == {
        "provider": "mock",
        "sender": "loja-1",
        "rate_per_second": 5.0,
        "burst": 1,
        "daily_cap": 0,
        "warmup_start": 0,
        "warmup_growth": 1.5,
        "sent_today": 0,
        "state": "active",
        "paused_reason": None,
        "own": False,
        "current_wait_seconds": 0.0,
        "fallback_template": None,
    }
    changed = client.put("/v1/senders/mock/loja-1", json={"rate_per_second": 0.5}, headers=operator())
    assert changed.status_code == 200
    assert changed.json["rate_per_second"] == 0.5 and changed.json["own"] is True and changed.json["burst"] == 1
    listed = client.get("/v1/senders", headers=auth()).json["senders"]
    assert {"provider": "mock", "sender": "loja-1"}.items() <= listed[0].items()


def test_bad_pace_and_unknown_senders(make_app):
    client = make_app(
        WHATSAPP_PROVIDERS="evolution",
        EVOLUTION_API_URL="http://127.0.0.1:9",
        EVOLUTION_API_KEY="k",
        EVOLUTION_INSTANCE="loja-1",
    )
    assert (
        client.put("/v1/senders/mock/a", json={"rate_per_second": -1}, headers=operator()).json["field"]
        == "rate_per_second"
    )
    assert client.put("/v1/senders/mock/a", json={"burst": 0}, headers=operator()).status_code == 400
    assert client.get("/v1/senders/twilio/a", headers=auth()).status_code == 404
    assert client.get("/v1/senders/evolution/loja-9", headers=auth()).json["code"] == "unknown_sender"
    assert client.get("/v1/senders/evolution/loja-1", headers=auth()).json["rate_per_second"] == 1.0


def test_a_fast_sender_keeps_its_rate_beside_a_slow_one(make_app, start_worker):
    client = make_app()
    client.put("/v1/senders/mock/slow", json={"rate_per_second": 1, "burst": 1}, headers=operator())
    client.put("/v1/senders/mock/fast", json={"rate_per_second": 20, "burst": 1}, headers=operator())
    start_worker(WORKER_CONCURRENCY="2")
    slow = bulk(client, 200, "slow")  # queued first: 200 s of work at 1/s
    fast = bulk(client, 100, "fast")
    completed(client, fast, timeout=30)
    times = sending_times(client, fast)
    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert achieved >= 0.95 * 20
    wait_for(
        lambda: client.get(f"/v1/batches/{slow}", headers=auth()).json["counts"].get("sent", 0) >= 2,
        what="the slow sender to go on at its own pace",
    )


def test_a_failing_sender_is_auto_paused_holds_its_messages_and_resumes(make_app, start_worker):
    env = {"MOCK_FAILURE_RATE": "1", "JOB_ATTEMPTS": "1", "SENDER_AUTO_PAUSE_WINDOW": "10"}
    client = make_app(**env)
    worker = start_worker(**env)
    bulk(client, 10, "broken")  # every send fails: the tenth outcome pauses the sender
    wait_for(
        lambda: client.get("/v1/senders/mock/broken", headers=auth()).json["state"] == "paused", what="the auto-pause"
    )
    paused = client.get("/v1/senders/mock/broken", headers=auth()).json
    assert paused["paused_reason"] == "10 of the last 10 sends failed"
    wait_for(
        lambda: any("auto-paused" in line and '"level": "error"' in line for line in worker.lines),
        what="a loud log line",
    )
    held_batch = bulk(client, 3, "broken", first=10)  # sent while paused: held, neither failed nor lost
    wait_for(
        lambda: (
            len(client.application.extensions["dispatcher"].store.redis.smembers("dispatch:sender:mock:broken:held"))
            == 3
        ),
        what="the messages to be held",
    )
    assert client.get(f"/v1/batches/{held_batch}", headers=auth()).json["counts"] == {"queued": 3}
    worker.stop()
    fixed = start_worker(SENDER_AUTO_PAUSE_WINDOW="10")  # the provider works again
    resumed = client.post("/v1/senders/mock/broken/resume", headers=operator()).json
    assert resumed["state"] == "active" and resumed["released"] == 3
    completed(client, held_batch)
    assert client.get(f"/v1/batches/{held_batch}", headers=auth()).json["counts"] == {"sent": 3}
    assert fixed.popen.poll() is None


def test_a_daily_cap_holds_the_rest_for_tomorrow(make_app, start_worker):
    client = make_app()
    client.put("/v1/senders/mock/capped", json={"daily_cap": 3}, headers=operator())
    start_worker()
    batch_id = bulk(client, 5, "capped")
    wait_for(
        lambda: client.get(f"/v1/batches/{batch_id}", headers=auth()).json["counts"].get("sent") == 3,
        what="three sends",
    )
    sender = client.get("/v1/senders/mock/capped", headers=auth()).json
    assert sender["sent_today"] == 3
    assert sender["daily_cap"] == 3
    assert client.get("/v1/queue/status", headers=operator()).json["held_by_pacing"] == 2


def test_a_new_numbers_warm_up_caps_its_first_day(make_app, start_worker):
    client = make_app()
    client.put("/v1/senders/mock/new-number", json={"warmup_start": 2, "warmup_growth": 2}, headers=operator())
    start_worker()
    batch_id = bulk(client, 4, "new-number")
    wait_for(
        lambda: client.get(f"/v1/batches/{batch_id}", headers=auth()).json["counts"].get("sent") == 2,
        what="the first day's two sends",
    )
    assert client.get("/v1/queue/status", headers=operator()).json["held_by_pacing"] == 2


def test_state_can_be_set_with_put(make_app):
    client = make_app()
    paused = client.put("/v1/senders/mock/a", json={"state": "paused"}, headers=operator()).json
    assert paused["state"] == "paused" and paused["paused_reason"] == "paused by an operator"
    assert client.put("/v1/senders/mock/a", json={"state": "active"}, headers=operator()).json["state"] == "active"
    assert client.put("/v1/senders/mock/a", json={"state": "off"}, headers=operator()).json["field"] == "state"


# --- auto-pause, decided outcome by outcome even when a chunk records a group of them in one call ---

OUTCOMES = "ssffsfsssffffsss"  # s: sent, f: failed; with a window of 4 and a ratio of 0.5


def _record(store, service, account: str, sender: str, outcomes: str, one_call: bool) -> list[str]:
    route = Route("mock", sender)
    rows = [new_message(account, f"{account}-{n}", "+5564999998888", "Olá", route) for n in range(len(outcomes))]
    batch_id, _ = service.accept_batch(account, rows, route)
    _, claims = store.claim_group(batch_id, [row.message_id for row in rows])
    moves = [
        Move(
            claim.message_id,
            statuses.SENT if outcome == "s" else statuses.FAILED,
            (statuses.SENDING,),
            attempt=claim.attempt,
        )
        for claim, outcome in zip(claims, outcomes, strict=True)
    ]
    return store.move(moves) if one_call else [store.move([move])[0] for move in moves]


def _window(store, sender: str) -> tuple[list[str], str | None]:
    key = f"dispatch:sender:mock:{sender}"
    return store.redis.lrange(f"{key}:outcomes", 0, -1), store.redis.hget(key, "window_failures")


def test_a_group_of_outcomes_pauses_its_sender_where_one_by_one_would(redis_url):
    store = MessageStore(connect(redis_url), 3600, 300, 60, auto_pause=(4, 0.5))
    service = MessageService(store, lambda i: ("q", f"task:{i}"), lambda b, s, e: ("q", "chunk"), 100)
    alone = _record(store, service, "k1", "alone", OUTCOMES, one_call=False)
    grouped = _record(store, service, "k2", "grouped", OUTCOMES, one_call=True)
    assert alone.index("ok:paused") == 3  # the second failure among the last four: s s f f
    assert grouped == alone  # paused by the same outcome, once
    assert _window(store, "alone") == _window(store, "grouped") == (["0", "0", "0", "1"], "1")  # f s s s, newest first


def test_a_long_window_pushed_out_by_a_longer_group_keeps_its_count(redis_url):
    """A window of 120 that is full, then 150 outcomes in one call: all 120 it held are pushed out (read from Redis
    a hundred at a time), then 30 of the call's own."""
    store = MessageStore(connect(redis_url), 3600, 300, 60, auto_pause=(120, 0.4))
    service = MessageService(store, lambda i: ("q", f"task:{i}"), lambda b, s, e: ("q", "chunk"), 1000)
    before = "".join("f" if n % 3 == 0 else "s" for n in range(130))
    group = "".join("f" if n % 7 in (0, 1, 2) else "s" for n in range(150))
    answers = []
    for sender, one_call in (("long-alone", False), ("long-grouped", True)):
        _record(store, service, f"{sender}-before", sender, before, one_call=False)
        answers.append(_record(store, service, sender, sender, group, one_call=one_call))
    assert answers[0] == answers[1] and "ok:paused" in answers[0]
    outcomes, failures = _window(store, "long-grouped")
    assert (outcomes, failures) == _window(store, "long-alone")
    assert len(outcomes) == 120 and int(failures) == outcomes.count("1")
