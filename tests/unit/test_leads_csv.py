"""`examples/leads.csv`: the lead list `make demo` submits, as real lists arrive."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import phonenumbers
import pytest

from scripts import make_leads_csv

CSV_PATH = Path(__file__).resolve().parents[2] / "examples" / "leads.csv"
HEADER = ["first_name", "last_name", "phone", "email", "source", "zip", "state"]

FORMATS = {
    "(212) 555-0142": re.compile(r"\(\d{3}\) \d{3}-\d{4}"),
    "+1 212 555 0142": re.compile(r"\+1 \d{3} \d{3} \d{4}"),
    "212.555.0142": re.compile(r"\d{3}\.\d{3}\.\d{4}"),
    "1-212-555-0142": re.compile(r"1-\d{3}-\d{3}-\d{4}"),
    "2.125550142E+09": re.compile(r"\d\.\d{9}E\+09"),
    "2.12555E+09": re.compile(r"\d\.\d{5}E\+09"),
}
MAGIC = {"5005550006", "5005550001", "5005550009", "5005550004"}
EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF]")


@pytest.fixture(scope="module")
def text() -> str:
    return CSV_PATH.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def rows(text) -> list[dict[str, str]]:
    return list(csv.DictReader(text.splitlines()))


@pytest.fixture(scope="module")
def phones(rows) -> list[str]:
    return [row["phone"] for row in rows]


def _digits(phone: str) -> str:
    """The 10-digit national number a phone cell spells (Excel notation expanded)."""
    phone = phone.strip()
    if re.fullmatch(r"\d\.\d+E\+09", phone):
        return str(int(float(phone)))
    return re.sub(r"\D", "", phone)[-10:]


def test_has_the_header_and_more_than_one_keys_minute_of_rows(text, rows):
    assert text.splitlines()[0].split(",") == HEADER
    # 300 requests/min per key: the file must not fit in one minute.
    assert len(rows) >= 500
    assert len(rows) == 612
    # Empty lines are not rows, and the file carries a couple of them.
    assert text.splitlines().count("") == 2
    assert all(len(row) == len(HEADER) and None not in row for row in rows)


@pytest.mark.parametrize("example", sorted(FORMATS))
def test_contains_each_phone_format_as_lists_write_it(phones, example):
    pattern = FORMATS[example]
    assert any(pattern.fullmatch(p.strip()) for p in phones), example


def test_contains_messy_phones(phones):
    stripped = [p.strip() for p in phones]
    assert sum(1 for p in phones if p and p != p.strip() and p.strip()) >= 10  # padded
    assert sum(1 for p in stripped if not p) == 18  # blank, or spaces only
    letters = [p for p in stripped if re.search(r"[A-Za-z]", p) and not re.fullmatch(
        r"\d\.\d+E\+\d+", p)]
    assert "555-CALL-NOW" in letters and "call me" in letters
    assert len(letters) == 12
    assert sum(1 for p in stripped if FORMATS["2.12555E+09"].fullmatch(p)) == 5


def test_contains_twilio_magic_numbers(phones):
    assert {_digits(p) for p in phones} >= MAGIC


def test_duplicates_come_back_in_a_different_spelling(phones):
    textable = [p.strip() for p in phones
                if p.strip() and not re.search(r"[A-Za-z]", p.replace("E+09", ""))]
    by_number = Counter(_digits(p) for p in textable if len(_digits(p)) == 10
                        and not FORMATS["2.12555E+09"].fullmatch(p))
    repeated = {number for number, count in by_number.items() if count > 1}
    assert len(repeated) == 30
    for number in repeated:
        spellings = {p for p in textable if _digits(p) == number}
        assert len(spellings) > 1, number


def test_names_carry_accents_apostrophes_emoji_and_blanks(rows):
    firsts = [row["first_name"] for row in rows]
    lasts = [row["last_name"] for row in rows]
    names = firsts + lasts
    for expected in ("José", "Zoë", "Nguyễn", "O'Brien"):
        assert expected in {n.strip() for n in names}, expected
    assert any(EMOJI.search(n) for n in names)
    assert any("🔥" in n for n in names)
    assert 2 <= sum(1 for n in firsts if not n.strip()) <= 5
    assert any(n != n.strip() for n in names)


def test_every_number_is_fictional_and_valid_across_all_us_time_zones(rows):
    area_codes = Counter()
    for row in rows:
        phone = row["phone"].strip()
        if not phone or re.search(r"[A-Za-z]", phone.replace("E+09", "")):
            continue
        digits = _digits(phone)
        if digits in MAGIC:
            continue
        number = phonenumbers.parse("+1" + digits, None) if len(digits) == 10 else None
        if number is None or not phonenumbers.is_valid_number(number):
            continue  # a deliberately broken entry (local number, a digit short, 555-555-5555)
        # 555-0100..0199 are reserved for fiction; the cut Excel ones round to 5550000.
        assert re.fullmatch(r"\d{3}5550(1\d\d|000)", digits), phone
        area_codes[digits[:3]] += 1
    for code in ("212", "312", "303", "602", "480", "213", "907", "808", "787"):
        assert area_codes[code] >= 3, code


def test_regenerating_yields_the_committed_bytes(tmp_path):
    out = tmp_path / "leads.csv"
    assert make_leads_csv.main(["--out", str(out), "--quiet"]) == 0
    assert out.read_bytes() == CSV_PATH.read_bytes()


def test_the_designed_outcome_of_every_row_matches_the_phone_rules():
    phones = pytest.importorskip("sendline.domain.phones")
    rows = [row for row in make_leads_csv.build_rows() if row is not None]
    accepted: list[str] = []
    rejected: Counter[str] = Counter()
    for row in rows:
        try:
            phone = phones.normalise_phone(row.phone)
        except phones.PhoneRejected:
            rejected[row.category] += 1
        else:
            assert row.category not in make_leads_csv.REJECTED_CATEGORIES, row
            assert phone.e164 == row.e164, row
            accepted.append(phone.e164)
    assert rejected == {"blank": 18, "letters": 12, "invalid_digits": 4, "excel_cut": 5}
    assert len(accepted) == 573
    assert len(set(accepted)) == 543
