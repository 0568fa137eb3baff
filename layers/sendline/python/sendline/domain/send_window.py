"""When a recipient may be texted: hours of the day in the recipient's own time zone, under the
rules of the recipient's state.

Both come from the number's area code: the time zones from phonenumbers' time zone data, the
state from its geocoder ("Florida", "Washington State", "Chicago, IL"), read ahead of time into
`data/area_code_states.json` (scripts/area_code_states.py: the geocoder itself would cost every
function 100 MB and a third of a second at cold start). Each state's hours are data
(`data/quiet_hours.json`): the federal 08:00-21:00 everywhere, narrower hours where a state has
them, weekday by weekday where it has those. An operator's window (a campaign's or a flow's) only
ever narrows what the state allows.

A number whose area code spans several zones must be inside the window in all of them (Alaska's
area code is both Anchorage and Adak). A number whose state is unknown (toll-free,
non-geographic, Canadian) follows the conservative default rule, in its own zones or, when none
places it, in the continental US zones on both coasts, so it is never texted at night on either.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as number_zones

RULES_FILE = Path(__file__).parent / "data" / "quiet_hours.json"
AREA_CODES_FILE = Path(__file__).parent / "data" / "area_code_states.json"
MAX_ZONES = 4  # more than this means "not tied to a place"
# Far enough ahead to pass a week's closed days, whatever the state and the operator's window.
HORIZON = timedelta(days=8)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_STATE_SUFFIX = re.compile(r",\s*([A-Z]{2})$")  # "Chicago, IL"


def clock(text: str) -> time:
    """"08:00"; "24:00" is the end of the day."""
    return time.max if text == "24:00" else time.fromisoformat(text)


@dataclass(frozen=True)
class Hours:
    """[start, end) in local time."""

    start: time
    end: time

    def __and__(self, other: Hours) -> Hours | None:
        start, end = max(self.start, other.start), min(self.end, other.end)
        return Hours(start, end) if start < end else None

    def __contains__(self, moment: time) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True)
class StateRule:
    """The hours a place allows texts on each weekday, Monday first; None for a day with none.
    `holidays_of` names the state whose public holidays have no texts at all (Alabama's,
    Louisiana's, Rhode Island's), None where holidays are ordinary days."""

    days: tuple[Hours | None, ...]
    holidays_of: str | None = None

    @classmethod
    def daily(cls, hours: Hours, *, sundays: bool = True) -> StateRule:
        return cls(tuple(hours if sundays or day != "sun" else None for day in DAYS))

    def on(self, weekday: int) -> Hours | None:
        return self.days[weekday]

    def on_date(self, day: date) -> Hours | None:
        """The hours of this local date: none on the state's public holidays."""
        if self.holidays_of and day in public_holidays(self.holidays_of, day.year):
            return None
        return self.days[day.weekday()]

    def __and__(self, other: StateRule) -> StateRule:
        return StateRule(tuple(a & b if a and b else None for a, b in zip(self.days, other.days, strict=True)),
                         self.holidays_of or other.holidays_of)

    def within(self, hours: Hours) -> StateRule:
        return StateRule(tuple(day & hours if day else None for day in self.days), self.holidays_of)


@lru_cache(maxsize=64)
def public_holidays(state: str, year: int) -> frozenset[date]:
    """A US state's public holidays in a year, the days they are observed included (the
    `holidays` package's calendar of federal and state holidays). Loaded only for the states
    whose rules need it: the package takes tens of milliseconds to import."""
    import holidays

    return frozenset(holidays.country_holidays("US", subdiv=state, years=year))


@dataclass(frozen=True)
class SendWindow:
    """The hours an operator allows (a campaign's or a flow's), [start, end) in the recipient's
    local time; they narrow the state's, never widen them. The default narrows nothing: the
    rules table already holds the federal window.

    `unknown_state` is the rule for a number whose state is unknown: the account's default rule
    (settings `send_windows.default_rule`); None means the table's."""

    start: time = time(0, 0)
    end: time = time.max
    unknown_state: StateRule | None = None

    @classmethod
    def parse(cls, start: str, end: str, unknown_state: StateRule | None = None) -> SendWindow:
        """"08:00", "21:00"; an end of "24:00" is the end of the day."""
        return cls(clock(start), clock(end), unknown_state)

    @property
    def hours(self) -> Hours:
        return Hours(self.start, self.end)


@dataclass(frozen=True)
class QuietHoursTable:
    federal: StateRule
    unknown_state: StateRule
    unknown_state_zones: tuple[str, ...]
    states: dict[str, StateRule]  # state or territory code -> its rule, federal limits included
    names: dict[str, str]  # a state's name or alias, lower case -> its code
    territories: dict[str, str]  # phonenumbers region -> the territory's zone
    area_codes: dict[str, str]  # a US area code -> its state
    daily_caps: dict[str, int]  # state -> the most texts one recipient may get in 24 hours


def _hours(entry: dict[str, str]) -> Hours:
    return Hours(clock(entry["start"]), clock(entry["end"]))


def _rule(entry: dict[str, Any], code: str | None = None) -> StateRule:
    every_day = _hours(entry["hours"])
    days = entry.get("days") or {}
    return StateRule(tuple((_hours(days[d]) if days[d] else None) if d in days else every_day for d in DAYS),
                     code if entry.get("no_texts_on_public_holidays") else None)


def rules_file() -> Path:
    """The rules table shipped with the code. The local stack alone may name another with
    QUIET_HOURS_FILE (its tests and benchmarks run at any hour); the deployed stack never sets it."""
    override = os.environ.get("QUIET_HOURS_FILE")
    return Path(override) if override else RULES_FILE


@lru_cache(maxsize=1)
def quiet_hours() -> QuietHoursTable:
    """The rules table, read once."""
    data = json.loads(rules_file().read_text(encoding="utf-8"))
    federal = _rule(data["federal"])
    states, names = {}, {}
    for code, entry in data["states"].items():
        states[code] = federal & _rule(entry, code) if "hours" in entry else federal
        for name in (entry["name"], *entry.get("aliases", ())):
            names[name.lower()] = code
    territories = {}
    for code, entry in data["territories"].items():
        states[code] = federal & _rule(entry) if "hours" in entry else federal
        territories[code] = entry["zone"]
    area_codes = json.loads(AREA_CODES_FILE.read_text(encoding="utf-8"))["states"]
    daily_caps = {code: int(entry["max_texts_per_24h"]) for code, entry in data["states"].items()
                  if entry.get("max_texts_per_24h")}
    return QuietHoursTable(federal=federal, unknown_state=federal & _rule(data["unknown_state"]),
                           unknown_state_zones=tuple(data["unknown_state_zones"]), states=states, names=names,
                           territories=territories, area_codes=area_codes, daily_caps=daily_caps)


@dataclass(frozen=True)
class Place:
    """Where a number's area code puts it: its state or US territory (None when that is not
    known) and the time zones it may be in."""

    state: str | None
    zones: tuple[str, ...]


def state_named(description: str, table: QuietHoursTable) -> str | None:
    """The state code of a geocoder description ("Chicago, IL", "Florida"), or None."""
    suffix = _STATE_SUFFIX.search(description)
    if suffix and suffix.group(1) in table.states:
        return suffix.group(1)
    return table.names.get(description.strip().lower())


@lru_cache(maxsize=4096)
def place_of(e164: str) -> Place:
    table = quiet_hours()
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return Place(None, table.unknown_state_zones)
    zones = tuple(z for z in number_zones.time_zones_for_number(number) if z != "Etc/Unknown")
    if len(zones) > MAX_ZONES:
        zones = ()
    region = phonenumbers.region_code_for_number(number)
    if region in table.territories:
        return Place(region, zones or (table.territories[region],))
    area_code = str(number.national_number)[:3]
    state = table.area_codes.get(area_code) if region == "US" else None
    return Place(state, zones or table.unknown_state_zones)


def daily_cap(e164: str) -> int | None:
    """The most texts this number may get in any 24 hours under its state's law (Florida,
    Oklahoma, Maryland: 3), or None where the state sets no such cap."""
    state = place_of(e164).state
    return quiet_hours().daily_caps.get(state) if state else None


def zones_for(e164: str) -> tuple[str, ...]:
    return place_of(e164).zones


@lru_cache(maxsize=1024)
def _effective(state: str | None, window: SendWindow) -> StateRule:
    table = quiet_hours()
    if state is None:
        rule = table.federal & (window.unknown_state or table.unknown_state)
    else:
        rule = table.states.get(state, table.federal)
    return rule.within(window.hours)


def rule_for(e164: str, window: SendWindow = SendWindow()) -> StateRule:
    """The hours this number may be texted on each weekday: its state's rule (or the default
    rule when its state is unknown), narrowed by the operator's window."""
    return _effective(place_of(e164).state, window)


def _inside(moment: datetime, zones: tuple[str, ...], rule: StateRule) -> bool:
    for zone in zones:
        local = moment.astimezone(ZoneInfo(zone))
        hours = rule.on_date(local.date())
        if hours is None or local.time() not in hours:
            return False
    return True


def is_open(e164: str, moment: datetime, window: SendWindow = SendWindow()) -> bool:
    place = place_of(e164)
    return _inside(moment, place.zones, _effective(place.state, window))


def next_open(e164: str, moment: datetime, window: SendWindow = SendWindow()) -> datetime | None:
    """`moment` itself when the number may be texted then, else the first moment after it when
    it may, or None if there is none within eight days (the operator's window and the state's
    never meet, or the number's zones are never open together).

    The first open moment is always where one zone's hours begin, so only those are tried:
    each zone's opening on each local day, made a real instant by zoneinfo (an opening that
    falls in a skipped DST hour becomes the same wall time an hour later)."""
    place = place_of(e164)
    rule = _effective(place.state, window)
    if _inside(moment, place.zones, rule):
        return moment
    openings = set()
    for zone in place.zones:
        tz = ZoneInfo(zone)
        first_day = moment.astimezone(tz).date()
        for offset in range(HORIZON.days + 1):
            day = first_day + timedelta(days=offset)
            hours = rule.on_date(day)
            if hours is not None:
                opening = datetime.combine(day, hours.start, tzinfo=tz).astimezone(moment.tzinfo)
                if moment < opening <= moment + HORIZON:
                    openings.add(opening)
    return next((o for o in sorted(openings) if _inside(o, place.zones, rule)), None)
