"""Send windows without I/O: each state's hours by area code, weekday rules, DST, the zones
that never change their clocks, numbers with two zones or none, and operators' narrower windows."""

from __future__ import annotations

from datetime import UTC, datetime, time

import phonenumbers
import phonenumbers.geodata
import pytest
from pydantic import ValidationError

from sendline.domain.send_window import (
    Hours,
    Place,
    SendWindow,
    StateRule,
    state_named,
    is_open,
    next_open,
    place_of,
    quiet_hours,
)
from scripts.area_code_states import area_code_states
from sendline.services.settings import DefaultWindowRule

NEW_YORK = "+12125550142"  # federal 08:00-21:00, America/New_York
FLORIDA = "+13055550142"  # 08:00-20:00, America/New_York
TEXAS = "+12145550142"  # Mon-Sat 09:00-21:00, Sun 12:00-21:00, America/Chicago
RHODE_ISLAND = "+14015550142"  # weekdays 09:00-18:00, Sat 10:00-17:00, no Sundays
ALABAMA = "+12055550142"  # 08:00-20:00, no Sundays, America/Chicago
HAWAII = "+18085550142"
ARIZONA = "+16025550142"
ALASKA = "+19075550142"
PUERTO_RICO = "+17875550142"
TOLL_FREE = "+18005550142"
TORONTO = "+14165550142"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# -- where a number is -----------------------------------------------------------------------------
@pytest.mark.parametrize("phone, place", [
    (NEW_YORK, Place("NY", ("America/New_York",))),  # geocoder: "New York, NY"
    (FLORIDA, Place("FL", ("America/New_York",))),  # "Florida"
    ("+12065550142", Place("WA", ("America/Los_Angeles",))),  # "Washington State"
    ("+12025550142", Place("DC", ("America/New_York",))),  # "Washington D.C."
    (ALASKA, Place("AK", ("America/Adak", "America/Anchorage"))),
    (PUERTO_RICO, Place("PR", ("America/Puerto_Rico",))),  # a territory: region PR
    ("+16845550142", Place("AS", ("Pacific/Pago_Pago",))),  # no zone in phonenumbers: the territory's
    (TOLL_FREE, Place(None, ("America/New_York", "America/Los_Angeles"))),  # no place: both coasts
    (TORONTO, Place(None, ("America/Toronto",))),  # a province is not a US state
])
def test_the_area_code_gives_the_state_and_the_zones(phone, place):
    assert place_of(phone) == place


@pytest.mark.parametrize("description, state", [
    ("Chicago, IL", "IL"), ("Florida", "FL"), ("Washington State", "WA"), ("Washington D.C.", "DC"),
    ("Ontario", None), ("", None), ("Springfield, ON", None),
])
def test_geocoder_descriptions_map_to_state_codes(description, state):
    assert state_named(description, quiet_hours()) == state


def test_every_us_area_code_prefix_in_the_geocoder_maps_to_a_state():
    unmapped = {}
    for prefix, names in phonenumbers.geodata.GEOCODE_DATA.items():
        if not prefix.startswith("1") or len(prefix) < 4:
            continue
        region = phonenumbers.region_code_for_number(phonenumbers.parse(f"+1{prefix[1:4]}2345678"))
        if region == "US" and state_named(names["en"], quiet_hours()) is None:
            unmapped[prefix] = names["en"]
    assert unmapped == {}


def test_the_shipped_area_code_states_match_the_installed_geocoder():
    # Regenerate with `python -m scripts.area_code_states` after upgrading phonenumbers.
    assert quiet_hours().area_codes == area_code_states()
    assert len(quiet_hours().area_codes) == 359
    # 201 is New Jersey's, though one of its prefixes is labelled "New York, NY"; Puerto Rico's
    # 787 is a territory's, told by its region.
    assert {code: quiet_hours().area_codes.get(code) for code in ("201", "212", "305", "787", "800")} == {
        "201": "NJ", "212": "NY", "305": "FL", "787": None, "800": None}


# -- the rules table -----------------------------------------------------------------------------
@pytest.mark.parametrize("state, weekdays, saturday, sunday", [
    ("FL", ("08:00", "20:00"), ("08:00", "20:00"), ("08:00", "20:00")),
    ("OK", ("08:00", "20:00"), ("08:00", "20:00"), ("08:00", "20:00")),
    ("MD", ("08:00", "20:00"), ("08:00", "20:00"), ("08:00", "20:00")),
    ("WA", ("08:00", "20:00"), ("08:00", "20:00"), ("08:00", "20:00")),
    ("CT", ("09:00", "20:00"), ("09:00", "20:00"), ("09:00", "20:00")),
    ("TX", ("09:00", "21:00"), ("09:00", "21:00"), ("12:00", "21:00")),
    ("AL", ("08:00", "20:00"), ("08:00", "20:00"), None),
    ("LA", ("08:00", "20:00"), ("08:00", "20:00"), None),
    ("MS", ("08:00", "20:00"), ("08:00", "20:00"), None),
    ("RI", ("09:00", "18:00"), ("10:00", "17:00"), None),
    ("MA", ("08:00", "20:00"), ("08:00", "20:00"), ("08:00", "20:00")),
    ("NJ", ("08:00", "20:00"), ("08:00", "20:00"), ("08:00", "20:00")),
    ("NV", ("09:00", "20:00"), ("09:00", "20:00"), ("09:00", "20:00")),
    ("KY", ("10:00", "21:00"), ("10:00", "21:00"), ("10:00", "21:00")),
    ("MI", ("09:00", "21:00"), ("09:00", "21:00"), ("09:00", "21:00")),
    ("MN", ("09:00", "21:00"), ("09:00", "21:00"), ("09:00", "21:00")),
    ("NM", ("09:00", "21:00"), ("09:00", "21:00"), ("09:00", "21:00")),
    ("NY", ("08:00", "21:00"), ("08:00", "21:00"), ("08:00", "21:00")),  # federal
    ("PR", ("08:00", "21:00"), ("08:00", "21:00"), ("08:00", "21:00")),  # federal
])
def test_each_states_hours_in_the_table(state, weekdays, saturday, sunday):
    def hours(pair):
        return Hours(time.fromisoformat(pair[0]), time.fromisoformat(pair[1])) if pair else None

    rule = quiet_hours().states[state]
    assert rule.days == (hours(weekdays),) * 5 + (hours(saturday), hours(sunday))


def test_every_state_and_dc_is_in_the_table():
    assert len([code for code in quiet_hours().states if code not in quiet_hours().territories]) == 51


def test_the_account_default_rule_starts_as_the_tables_conservative_rule():
    # 09:00-20:00 local, no Sundays.
    assert DefaultWindowRule().rule() == quiet_hours().unknown_state
    assert quiet_hours().unknown_state == StateRule.daily(Hours(time(9), time(20)), sundays=False)


@pytest.mark.parametrize("rule, reason", [
    ({"start": "07:00"}, "must be within the federal window, 08:00-21:00"),
    ({"end": "21:30"}, "must be within the federal window, 08:00-21:00"),
    ({"start": "12:00", "end": "12:00"}, "start must be before end"),
])
def test_the_account_default_rule_stays_within_the_federal_window(rule, reason):
    with pytest.raises(ValidationError) as rejected:
        DefaultWindowRule.model_validate(rule)
    assert reason in str(rejected.value)


# -- open or closed, and when it opens --------------------------------------------------------------
def test_a_florida_number_at_20_30_local_waits_until_08_00_next_day():
    # 2026-12-03 20:30 EST is 2026-12-04 01:30 UTC; New York's federal 21:00 would still allow it.
    at = utc(2026, 12, 4, 1, 30)
    assert is_open(FLORIDA, at) is False
    assert is_open(NEW_YORK, at) is True
    assert next_open(FLORIDA, at) == utc(2026, 12, 4, 13, 0)  # 08:00 EST
    assert is_open(FLORIDA, utc(2026, 12, 4, 0, 59)) is True  # 19:59
    assert is_open(FLORIDA, utc(2026, 12, 4, 1, 0)) is False  # 20:00 closes


def test_texas_on_sunday_at_10_00_waits_until_noon():
    sunday_10 = utc(2026, 12, 6, 16, 0)  # Sunday 10:00 CST
    assert is_open(TEXAS, sunday_10) is False
    assert next_open(TEXAS, sunday_10) == utc(2026, 12, 6, 18, 0)  # 12:00 CST
    assert is_open(TEXAS, utc(2026, 12, 5, 16, 0)) is True  # Saturday 10:00
    assert next_open(TEXAS, utc(2026, 12, 5, 14, 0)) == utc(2026, 12, 5, 15, 0)  # Saturday 08:00 -> 09:00


def test_states_without_sundays_wait_until_monday():
    saturday_20 = utc(2026, 12, 6, 2, 0)  # Alabama: Saturday 20:00 CST
    assert next_open(ALABAMA, saturday_20) == utc(2026, 12, 7, 14, 0)  # Monday 08:00 CST
    # Rhode Island: Friday 18:00 -> Saturday 10:00; Saturday 17:00 -> Monday 09:00.
    assert next_open(RHODE_ISLAND, utc(2026, 12, 4, 23, 0)) == utc(2026, 12, 5, 15, 0)
    assert next_open(RHODE_ISLAND, utc(2026, 12, 5, 22, 0)) == utc(2026, 12, 7, 14, 0)


LOUISIANA = "+15045550142"  # 08:00-20:00, no Sundays or public holidays, America/Chicago


def test_states_without_texts_on_public_holidays_wait_for_the_next_working_day():
    # Christmas 2026 is a Friday: Alabama (08:00-20:00, no Sundays) opens on Saturday at 08:00 CST.
    christmas_10 = utc(2026, 12, 25, 16, 0)
    assert (is_open(ALABAMA, christmas_10), is_open(NEW_YORK, christmas_10)) == (False, True)
    assert next_open(ALABAMA, christmas_10) == utc(2026, 12, 26, 14, 0)
    # Alabama's own holidays count: Confederate Memorial Day, Monday 2026-04-27 (CDT, UTC-5).
    assert next_open(ALABAMA, utc(2026, 4, 27, 15, 0)) == utc(2026, 4, 28, 13, 0)
    # Louisiana's Mardi Gras, Tuesday 2026-02-17, and Good Friday, 2026-04-03.
    assert next_open(LOUISIANA, utc(2026, 2, 17, 16, 0)) == utc(2026, 2, 18, 14, 0)
    assert next_open(LOUISIANA, utc(2026, 4, 3, 15, 0)) == utc(2026, 4, 4, 13, 0)
    # Rhode Island's Victory Day, Monday 2026-08-10 (EDT): Tuesday at 09:00.
    assert next_open(RHODE_ISLAND, utc(2026, 8, 10, 14, 0)) == utc(2026, 8, 11, 13, 0)
    # An observed day counts: Independence Day 2026 is a Saturday, observed on Friday 07-03,
    # so Alabama's next opening after Thursday evening is Monday 07-06 (Sunday has none either).
    assert next_open(ALABAMA, utc(2026, 7, 3, 1, 30)) == utc(2026, 7, 6, 13, 0)
    # Florida keeps its hours on a holiday: it has no holiday rule.
    assert is_open(FLORIDA, christmas_10) is True


def test_an_operator_window_keeps_the_states_holidays():
    narrowed = SendWindow.parse("10:00", "12:00")
    assert next_open(ALABAMA, utc(2026, 12, 25, 16, 0), narrowed) == utc(2026, 12, 26, 16, 0)  # Saturday 10:00 CST


def test_next_open_across_the_march_dst_change():
    # Saturday 2026-03-07 21:00 EST; clocks go 02:00 -> 03:00 on Sunday 03-08: 08:00 is EDT, UTC-4.
    assert next_open(NEW_YORK, utc(2026, 3, 8, 2, 0)) == utc(2026, 3, 8, 12, 0)
    assert is_open(NEW_YORK, utc(2026, 3, 8, 11, 59)) is False  # 07:59 EDT
    assert is_open(NEW_YORK, utc(2026, 3, 7, 13, 0)) is True  # the day before, 08:00 EST
    # Texas's Sunday noon is 12:00 CDT, 17:00 UTC.
    assert next_open(TEXAS, utc(2026, 3, 8, 6, 0)) == utc(2026, 3, 8, 17, 0)


def test_next_open_across_the_november_dst_change():
    # Saturday 2026-10-31 21:00 EDT; clocks go 02:00 -> 01:00 on Sunday 11-01: 08:00 is EST, UTC-5.
    assert next_open(NEW_YORK, utc(2026, 11, 1, 1, 0)) == utc(2026, 11, 1, 13, 0)
    assert is_open(NEW_YORK, utc(2026, 11, 1, 12, 30)) is False  # 07:30 EST (08:30 on Saturday's clock)
    assert is_open(NEW_YORK, utc(2026, 11, 2, 1, 59)) is True  # Sunday 20:59 EST
    assert is_open(NEW_YORK, utc(2026, 11, 2, 2, 0)) is False  # 21:00 EST


def test_hawaii_keeps_the_same_hours_all_year():
    for day in (utc(2026, 1, 15, 10, 0), utc(2026, 7, 15, 10, 0)):  # 00:00 HST, winter and summer
        assert next_open(HAWAII, day) == day.replace(hour=18)  # 08:00 HST is always 18:00 UTC
    assert is_open(HAWAII, utc(2026, 7, 16, 6, 59)) is True  # 20:59 HST
    assert is_open(HAWAII, utc(2026, 7, 16, 7, 0)) is False


def test_arizona_keeps_the_same_hours_all_year():
    # Phoenix is UTC-7 in July, when Denver (MDT) is UTC-6: 08:00 there is 15:00 UTC, not 14:00.
    assert next_open(ARIZONA, utc(2026, 7, 1, 7, 0)) == utc(2026, 7, 1, 15, 0)
    assert next_open(ARIZONA, utc(2026, 12, 1, 7, 0)) == utc(2026, 12, 1, 15, 0)
    assert is_open(ARIZONA, utc(2026, 7, 1, 14, 30)) is False


def test_alaska_must_be_open_in_both_of_its_zones():
    # December: Anchorage UTC-9, Adak UTC-10. 17:30 UTC is 08:30 in Anchorage but 07:30 in Adak.
    assert is_open(ALASKA, utc(2026, 12, 3, 17, 30)) is False
    assert next_open(ALASKA, utc(2026, 12, 3, 17, 30)) == utc(2026, 12, 3, 18, 0)  # 08:00 Adak
    assert is_open(ALASKA, utc(2026, 12, 4, 5, 59)) is True  # 20:59 Anchorage
    assert is_open(ALASKA, utc(2026, 12, 4, 6, 0)) is False  # 21:00 Anchorage


def test_puerto_rico_has_the_federal_window_and_no_dst():
    # Atlantic time, UTC-4 all year: 08:00 is 12:00 UTC in December and in July.
    assert next_open(PUERTO_RICO, utc(2026, 12, 4, 9, 0)) == utc(2026, 12, 4, 12, 0)
    assert next_open(PUERTO_RICO, utc(2026, 7, 4, 9, 0)) == utc(2026, 7, 4, 12, 0)
    assert is_open(PUERTO_RICO, utc(2026, 12, 5, 0, 59)) is True  # 20:59
    assert is_open(PUERTO_RICO, utc(2026, 12, 5, 1, 0)) is False


def test_a_toll_free_number_follows_the_conservative_rule_on_both_coasts():
    thursday = utc(2026, 12, 3, 16, 30)  # 11:30 New York, 08:30 Los Angeles
    assert is_open(TOLL_FREE, thursday) is False
    assert next_open(TOLL_FREE, thursday) == utc(2026, 12, 3, 17, 0)  # 09:00 Los Angeles
    assert is_open(TOLL_FREE, utc(2026, 12, 4, 0, 59)) is True  # 19:59 New York
    assert is_open(TOLL_FREE, utc(2026, 12, 4, 1, 0)) is False  # 20:00 New York
    # Saturday 20:00 New York: no Sundays, so Monday 09:00 Los Angeles.
    assert next_open(TOLL_FREE, utc(2026, 12, 6, 1, 0)) == utc(2026, 12, 7, 17, 0)


def test_the_account_default_rule_replaces_the_tables_for_numbers_without_a_state():
    sundays_10_to_18 = SendWindow(unknown_state=DefaultWindowRule(start="10:00", end="18:00", sundays=True).rule())
    assert next_open(TOLL_FREE, utc(2026, 12, 6, 1, 0), sundays_10_to_18) == utc(2026, 12, 6, 18, 0)  # Sun 10:00 LA
    assert next_open(TORONTO, utc(2026, 12, 3, 13, 30)) == utc(2026, 12, 3, 14, 0)  # 08:30 -> 09:00 Toronto
    # A number whose state is known ignores it.
    assert next_open(FLORIDA, utc(2026, 12, 4, 1, 30), sundays_10_to_18) == utc(2026, 12, 4, 13, 0)


def test_an_operator_window_narrows_the_states_hours_and_never_widens_them():
    narrow = SendWindow.parse("10:00", "17:00")
    assert next_open(FLORIDA, utc(2026, 12, 3, 14, 0), narrow) == utc(2026, 12, 3, 15, 0)  # 09:00 -> 10:00
    assert next_open(FLORIDA, utc(2026, 12, 3, 22, 0), narrow) == utc(2026, 12, 4, 15, 0)  # 17:00 -> 10:00 next day
    wide = SendWindow.parse("06:00", "23:00")
    assert next_open(FLORIDA, utc(2026, 12, 3, 12, 0), wide) == utc(2026, 12, 3, 13, 0)  # 07:00 -> 08:00
    assert is_open(FLORIDA, utc(2026, 12, 4, 1, 30), wide) is False  # 20:30: Florida's 20:00 holds
    # Texas on Sunday: the later of the operator's 10:00 and the state's 12:00.
    assert next_open(TEXAS, utc(2026, 12, 6, 15, 0), narrow) == utc(2026, 12, 6, 18, 0)


def test_a_window_that_never_meets_the_states_has_no_opening():
    assert next_open(FLORIDA, utc(2026, 12, 3, 12, 0), SendWindow.parse("06:00", "07:30")) is None


def test_an_open_moment_is_its_own_next_opening():
    at = utc(2026, 12, 3, 18, 0)
    assert next_open(NEW_YORK, at) == at


@pytest.mark.parametrize("phone, cap", [
    (FLORIDA, 3), ("+14055550142", 3), ("+14105550142", 3),  # Florida, Oklahoma, Maryland
    (NEW_YORK, None), (TEXAS, None), (PUERTO_RICO, None), (TOLL_FREE, None),
])
def test_the_states_that_cap_texts_a_day_are_in_the_table(phone, cap):
    from sendline.domain.send_window import daily_cap

    assert daily_cap(phone) == cap
