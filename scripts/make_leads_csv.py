"""Write `examples/leads.csv`: a lead list as lead sellers and web forms really deliver them.

`python -m scripts.make_leads_csv [--out examples/leads.csv] [--seed 2024]`

The file is deterministic (seeded), so regenerating it yields the committed bytes. Every
textable number uses a fictional 555-0100..0199 line in a real area code, spread over every US
time zone (Eastern through Hawaii, plus Arizona without DST and Puerto Rico), so each one is valid
for `phonenumbers` and belongs to nobody. Around them sit the rows a real list carries: the same
number in a dozen spellings, Excel's scientific notation (whole and already cut), blanks, text in
the phone column, duplicates written another way, Twilio's magic test numbers, and names with
accents, apostrophes and emoji.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import phonenumbers

HEADER = ("first_name", "last_name", "phone", "email", "source", "zip", "state")
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "examples" / "leads.csv"
DEFAULT_SEED = 2024

UNIQUE_VALID = 539
BLANK_PHONES = 18  # 14 empty, 4 only spaces
GARBAGE_PHONES = (
    "call me",
    "555-CALL-NOW",
    "n/a",
    "N/A",
    "none",
    "ask for Maria",
    "TBD",
    "xxx-xxx-xxxx",
    "see email",
    "no phone",
    "text only pls",
    "call after 5pm",
)
# Digits only, but no number: a local number without its area code, one digit short, and the
# two values people type into forms to get past a required field.
INVALID_DIGITS = ("555-0142", "212-555-014", "555-555-5555", "(123) 456-7890")
EXCEL_CUT = 5
DUPLICATES = 30
DUPLICATE_MIN_GAP = 15  # rows between a lead and its re-submission
BLANK_LINES_AFTER = (200, 400)  # data rows after which an empty line appears

# Twilio's magic "To" numbers for test credentials, each with the outcome Twilio documents.
MAGIC_NUMBERS = (
    ("+15005550006", "+15005550006", "valid: delivered"),
    ("(500) 555-0001", "+15005550001", "invalid number: 21211"),
    ("500-555-0009", "+15005550009", "not SMS-capable: 21614"),
    ("+1 500 555 0004", "+15005550004", "blocked / opted out: 21610"),
)


@dataclass(frozen=True)
class AreaCode:
    code: str
    state: str
    zone: str
    zips: tuple[str, ...]
    weight: int


AREA_CODES = (
    AreaCode("212", "NY", "Eastern", ("10001", "10016", "10024"), 6),
    AreaCode("718", "NY", "Eastern", ("11201", "11215", "11375"), 5),
    AreaCode("516", "NY", "Eastern", ("11501", "11553"), 2),
    AreaCode("617", "MA", "Eastern", ("02108", "02116"), 3),
    AreaCode("215", "PA", "Eastern", ("19103", "19147"), 3),
    AreaCode("412", "PA", "Eastern", ("15213", "15222"), 2),
    AreaCode("202", "DC", "Eastern", ("20001", "20009"), 2),
    AreaCode("305", "FL", "Eastern", ("33101", "33130"), 4),
    AreaCode("407", "FL", "Eastern", ("32801", "32803"), 3),
    AreaCode("813", "FL", "Eastern", ("33602", "33606"), 3),
    AreaCode("404", "GA", "Eastern", ("30303", "30309"), 4),
    AreaCode("704", "NC", "Eastern", ("28202", "28203"), 3),
    AreaCode("313", "MI", "Eastern", ("48201", "48226"), 2),
    AreaCode("614", "OH", "Eastern", ("43215", "43201"), 2),
    AreaCode("973", "NJ", "Eastern", ("07102", "07104"), 2),
    AreaCode("312", "IL", "Central", ("60601", "60614"), 4),
    AreaCode("773", "IL", "Central", ("60618", "60647"), 3),
    AreaCode("214", "TX", "Central", ("75201", "75204"), 4),
    AreaCode("713", "TX", "Central", ("77002", "77006"), 4),
    AreaCode("512", "TX", "Central", ("78701", "78704"), 3),
    AreaCode("210", "TX", "Central", ("78205", "78212"), 2),
    AreaCode("615", "TN", "Central", ("37203", "37206"), 2),
    AreaCode("504", "LA", "Central", ("70112", "70116"), 2),
    AreaCode("612", "MN", "Central", ("55401", "55403"), 2),
    AreaCode("816", "MO", "Central", ("64105", "64111"), 2),
    AreaCode("414", "WI", "Central", ("53202", "53204"), 2),
    AreaCode("405", "OK", "Central", ("73102", "73103"), 2),
    AreaCode("303", "CO", "Mountain", ("80202", "80205"), 3),
    AreaCode("720", "CO", "Mountain", ("80204", "80211"), 2),
    AreaCode("801", "UT", "Mountain", ("84101", "84111"), 2),
    AreaCode("505", "NM", "Mountain", ("87102", "87106"), 2),
    AreaCode("406", "MT", "Mountain", ("59601", "59101"), 1),
    AreaCode("208", "ID", "Mountain", ("83702", "83706"), 1),
    AreaCode("602", "AZ", "Mountain (Arizona, no DST)", ("85004", "85008"), 3),
    AreaCode("480", "AZ", "Mountain (Arizona, no DST)", ("85281", "85251"), 3),
    AreaCode("520", "AZ", "Mountain (Arizona, no DST)", ("85701", "85719"), 1),
    AreaCode("213", "CA", "Pacific", ("90012", "90013"), 4),
    AreaCode("310", "CA", "Pacific", ("90401", "90025"), 3),
    AreaCode("415", "CA", "Pacific", ("94102", "94110"), 3),
    AreaCode("619", "CA", "Pacific", ("92101", "92103"), 2),
    AreaCode("916", "CA", "Pacific", ("95814", "95816"), 2),
    AreaCode("206", "WA", "Pacific", ("98101", "98122"), 3),
    AreaCode("503", "OR", "Pacific", ("97204", "97209"), 2),
    AreaCode("702", "NV", "Pacific", ("89101", "89109"), 2),
    AreaCode("907", "AK", "Alaska", ("99501", "99503", "99701"), 1),
    AreaCode("808", "HI", "Hawaii", ("96813", "96815", "96720"), 1),
    AreaCode("787", "PR", "Atlantic (Puerto Rico)", ("00901", "00907"), 1),
    AreaCode("939", "PR", "Atlantic (Puerto Rico)", ("00926", "00918"), 1),
)
MIN_PER_AREA_CODE = 3


def _paren(d: str) -> str:
    return f"({d[:3]}) {d[3:6]}-{d[6:]}"


def _dashed(d: str) -> str:
    return f"{d[:3]}-{d[3:6]}-{d[6:]}"


def _plus_spaced(d: str) -> str:
    return f"+1 {d[:3]} {d[3:6]} {d[6:]}"


def _dotted(d: str) -> str:
    return f"{d[:3]}.{d[3:6]}.{d[6:]}"


def _one_dashed(d: str) -> str:
    return f"1-{d[:3]}-{d[3:6]}-{d[6:]}"


def _plain10(d: str) -> str:
    return d


def _e164(d: str) -> str:
    return f"+1{d}"


def _plain11(d: str) -> str:
    return f"1{d}"


def _plus_paren(d: str) -> str:
    return f"+1 ({d[:3]}) {d[3:6]}-{d[6:]}"


def _excel_full(d: str) -> str:
    # A column formatted "Scientific" with nine decimals keeps every digit of a 10-digit number.
    return f"{d[0]}.{d[1:]}E+09"


def excel_cut(d: str) -> str:
    """What Excel's General format shows (and saves to CSV) for a 10-digit number: 6 digits."""
    return f"{int(d):.5E}"


# name, formatter, weight in the mix of textable numbers
PHONE_FORMATS = (
    ("paren", _paren, 24),
    ("dashed", _dashed, 15),
    ("plain10", _plain10, 12),
    ("plus_spaced", _plus_spaced, 10),
    ("e164", _e164, 10),
    ("dotted", _dotted, 10),
    ("one_dashed", _one_dashed, 8),
    ("excel_full", _excel_full, 6),
    ("plain11", _plain11, 3),
    ("plus_paren", _plus_paren, 2),
)
_FORMATTERS = {name: fn for name, fn, _ in PHONE_FORMATS}

FIRST_NAMES = (
    "James", "Mary", "Michael", "Jennifer", "David", "Linda", "Chris", "Ashley", "Brittany",
    "Tyler", "Jessica", "Daniel", "Sarah", "Kevin", "Amanda", "Brandon", "Megan", "Jason",
    "Nicole", "Ryan", "Stephanie", "Justin", "Heather", "Anthony", "Crystal", "Marcus", "Tasha",
    "DeShawn", "Keisha", "Luis", "Carlos", "Ana", "Mei", "Wei", "Priya", "Raj", "Fatima", "Omar",
    "Kiana", "Leilani", "Kai", "Nalani", "Aiyana", "Dakota", "Hunter", "Madison", "Logan",
    "Tanner", "Robert", "Patricia", "William", "Elizabeth", "Joseph", "Barbara", "Thomas",
    "Susan", "Charles", "Karen", "Matthew", "Lisa", "Donald", "Betty", "Mark", "Sandra",
)
ACCENTED_FIRST_NAMES = (
    "José", "Zoë", "María", "Renée", "François", "Chloé", "Björn", "Søren", "Inés", "Raúl",
    "Jesús", "Noémie", "Thảo", "André", "Łukasz", "Ngọc",
)
EMOJI_FIRST_NAMES = ("Jess 🔥", "🔥Tony", "Kayla 💕", "Mike 👍", "Ashley ✨", "Dre 🔥🔥")
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis",
    "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams",
    "Nelson", "Hill", "Campbell", "Mitchell", "Roberts", "Carter", "Phillips", "Evans", "Turner",
    "Torres", "Parker", "Collins", "Edwards", "Stewart", "Flores", "Morris", "Nguyen", "Kim",
    "Patel", "Chen", "Kealoha", "Kahananui", "Begay", "Yazzie", "Washington", "Jefferson",
)
ACCENTED_LAST_NAMES = (
    "Nguyễn", "Peña", "Núñez", "García", "Hernández", "Müller", "Đặng", "Gómez", "Pérez",
    "Rivera-Ortíz", "Søndergaard", "Lefèvre", "Trần",
)
APOSTROPHE_LAST_NAMES = ("O'Brien", "D'Angelo", "O'Connor", "N'Diaye", "O'Neil")
# Every list must show these at least once, whatever the random draw does.
FEATURED_NAMES = (
    ("José", "Ramírez"),
    ("Zoë", "O'Brien"),
    ("Thảo", "Nguyễn"),
    ("Jess 🔥", "Miller"),
    ("Siobhán", "O'Connor"),
    ("", "Nguyễn"),
)
SOURCES = (
    ("facebook_ads", 30),
    ("google_ads", 20),
    ("landing_page", 15),
    ("tiktok", 10),
    ("zapier", 10),
    ("lead_vendor_acme", 8),
    ("referral", 5),
    ("", 2),
)
EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com")


@dataclass(frozen=True)
class LeadRow:
    """One data row plus what it was designed to exercise (the file itself carries no labels)."""

    first_name: str
    last_name: str
    phone: str
    email: str
    source: str
    zip: str
    state: str
    category: str  # valid | duplicate | magic | blank | letters | invalid_digits | excel_cut
    phone_format: str
    e164: str | None  # the number the row stands for, when it stands for one
    zone: str | None = None

    def as_csv(self) -> tuple[str, ...]:
        return (self.first_name, self.last_name, self.phone, self.email, self.source, self.zip,
                self.state)


REJECTED_CATEGORIES = frozenset({"blank", "letters", "invalid_digits", "excel_cut"})


# Letters that Unicode does not decompose into an ASCII base letter plus a mark.
_UNDECOMPOSED = str.maketrans({"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "Đ": "D", "đ": "d",
                               "ß": "ss", "Æ": "AE", "æ": "ae"})


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSED))
    folded = folded.encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _weighted(rng: random.Random, pairs) -> object:
    items = [p[0] for p in pairs]
    weights = [p[-1] for p in pairs]
    return rng.choices(items, weights=weights, k=1)[0]


def _textable(digits: str) -> str:
    """The E.164 form, after checking that phonenumbers calls it a valid number."""
    parsed = phonenumbers.parse(f"+1{digits}", None)
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"+1{digits} is not a valid number; pick another area code")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class _People:
    def __init__(self, rng: random.Random):
        self.rng = rng

    def name(self) -> tuple[str, str]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.10:
            first = rng.choice(ACCENTED_FIRST_NAMES)
        elif roll < 0.12:
            first = rng.choice(EMOJI_FIRST_NAMES)
        else:
            first = rng.choice(FIRST_NAMES)
        roll = rng.random()
        if roll < 0.10:
            last = rng.choice(ACCENTED_LAST_NAMES)
        elif roll < 0.14:
            last = rng.choice(APOSTROPHE_LAST_NAMES)
        else:
            last = rng.choice(LAST_NAMES)
        return first, last

    def written(self, first: str, last: str) -> tuple[str, str]:
        """Names as people type them into forms: shouting, lower case, stray spaces."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.03:
            first, last = first.upper(), last.upper()
        elif roll < 0.05:
            first, last = first.lower(), last.lower()
        roll = rng.random()
        if roll < 0.02:
            first = f" {first}"
        elif roll < 0.04:
            last = f"{last} "
        elif roll < 0.05:
            first = f"{first}  "
        return first, last

    def email(self, first: str, last: str) -> str:
        rng = self.rng
        if rng.random() < 0.12:
            return ""
        local = ".".join(part for part in (_ascii(first), _ascii(last)) if part) or "lead"
        if rng.random() < 0.4:
            local += str(rng.randint(1, 99))
        address = f"{local}@{rng.choice(EMAIL_DOMAINS)}"
        return address.upper() if rng.random() < 0.03 else address

    def details(self, area: AreaCode) -> tuple[str, str, str]:
        rng = self.rng
        source = _weighted(rng, SOURCES)
        zip_code = rng.choice(area.zips) if rng.random() > 0.04 else ""
        state = area.state if rng.random() > 0.03 else area.state.lower()
        return source, zip_code, state


def _padded(rng: random.Random, phone: str) -> str:
    """About 7% of phones arrive with spaces around them (copied from a form or a sheet)."""
    roll = rng.random()
    if roll < 0.025:
        return f" {phone}"
    if roll < 0.05:
        return f"{phone} "
    if roll < 0.07:
        return f"  {phone} "
    return phone


def build_rows(seed: int = DEFAULT_SEED) -> list[LeadRow | None]:
    """The lead list in file order; `None` marks an empty line between data rows."""
    rng = random.Random(seed)
    people = _People(rng)

    area_draw = [a for a in AREA_CODES for _ in range(MIN_PER_AREA_CODE)]
    area_draw += rng.choices(AREA_CODES, weights=[a.weight for a in AREA_CODES],
                             k=UNIQUE_VALID - len(area_draw))
    rng.shuffle(area_draw)
    used: set[str] = set()
    rows: list[LeadRow] = []
    format_names = [f[0] for f in PHONE_FORMATS]
    format_weights = [f[2] for f in PHONE_FORMATS]
    for area in area_draw:
        while True:
            digits = f"{area.code}5550{rng.randint(100, 199)}"
            if digits not in used:
                used.add(digits)
                break
        e164 = _textable(digits)
        fmt = rng.choices(format_names, weights=format_weights, k=1)[0]
        first, last = people.written(*people.name())
        source, zip_code, state = people.details(area)
        rows.append(LeadRow(first, last, _padded(rng, _FORMATTERS[fmt](digits)),
                            people.email(first, last), source, zip_code, state, "valid", fmt,
                            e164, area.zone))

    featured = rng.sample(range(len(rows)), len(FEATURED_NAMES) + 2)
    for index, (first, last) in zip(featured, FEATURED_NAMES, strict=False):
        row = rows[index]
        rows[index] = LeadRow(first, last, row.phone, people.email(first, last), row.source,
                              row.zip, row.state, row.category, row.phone_format, row.e164,
                              row.zone)
    for index in featured[len(FEATURED_NAMES):]:
        row = rows[index]
        rows[index] = LeadRow("", row.last_name, row.phone, row.email, row.source, row.zip,
                              row.state, row.category, row.phone_format, row.e164, row.zone)

    def other_row(phone: str, category: str, phone_format: str, e164: str | None = None,
                  area: AreaCode | None = None) -> LeadRow:
        area = area or rng.choice(AREA_CODES)
        first, last = people.written(*people.name())
        source, zip_code, state = people.details(area)
        return LeadRow(first, last, phone, people.email(first, last), source, zip_code, state,
                       category, phone_format, e164, area.zone if e164 else None)

    for i in range(BLANK_PHONES):
        rows.append(other_row("" if i % 9 else "   ", "blank", "blank"))
    for text in GARBAGE_PHONES:
        rows.append(other_row(text, "letters", "letters"))
    for text in INVALID_DIGITS:
        parsed = phonenumbers.parse(text, "US")
        if phonenumbers.is_valid_number(parsed):
            raise ValueError(f"{text!r} was meant to be an invalid number")
        rows.append(other_row(text, "invalid_digits", "invalid_digits"))
    for _ in range(EXCEL_CUT):
        area = rng.choice(AREA_CODES)
        digits = f"{area.code}5550{rng.randint(100, 199)}"
        rows.append(other_row(excel_cut(digits), "excel_cut", "excel_cut", area=area))
    for text, e164, _outcome in MAGIC_NUMBERS:
        rows.append(other_row(text, "magic", "magic", e164=e164))

    rng.shuffle(rows)
    # Re-submissions of earlier leads, in a different spelling, far enough down the file that
    # an integrator sending in order would not race the original.
    keyed = [(float(i), row) for i, row in enumerate(rows)]
    last_eligible = len(rows) - DUPLICATE_MIN_GAP - 1
    candidates = [i for i, row in enumerate(rows) if row.category == "valid" and i < last_eligible]
    for index in sorted(rng.sample(candidates, DUPLICATES)):
        original = rows[index]
        digits = original.e164[2:]
        fmt = rng.choice([f for f in format_names if f != original.phone_format])
        source = rng.choice([s for s, _ in SOURCES if s != original.source])
        position = rng.uniform(index + DUPLICATE_MIN_GAP, len(rows))
        keyed.append((position, LeadRow(original.first_name.strip(), original.last_name.strip(),
                                        _padded(rng, _FORMATTERS[fmt](digits)), original.email,
                                        source, original.zip, original.state, "duplicate", fmt,
                                        original.e164, original.zone)))
    keyed.sort(key=lambda pair: pair[0])
    ordered: list[LeadRow | None] = [row for _, row in keyed]
    for offset, after in enumerate(BLANK_LINES_AFTER):
        ordered.insert(after + offset, None)
    return ordered


def render_csv(rows: list[LeadRow | None]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for row in rows:
        if row is None:
            buffer.write("\n")
        else:
            writer.writerow(row.as_csv())
    return buffer.getvalue()


def write_csv(path: Path, seed: int = DEFAULT_SEED) -> list[LeadRow]:
    rows = build_rows(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_csv(rows).encode("utf-8"))
    return [row for row in rows if row is not None]


def composition(rows: list[LeadRow]) -> str:
    """What the file holds and how a correct API should answer each row."""
    data = [row for row in rows if row is not None]
    categories = Counter(row.category for row in data)
    formats = Counter(row.phone_format for row in data if row.category in ("valid", "duplicate"))
    zones = Counter(row.zone for row in data if row.category == "valid")
    padded = sum(1 for row in data if row.phone and row.phone != row.phone.strip())
    accepted = sum(1 for row in data if row.category not in REJECTED_CATEGORIES)
    distinct = len({row.e164 for row in data if row.category not in REJECTED_CATEGORIES})
    lines = [f"data rows: {len(data)}"]
    lines += [f"  {name}: {count}" for name, count in sorted(categories.items())]
    lines.append("phone formats (textable rows):")
    lines += [f"  {name}: {count}" for name, count in formats.most_common()]
    lines.append(f"phones with leading/trailing spaces: {padded}")
    lines.append("time zones (unique textable rows):")
    lines += [f"  {name}: {count}" for name, count in sorted(zones.items())]
    lines.append(f"expected accepted: {accepted} ({distinct} distinct leads, "
                 f"{accepted - distinct} duplicates)")
    lines.append(f"expected rejected: {len(data) - accepted}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    rows = write_csv(args.out, args.seed)
    if not args.quiet:
        print(f"wrote {args.out}")
        print(composition(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
