"""When a recipient may be texted: the hours of the day in the recipient's own time zone.

The time zone comes from the number's area code. A number whose area code spans several zones
must be inside the window in all of them; a non-geographic number (toll-free, 5XX) is judged by
the continental US zones, eastern and pacific, so it is never texted at night on either coast.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as number_zones

CONTINENTAL = ("America/New_York", "America/Los_Angeles")
MAX_ZONES = 4  # more than this means "not tied to a place"
STEP = timedelta(minutes=5)


@dataclass(frozen=True)
class SendWindow:
    """Recipients' local hours [start, end); the federal default is 08:00 to 21:00 (TCPA)."""

    start: time = time(8, 0)
    end: time = time(21, 0)

    @classmethod
    def parse(cls, start: str, end: str) -> SendWindow:
        """"08:00", "21:00"; an end of "24:00" is the end of the day."""
        return cls(time.fromisoformat(start), time.max if end == "24:00" else time.fromisoformat(end))


@lru_cache(maxsize=4096)
def zones_for(e164: str) -> tuple[str, ...]:
    try:
        zones = number_zones.time_zones_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return CONTINENTAL
    real = tuple(z for z in zones if z != "Etc/Unknown")
    if not real or len(real) > MAX_ZONES:
        return CONTINENTAL
    return real


def _inside(moment: datetime, zones: tuple[str, ...], window: SendWindow) -> bool:
    for zone in zones:
        local = moment.astimezone(ZoneInfo(zone)).time()
        if not window.start <= local < window.end:
            return False
    return True


def is_open(e164: str, moment: datetime, window: SendWindow) -> bool:
    return _inside(moment, zones_for(e164), window)


def next_open(e164: str, moment: datetime, window: SendWindow) -> datetime | None:
    """The first moment (on a 5-minute step) from `moment` when the number may be texted, or
    None if no such moment exists within two days (the zones' windows never overlap)."""
    zones = zones_for(e164)
    candidate = moment
    for _ in range(int(timedelta(days=2) / STEP)):
        if _inside(candidate, zones, window):
            return candidate
        candidate = (candidate + STEP).replace(second=0, microsecond=0)
        candidate -= timedelta(minutes=candidate.minute % 5)
    return None
