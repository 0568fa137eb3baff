"""Report periods as the counter buckets that cover them exactly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sendline.domain.periods import Period, period
from sendline.errors import ValidationFailed

NOW = datetime(2026, 12, 3, 14, 25, tzinfo=UTC)


def test_whole_days_are_read_as_days_and_the_ragged_ends_as_hours():
    p = Period(datetime(2026, 12, 1, 22, tzinfo=UTC), datetime(2026, 12, 4, 2, tzinfo=UTC))
    assert p.buckets() == ["H#2026-12-01T22", "H#2026-12-01T23", "D#2026-12-02", "D#2026-12-03",
                           "H#2026-12-04T00", "H#2026-12-04T01"]


def test_all_time_is_the_total():
    assert period(None, None, NOW).buckets() == ["TOTAL"]


def test_the_default_is_the_last_days_up_to_the_end_of_this_hour():
    p = period(None, None, NOW, default_days=7)
    assert (p.start, p.end) == (datetime(2026, 11, 26, 15, tzinfo=UTC), datetime(2026, 12, 3, 15, tzinfo=UTC))
    assert len(p.buckets()) == 9 + 6 + 15  # the first day's last 9 hours, six days, today's 15 hours


def test_bounds_are_rounded_down_to_their_hour_and_read_in_utc_without_an_offset():
    p = period("2026-12-01T10:59:59", "2026-12-01T13:30:00+02:00", NOW)
    assert (p.start, p.end) == (datetime(2026, 12, 1, 10, tzinfo=UTC), datetime(2026, 12, 1, 11, tzinfo=UTC))
    assert p.buckets() == ["H#2026-12-01T10"]


def test_days_in_the_reporting_zone_follow_the_clock_change():
    # New York's clocks went back on 2026-11-01: that day has 25 hours and 24 hour buckets.
    p = Period(datetime(2026, 11, 1, 4, tzinfo=UTC), datetime(2026, 11, 2, 5, tzinfo=UTC), "America/New_York")
    assert p.buckets() == ["D#2026-11-01"]
    assert len(p.hours()) == 24


@pytest.mark.parametrize(("start", "end", "field", "reason"), [
    ("yesterday", None, "from", "must be a date or an ISO 8601 time, e.g. 2026-12-01T14:00:00Z"),
    ("2026-12-02", "2026-12-02T00:30:00Z", "to", "must be at least an hour after from"),
    ("2025-01-01", "2026-12-01", "to", "must be at most 366 days after from"),
])
def test_bad_bounds_are_named(start, end, field, reason):
    with pytest.raises(ValidationFailed) as raised:
        period(start, end, NOW)
    assert [(p.field, p.reason) for p in raised.value.problems] == [(field, reason)]
