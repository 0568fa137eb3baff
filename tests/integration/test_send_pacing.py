"""The worker's pacing primitive against moto: one moment per send that every limit on it allows,
evenly spaced turns per campaign or number, restarting from now after an idle spell, never
further ahead than the horizon."""

from __future__ import annotations

from sendline import runtime

T0 = 1_796_320_800_000_000  # 2026-12-03T18:00:00Z in microseconds
HORIZON = 1_500_000


def next_free(records, key):
    return records.store.get(f"PACE#{key}", "PACE")["next_at"]


def test_turns_are_spaced_by_the_interval_up_to_the_horizon(fns):
    records = runtime.records()
    # Ten a second asked for at one moment: a turn every 100 ms until 1.5 s ahead, then none.
    turns = [records.reserve_send_time([("CAMP#c1", 100_000)], T0, HORIZON) for _ in range(18)]
    assert turns == [T0 + 100_000 * k for k in range(16)] + [None, None]
    assert next_free(records, "CAMP#c1") == T0 + 1_600_000
    # Other keys are paced on their own.
    assert records.reserve_send_time([("NUM#+12125550900", 1_000_000)], T0, HORIZON) == T0


def test_an_idle_key_starts_again_from_now_and_never_bursts_to_catch_up(fns):
    records = runtime.records()
    assert records.reserve_send_time([("CAMP#c1", 250_000)], T0, HORIZON) == T0
    later = T0 + 60_000_000
    assert [records.reserve_send_time([("CAMP#c1", 250_000)], later, HORIZON) for _ in range(3)] == [
        later, later + 250_000, later + 500_000]


def test_a_send_goes_at_a_moment_both_its_campaign_and_its_number_allow(fns):
    records = runtime.records()
    campaign, slow, fast = ("CAMP#c1", 200_000), ("NUM#slow", 1_000_000), ("NUM#fast", 500_000)
    # Two texts from a 1 MPS number in a 5-a-second campaign: the second waits for its number,
    # and the campaign's turn is taken at that same moment, not at the campaign's own next turn.
    assert records.reserve_send_time([campaign, slow], T0, HORIZON) == T0
    assert records.reserve_send_time([campaign, slow], T0, HORIZON) == T0 + 1_000_000
    assert next_free(records, "CAMP#c1") == T0 + 1_200_000
    # The third's moment would be two seconds away: nothing is reserved for it.
    assert records.reserve_send_time([campaign, slow], T0, HORIZON) is None
    assert (next_free(records, "CAMP#c1"), next_free(records, "NUM#slow")) == (T0 + 1_200_000, T0 + 2_000_000)
    # So the campaign never has two sends closer than its spacing, whichever numbers send them.
    assert records.reserve_send_time([campaign, fast], T0, HORIZON) == T0 + 1_200_000


def test_a_stale_view_of_the_turns_is_corrected_from_the_table(fns):
    records = runtime.records()
    other = type(records)(records.store)
    assert records.reserve_send_time([("NUM#n", 500_000)], T0, HORIZON) == T0
    # Another environment, which has never seen this key, takes the next turn, not the same one.
    assert other.reserve_send_time([("NUM#n", 500_000)], T0, HORIZON) == T0 + 500_000
    # And this one, whose memory is now behind, learns the turn after that from the table.
    assert records.reserve_send_time([("NUM#n", 500_000)], T0, HORIZON) == T0 + 1_000_000


def test_a_released_turn_is_given_back_only_when_nobody_queued_behind_it(fns):
    records = runtime.records()
    limits = [("CAMP#c1", 200_000), ("NUM#n", 1_000_000)]
    first = records.reserve_send_time(limits, T0, HORIZON)
    second = records.reserve_send_time(limits, T0, HORIZON)
    assert (first, second) == (T0, T0 + 1_000_000)
    records.release_send_time(limits, first)  # the second is behind it on both keys: kept
    assert (next_free(records, "CAMP#c1"), next_free(records, "NUM#n")) == (T0 + 1_200_000, T0 + 2_000_000)
    records.release_send_time(limits, second)  # the last one: given back on both
    assert (next_free(records, "CAMP#c1"), next_free(records, "NUM#n")) == (T0 + 1_000_000, T0 + 1_000_000)
    assert records.reserve_send_time(limits, T0, HORIZON) == T0 + 1_000_000


def test_a_busy_number_gives_its_campaigns_turn_way(fns):
    records = runtime.records()
    campaign, busy, free = ("CAMP#c1", 200_000), ("NUM#busy", 1_000_000), ("NUM#free", 500_000)
    assert records.reserve_send_time([campaign, busy], T0, HORIZON, give_way=True) == T0
    # The busy number's next turn is a second away, the campaign's 200 ms: no turn is taken...
    assert records.reserve_send_time([campaign, busy], T0, HORIZON, give_way=True) is None
    assert (next_free(records, "CAMP#c1"), next_free(records, "NUM#busy")) == (T0 + 200_000, T0 + 1_000_000)
    # ...so the campaign's next turn goes to another number's text.
    assert records.reserve_send_time([campaign, free], T0, HORIZON, give_way=True) == T0 + 200_000
    # A number that would hold the campaign's turn back by more than a quarter of it gives way...
    assert records.reserve_send_time([campaign, free], T0 + 400_000, HORIZON, give_way=True) is None
    # ...and one that holds it back by no more than that is waited for.
    assert records.reserve_send_time([campaign, free], T0 + 650_000, HORIZON, give_way=True) == T0 + 700_000
    assert next_free(records, "CAMP#c1") == T0 + 900_000
