"""Campaign rules without I/O: pacing, sticky senders, creatives, send windows, auto-pause and
the campaign status machine."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendline.domain.pacing import MinutePlan, choose_creative, per_second_caps, sticky_sender
from sendline.domain.send_window import SendWindow, is_open, next_open
from sendline.services.auto_pause import trips
from sendline.services.campaigns import CampaignStatus as S
from sendline.services.campaigns import can_change

POOL = ["+12125550900", "+12125550901", "+12125550902"]


def test_per_second_caps_spread_fractional_rates():
    assert per_second_caps(2.5, 4) == [3, 2, 3, 2]
    assert per_second_caps(0.5, 4) == [1, 0, 1, 0]
    assert per_second_caps(0.05, 60).count(1) == 3
    assert [s for s, cap in enumerate(per_second_caps(0.05, 60)) if cap] == [0, 20, 40]
    assert per_second_caps(10, 3) == [10, 10, 10]


@given(rate=st.floats(min_value=0.01, max_value=50), mps=st.lists(st.floats(min_value=0.1, max_value=20),
                                                                   min_size=1, max_size=4),
       picks=st.lists(st.integers(min_value=0, max_value=3), max_size=400))
def test_a_minute_plan_never_exceeds_the_rate_or_any_numbers_mps(rate, mps, picks):
    numbers = {f"n{i}": m for i, m in enumerate(mps)}
    plan = MinutePlan(rate, numbers)
    per_second: Counter[int] = Counter()
    per_number: Counter[tuple[str, int]] = Counter()
    for pick in picks:
        number = f"n{pick % len(mps)}"
        second = plan.place(number)
        if second is None:
            continue
        per_second[second] += 1
        per_number[(number, second)] += 1
    caps = per_second_caps(rate, 60)
    assert all(per_second[s] <= caps[s] for s in per_second)
    for (number, second), sent in per_number.items():
        assert sent <= per_second_caps(numbers[number], 60)[second]
    assert sum(per_second.values()) <= sum(caps)


def test_a_minute_plan_fills_each_second_in_order_and_reports_full():
    plan = MinutePlan(2, {"a": 1, "b": 1}, seconds=3)
    assert [plan.place(n) for n in ("a", "a", "b", "b", "a", "b", "a")] == [0, 1, 0, 1, 2, 2, None]
    assert plan.full() is True


def test_a_number_outside_the_plan_gets_no_second():
    assert MinutePlan(5, {"a": 1}).place("z") is None


def test_sticky_sender_is_stable_and_moves_only_the_rested_numbers_contacts():
    phones = [f"+1212555{i:04d}" for i in range(3000)]
    before = {p: sticky_sender(p, POOL) for p in phones}
    assert before == {p: sticky_sender(p, list(reversed(POOL))) for p in phones}
    spread = Counter(before.values())
    assert min(spread.values()) > 900  # roughly even: 1000 each
    after = {p: sticky_sender(p, POOL[:2]) for p in phones}
    moved = {p for p in phones if before[p] != after[p]}
    assert moved == {p for p in phones if before[p] == POOL[2]}


def test_creatives_follow_their_weights_and_never_change_for_a_contact():
    phones = [f"+1212555{i:04d}" for i in range(4000)]
    weights = [("c1", 3), ("c2", 1)]
    chosen = Counter(choose_creative("cm_1", p, weights) for p in phones)
    assert 2850 < chosen["c1"] < 3150 and chosen["c1"] + chosen["c2"] == 4000
    assert all(choose_creative("cm_1", p, weights) == choose_creative("cm_1", p, weights) for p in phones[:50])
    with pytest.raises(ValueError):
        choose_creative("cm_1", phones[0], [("c1", 0)])


WINDOW = SendWindow()  # 08:00-21:00 local


@pytest.mark.parametrize("phone, utc_hour, expected", [
    ("+12125550142", 12, False),  # 07:00 in New York
    ("+12125550142", 13, True),  # 08:00
    ("+12125550142", 2, False),  # 21:00 the evening before
    ("+13105550142", 15, False),  # 07:00 in Los Angeles
    ("+13105550142", 16, True),
    ("+18085550142", 18, False),  # 08:00 in Honolulu is 18:00 UTC; 17:59 is not yet
])
def test_the_send_window_is_the_recipients_local_time(phone, utc_hour, expected):
    moment = datetime(2026, 12, 3, utc_hour, 0, tzinfo=UTC)
    if phone == "+18085550142":
        moment = moment.replace(hour=17, minute=59)
    assert is_open(phone, moment, WINDOW) is expected


def test_next_open_is_the_windows_start_in_the_recipients_zone():
    assert next_open("+13105550142", datetime(2026, 12, 3, 15, 2, tzinfo=UTC), WINDOW) == datetime(
        2026, 12, 3, 16, 0, tzinfo=UTC)
    # A toll-free number has no state: the conservative default rule (09:00-20:00), judged on
    # both coasts, so 09:00 in Los Angeles is the earliest.
    assert next_open("+18005550142", datetime(2026, 12, 3, 13, 0, tzinfo=UTC), WINDOW) == datetime(
        2026, 12, 3, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize("sends, errors, min_sends, threshold, expected", [
    (499, 499, 500, 20, False),  # too few sends to judge
    (500, 100, 500, 20, False),  # exactly at the threshold is not above it
    (500, 101, 500, 20, True),
    (10_000, 10_000, 500, 0, False),  # 0 turns it off
    (0, 0, 1, 20, False),
])
def test_auto_pause_rule(sends, errors, min_sends, threshold, expected):
    assert trips(sends, errors, min_sends, threshold) is expected


def test_campaign_status_machine():
    legal = {(a, b) for a in S for b in S if can_change(a, b)}
    assert legal == {
        (S.DRAFT, S.SCHEDULED), (S.DRAFT, S.CANCELLED), (S.SCHEDULED, S.RUNNING), (S.SCHEDULED, S.CANCELLED),
        (S.RUNNING, S.PAUSED), (S.RUNNING, S.COMPLETED), (S.RUNNING, S.CANCELLED), (S.PAUSED, S.RUNNING),
        (S.PAUSED, S.CANCELLED)}


def test_a_window_ending_at_24_00_leaves_the_states_hours_as_they_are():
    window = SendWindow.parse("00:00", "24:00")
    assert window.end == time.max
    assert is_open("+12125550142", datetime(2026, 12, 4, 1, 59, 59, tzinfo=UTC), window) is True  # 20:59:59 NY
    # The operator's window only narrows: the federal 21:00 still closes it.
    assert is_open("+12125550142", datetime(2026, 12, 4, 2, 0, tzinfo=UTC), window) is False
    assert is_open("+12125550142", datetime(2026, 12, 4, 4, 59, 59, tzinfo=UTC), window) is False


def test_a_plan_starting_later_leaves_the_seconds_already_planned_alone():
    plan = MinutePlan(1, {"a": 5}, seconds=5, start=3)
    assert [plan.place("a") for _ in range(3)] == [3, 4, None]
    assert plan.last_second == 4
    assert MinutePlan(1, {"a": 5}, seconds=5, start=5).place("a") is None
