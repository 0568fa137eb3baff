"""The worker's pacing primitive against moto: evenly spaced turns per campaign or number,
restarting from now after an idle spell, never further ahead than the horizon."""

from __future__ import annotations

from sendline import runtime

T0 = 1_796_320_800_000_000  # 2026-12-03T18:00:00Z in microseconds
HORIZON = 1_500_000


def test_turns_are_spaced_by_the_interval_up_to_the_horizon(fns):
    records = runtime.records()
    # Ten a second asked for at one moment: a turn every 100 ms until 1.5 s ahead, then none.
    turns = [records.reserve_send_time("CAMP#c1", 100_000, T0, HORIZON) for _ in range(18)]
    assert turns == [T0 + 100_000 * k for k in range(16)] + [None, None]
    # Other keys are paced on their own.
    assert records.reserve_send_time("NUM#+12125550900", 1_000_000, T0, HORIZON) == T0


def test_an_idle_key_starts_again_from_now_and_never_bursts_to_catch_up(fns):
    records = runtime.records()
    assert records.reserve_send_time("CAMP#c1", 250_000, T0, HORIZON) == T0
    later = T0 + 60_000_000
    assert [records.reserve_send_time("CAMP#c1", 250_000, later, HORIZON) for _ in range(3)] == [
        later, later + 250_000, later + 500_000]


def test_a_released_turn_is_given_back_only_when_nobody_queued_behind_it(fns):
    records = runtime.records()
    first = records.reserve_send_time("NUM#n", 1_000_000, T0, HORIZON)
    second = records.reserve_send_time("NUM#n", 1_000_000, T0, HORIZON)
    assert (first, second) == (T0, T0 + 1_000_000)
    records.release_send_time("NUM#n", first, 1_000_000)  # the second is behind it: kept
    assert records.store.get("PACE#NUM#n", "PACE")["next_at"] == T0 + 2_000_000
    records.release_send_time("NUM#n", second, 1_000_000)  # the last one: given back
    assert records.store.get("PACE#NUM#n", "PACE")["next_at"] == T0 + 1_000_000
    assert records.reserve_send_time("NUM#n", 1_000_000, T0, HORIZON) == T0 + 1_000_000
