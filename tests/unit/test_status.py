import pytest

from sendline.domain.counters import delivery_rate, time_buckets, transition_deltas
from sendline.domain.status import MessageStatus as S
from sendline.domain.status import can_move, from_twilio


@pytest.mark.parametrize("current, new, allowed", [
    (S.QUEUED, S.SENDING, True),
    (S.SENDING, S.SENT, True),
    (S.SENT, S.DELIVERED, True),
    (S.SENT, S.UNDELIVERED, True),
    (S.DELIVERED, S.SENT, False),
    (S.DELIVERED, S.DELIVERED, False),
    (S.DELIVERED, S.UNDELIVERED, False),
    (S.UNDELIVERED, S.DELIVERED, False),
    (S.SENT, S.SENT, False),
    (S.SKIPPED, S.SENT, False),
])
def test_statuses_only_move_forward(current, new, allowed):
    assert can_move(current, new) is allowed


@pytest.mark.parametrize("twilio, ours", [
    ("queued", S.SENT), ("sending", S.SENT), ("sent", S.SENT), ("delivered", S.DELIVERED),
    ("undelivered", S.UNDELIVERED), ("failed", S.FAILED), ("receiving", None),
])
def test_twilio_statuses_map_to_ours(twilio, ours):
    assert from_twilio(twilio) == ours


def test_counter_deltas_per_transition():
    assert transition_deltas(S.SENDING, S.SENT, step=0, segments=2, cost_micros=15800) == {
        "attempted": 1, "sent": 1, "pending_dlr": 1, "segments": 2, "cost_micros": 15800}
    assert transition_deltas(S.SENDING, S.SENT, step=1, segments=1) == {
        "attempted": 1, "sent": 1, "pending_dlr": 1, "segments": 1, "drips_sent": 1}
    assert transition_deltas(S.SENT, S.DELIVERED, step=0) == {"delivered": 1, "pending_dlr": -1}
    assert transition_deltas(S.SENDING, S.FAILED, step=0) == {"attempted": 1, "failed": 1}
    assert transition_deltas(S.SENT, S.FAILED, step=0) == {"failed": 1, "pending_dlr": -1}
    assert transition_deltas(S.SENDING, S.UNKNOWN, step=0) == {"attempted": 1, "unknown": 1}
    assert transition_deltas(S.SCHEDULED, S.QUEUED, step=2) == {"pending_drips": -1}
    assert transition_deltas(S.SCHEDULED, S.CANCELLED, step=2) == {"cancelled": 1, "pending_drips": -1}
    assert transition_deltas(S.QUEUED, S.SKIPPED, step=2) == {"skipped": 1}


def test_buckets_follow_the_reporting_time_zone():
    from datetime import UTC, datetime
    moment = datetime(2026, 12, 3, 3, 30, tzinfo=UTC)
    assert time_buckets(moment) == ("TOTAL", "D#2026-12-03", "H#2026-12-03T03")
    assert time_buckets(moment, "America/New_York") == ("TOTAL", "D#2026-12-02", "H#2026-12-02T22")


def test_delivery_rate_is_delivered_over_sent():
    assert delivery_rate({"sent": 3, "delivered": 2}) == 66.67
    assert delivery_rate({}) == 0.0


def test_a_status_change_touches_each_counter_item_once_and_levels_only_in_total():
    from datetime import UTC, datetime

    from sendline.adapters.records import Records
    from sendline.adapters.store import Store

    records = Records(Store(client=None, table_name="t"))
    for _ in range(50):  # the shard is random: no draw may put two writes on one item
        ops = records._counter_ops(("ALL", "FLOW#fl_1"), datetime(2026, 12, 3, 15, tzinfo=UTC),
                                   {"sent": 1, "pending_dlr": 1, "segments": 2})
        keys = [(op["Update"]["Key"]["pk"]["S"], op["Update"]["Key"]["sk"]["S"]) for op in ops]
        assert len(keys) == len(set(keys)) == 6
    by_bucket = {op["Update"]["Key"]["sk"]["S"]: sorted(op["Update"]["ExpressionAttributeNames"].values())
                 for op in ops}
    assert by_bucket == {"TOTAL": ["pending_dlr", "segments", "sent"], "D#2026-12-03": ["segments", "sent"],
                         "H#2026-12-03T15": ["segments", "sent"]}
