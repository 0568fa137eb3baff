"""Report periods: a time range as the counter buckets that cover it exactly.

Counters are kept per hour (`H#2026-12-03T14`), per day (`D#2026-12-03`) and in total, in the
reporting time zone (domain.counters.time_buckets). A period is whole hours: its whole days are
read as day buckets and only its ragged ends as hour buckets, so a 92-day report reads about 140
buckets, whatever the number of texts in it. A period with no bounds is all time: one `TOTAL`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sendline.errors import FieldProblem, ValidationFailed

HOUR = timedelta(hours=1)
MAX_DAYS = 366
# Reports drawn hour by hour (the hourly trend, the heatmap) read 8 shards per hour.
MAX_HOURLY_DAYS = 31


@dataclass(frozen=True)
class Period:
    """[start, end) in whole hours (aware UTC), or all time when both are None."""

    start: datetime | None
    end: datetime | None
    timezone: str = "UTC"

    @property
    def all_time(self) -> bool:
        return self.start is None

    def hours(self) -> list[tuple[str, datetime]]:
        """Each hour bucket of the period with the UTC moment it starts, oldest first. Where the
        clocks go back, two UTC hours share a local hour's bucket: it is listed once."""
        if self.start is None or self.end is None:
            raise ValueError("an all-time period has no hours")
        zone, seen, found = ZoneInfo(self.timezone), set(), []
        moment = self.start
        while moment < self.end:
            bucket = f"H#{moment.astimezone(zone):%Y-%m-%dT%H}"
            if bucket not in seen:
                seen.add(bucket)
                found.append((bucket, moment))
            moment += HOUR
        return found

    def days(self) -> list[tuple[str, date]]:
        """Each local day the period touches, with its day bucket, oldest first."""
        zone, found = ZoneInfo(self.timezone), {}
        for _, moment in self.hours():
            day = moment.astimezone(zone).date()
            found.setdefault(f"D#{day:%Y-%m-%d}", day)
        return [(bucket, day) for bucket, day in found.items()]

    def buckets(self) -> list[str]:
        """The fewest buckets that add up to exactly the period: its whole local days as day
        buckets, the hours before the first and after the last as hour buckets."""
        if self.all_time:
            return ["TOTAL"]
        zone = ZoneInfo(self.timezone)
        by_day: dict[date, list[str]] = {}
        for bucket, moment in self.hours():
            by_day.setdefault(moment.astimezone(zone).date(), []).append(bucket)
        found: list[str] = []
        for day, hours in by_day.items():
            if len(hours) == _hours_in(day, zone):
                found.append(f"D#{day:%Y-%m-%d}")
            else:
                found += hours
        return found

    def describe(self) -> dict[str, str | None]:
        def text(moment: datetime | None) -> str | None:
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None

        return {"from": text(self.start), "to": text(self.end), "timezone": self.timezone}


def _hours_in(day: date, zone: ZoneInfo) -> int:
    """Local hour buckets in a day: 23 or 25 on the days the clocks change."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=zone).astimezone(UTC)
    return len({f"{(start + HOUR * i).astimezone(zone):%H}" for i in range(int((end - start) / HOUR))})


def parse_moment(name: str, text: str) -> datetime:
    """A period bound: a date (its midnight UTC) or an ISO 8601 time; without an offset it is
    UTC. Rounded down to its hour, as counters are kept."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(FieldProblem(name, "must be a date or an ISO 8601 time, e.g. 2026-12-01T14:00:00Z")) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def period(start: str | None, end: str | None, now: datetime, timezone: str = "UTC", *,
           default_days: int | None = None, max_days: int = MAX_DAYS) -> Period:
    """The period a report asks for. Neither bound: the last `default_days` up to the end of the
    current hour, or all time when `default_days` is None. Only `from`: up to now. Only `to`:
    `default_days` (or 30) before it."""
    if not start and not end and default_days is None:
        return Period(None, None, timezone)
    upper = parse_moment("to", end) if end else now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + HOUR
    lower = parse_moment("from", start) if start else upper - timedelta(days=default_days or 30)
    if lower >= upper:
        raise ValidationFailed(FieldProblem("to", "must be at least an hour after from"))
    if upper - lower > timedelta(days=max_days):
        raise ValidationFailed(FieldProblem("to", f"must be at most {max_days} days after from"))
    return Period(lower, upper, timezone)
