"""Contacts CSV files for bulk campaigns: each sample file read to its exact events and layout."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sendline.domain.contacts_csv import (
    CHUNK_BYTES,
    MAX_LINE_LENGTH,
    REPORT_COLUMNS,
    ContactRow,
    CsvLayout,
    CsvUnreadable,
    FirstLineByPhone,
    ImportTally,
    RowDuplicate,
    RowRejected,
    normalise_header,
    read_contacts,
    report_row,
    sniff_delimiter,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "contacts"


def read_fixture(name: str) -> tuple[CsvLayout, list]:
    with (FIXTURES / name).open("rb") as stream:
        layout, events = read_contacts(stream)
        return layout, list(events)


def read_bytes(data: bytes) -> tuple[CsvLayout, list]:
    layout, events = read_contacts(io.BytesIO(data))
    return layout, list(events)


def tally_of(events: list) -> ImportTally:
    tally = ImportTally()
    for event in events:
        tally.add(event)
    return tally


def contact(line: int, phone: str, first_name: str | None = None, last_name: str | None = None,
            email: str | None = None, **fields: str) -> ContactRow:
    return ContactRow(line=line, phone=phone, first_name=first_name, last_name=last_name,
                      email=email, fields=fields)


# -- encodings, line endings, quoting -----------------------------------------------------------
def test_utf8_bom_crlf_with_quoted_cells_and_one_phone_in_four_formats():
    """Given a UTF-8 file with a BOM and CRLF, quoted cells holding commas and a line break, and
    (212) 555-0142 written four ways
    When it is read
    Then the first spelling is a contact and the other three are duplicates of its line, and the
    row whose note spans lines 3-4 is on line 3, the next one on line 5."""
    layout, events = read_fixture("utf8_bom_crlf.csv")

    assert layout == CsvLayout(
        encoding="utf-8-sig", delimiter=",",
        columns={"First Name": "first_name", "Last Name": "last_name", "Phone Number": "phone",
                 "Email": "email", "Notes": "notes"},
        phone_column="Phone Number")
    assert events == [
        contact(2, "+12125550142", "Ann", "Lee", "ann@example.com",
                notes="Prefers texts, not calls"),
        contact(3, "+14155550123", "Bob", "Smith, Jr.",
                notes="Met at the fair\r\nAsked for a quote"),
        RowDuplicate(line=5, phone="+12125550142", first_line=2),
        RowDuplicate(line=6, phone="+12125550142", first_line=2),
        RowDuplicate(line=7, phone="+12125550142", first_line=2),
        contact(8, "+16175550199", "Eve", "Ng", "eve@example.com"),
    ]
    assert tally_of(events) == ImportTally(rows_read=6, accepted=3, duplicates=3, rejected=0,
                                           rejected_by_reason={})


def test_utf8_without_bom():
    """Given a UTF-8 file without a BOM, with LF endings and letters outside Latin-1
    When it is read
    Then the encoding is utf-8 and the names come through as written."""
    layout, events = read_fixture("utf8_no_bom_lf.csv")

    assert (layout.encoding, layout.delimiter, layout.phone_column) == ("utf-8", ",", "phone")
    assert events == [contact(2, "+12125550143", "Zoë", city="Malmö"),
                      contact(3, "+12125550144", "Łukasz", city="Kraków")]


def test_windows_1252_names_and_smart_quotes():
    """Given a file saved by Excel on Windows (Windows-1252: é, ñ, ë, curly quotes, an en dash)
    When it is read
    Then the layout says windows-1252 and every character decodes to the one the operator typed."""
    layout, events = read_fixture("windows_1252.csv")

    assert layout == CsvLayout(
        encoding="windows-1252", delimiter=",",
        columns={"fname": "first_name", "lname": "last_name", "cell": "phone",
                 "Comment": "comment"},
        phone_column="cell")
    assert events == [
        contact(2, "+12125550143", "José", "Núñez", comment="“Call after 5” – thanks"),
        contact(3, "+12125550144", "Zoë", "Brontë", comment="Café owner"),
    ]


def test_a_file_mixing_utf8_and_windows_1252_rows():
    """Given UTF-8 rows with one Windows-1252 row pasted between them
    When it is read
    Then all three names decode right, and the layout reports the Windows-1252 it saw."""
    layout, events = read_fixture("mixed_utf8_windows_1252.csv")

    assert layout.encoding == "windows-1252"
    assert [(event.line, event.first_name) for event in events] == [
        (2, "Renée"), (3, "Françoise"), (4, "Chloé")]


def test_utf16_with_bom_tab_delimited():
    """Given Excel's "Unicode text" export: UTF-16 LE with a BOM, tabs, CRLF
    When it is read
    Then the phone column is "Mobile Number" and "Name" is a custom field."""
    layout, events = read_fixture("utf16_tab.txt")

    assert layout == CsvLayout(encoding="utf-16", delimiter="\t",
                               columns={"Name": "name", "Mobile Number": "phone"},
                               phone_column="Mobile Number")
    assert events == [contact(2, "+12125550147", name="José"),
                      contact(3, "+12125550148", name="Zoë")]


def test_lone_cr_line_endings():
    """Given an old Mac export: lines end with a lone CR, one blank line, one quoted cell holding a
    CR, and no terminator after the last row
    When it is read
    Then the rows are on lines 2, 4 and 6, the quoted CR is kept, and the last row is read."""
    _, events = read_fixture("lone_cr.csv")

    assert events == [contact(2, "+12125550148", "Ann"), contact(4, "+12125550149", "Bo\rb"),
                      contact(6, "+12125550150", "Cy")]


def test_undefined_windows_1252_bytes_are_read_as_latin1_not_refused():
    """Given bytes Windows-1252 leaves undefined (0x81, 0x9D) in a cell
    When the file is read
    Then they come through as their Latin-1 characters and the row is still a contact."""
    _, events = read_bytes(b"phone,note\n2125550160,a\x81b\x9d\n")

    assert events == [contact(2, "+12125550160", note="a\x81b\x9d")]


def whitespace_lines(size: int) -> bytes:
    """`size` bytes of lines holding only spaces (not rows), none longer than 1,000 bytes."""
    full, rest = divmod(size, 1000)
    return (b" " * 999 + b"\n") * full + (b" " * (rest - 1) + b"\n" if rest else b"")


def test_a_crlf_and_a_utf8_character_cut_by_the_chunk_boundary():
    """Given a file whose first 64 KiB chunk ends between the CR and LF of a row, and whose second
    chunk ends in the middle of that row's "é"
    When it is read
    Then no blank line appears between CR and LF (line numbers stay right), "é" is whole, and the
    encoding is still utf-8."""
    data = b"phone,note\n"
    data += whitespace_lines(CHUNK_BYTES - 1 - len(data) - len(b"2125550161,ab"))
    data += b"2125550161,ab\r\n"
    assert data[CHUNK_BYTES - 1:CHUNK_BYTES + 1] == b"\r\n"
    data += whitespace_lines(2 * CHUNK_BYTES - 1 - len(data) - len(b"2125550162,y"))
    data += "2125550162,yé\n".encode()
    assert data[2 * CHUNK_BYTES - 1:2 * CHUNK_BYTES + 1] == "é".encode()

    layout, events = read_bytes(data)

    assert layout.encoding == "utf-8"
    assert events == [contact(68, "+12125550161", note="ab"),
                      contact(135, "+12125550162", note="yé")]


# -- delimiters and headers --------------------------------------------------------------------
def test_semicolon_delimited_with_french_headers():
    """Given a semicolon file (Excel with a decimal comma) whose headers have accents
    When it is read
    Then "Téléphone" is the phone column, accents leave the custom field names, and a semicolon
    and a comma inside quoted cells stay in them."""
    layout, events = read_fixture("semicolon.csv")

    assert layout == CsvLayout(
        encoding="utf-8", delimiter=";",
        columns={"Nom": "nom", "Prénom": "prenom", "Téléphone": "phone", "Ville": "ville"},
        phone_column="Téléphone")
    assert events == [contact(2, "+12125550151", nom="Dupont; fils", prenom="Marie",
                              ville="Paris, 15e")]


def test_tab_delimited_whose_header_also_has_a_comma():
    """Given a tab-separated file with a "City, State" column
    When it is read
    Then tabs (three) win over the comma (one), and the synonyms Given Name, Surname, Tel apply."""
    layout, events = read_fixture("tab.tsv")

    assert layout == CsvLayout(
        encoding="utf-8", delimiter="\t",
        columns={"Given Name": "first_name", "Surname": "last_name", "Tel": "phone",
                 "City, State": "city_state"},
        phone_column="Tel")
    assert events == [contact(2, "+12125550152", "Ann", "Lee", city_state="New York, NY")]


def test_header_synonyms_a_mobile_column_wins_and_repeated_headers_stay_apart():
    """Given headers in odd case and spacing: PHONE and " Mobile Phone ", FirstName, SURNAME,
    E-Mail, and "Lead Source" twice
    When it is read
    Then the mobile column is the phone, the landline is kept as phone_2, and the second Lead
    Source is lead_source_2."""
    layout, events = read_fixture("synonyms.csv")

    assert layout == CsvLayout(
        encoding="utf-8", delimiter=",",
        columns={"PHONE": "phone_2", "Mobile Phone": "phone", "FirstName": "first_name",
                 "SURNAME": "last_name", "E-Mail": "email", "Lead Source": "lead_source",
                 "Lead Source (column 7)": "lead_source_2"},
        phone_column="Mobile Phone")
    assert events == [contact(2, "+12125550153", "Ann", "Lee", "ann@example.com",
                              phone_2="212-555-0100", lead_source="facebook",
                              lead_source_2="spring promo")]


@pytest.mark.parametrize("header, name", [
    ("Phone Number", "phone_number"), ("  E-Mail  ", "e_mail"), ("Mobile Phone #", "mobile_phone"),
    ("Prénom", "prenom"), ("FIRST_NAME", "first_name"), ("电话", ""), ("a" * 70, "a" * 64),
    ("x" * 63 + " y", "x" * 63),
])
def test_header_names_are_normalised(header, name):
    """Given a header as a file writes it / When normalised / Then a template-safe name."""
    assert normalise_header(header) == name


@pytest.mark.parametrize("line, delimiter", [
    ("a,b,c\r\n", ","), ("a;b;c\n", ";"), ("a\tb\tc\n", "\t"), ('"a;b;c",d,e\n', ","),
    ('"x,y"\t"z,w"\tv\n', "\t"), ("phone\n", ","), ("a,b;c\n", ","),
])
def test_the_delimiter_is_the_most_frequent_outside_quotes(line, delimiter):
    """Given a header line / When sniffed / Then its delimiter (comma on a tie or none)."""
    assert sniff_delimiter(line) == delimiter


# -- rows ---------------------------------------------------------------------------------------
def test_blank_lines_empty_rows_and_ragged_rows():
    """Given a blank line before the header, blank and whitespace lines, a row of empty cells, a
    row with fewer cells than headers and one with more
    When it is read
    Then only the two real rows count, on their physical lines, missing cells are empty and extra
    cells ignored."""
    layout, events = read_fixture("blank_and_ragged.csv")

    assert layout.columns == {"phone": "phone", "first_name": "first_name",
                              "last_name": "last_name", "city": "city"}
    assert events == [contact(4, "+12125550154", "Ann"),
                      contact(7, "+12125550155", "Bob", "Lee", city="Austin")]
    assert tally_of(events) == ImportTally(rows_read=2, accepted=2, duplicates=0, rejected=0,
                                           rejected_by_reason={})


def test_bad_phones_are_rejected_with_their_reason_and_raw_cell():
    """Given Excel notation with and without lost digits, letters, a blank phone, an extension, a
    short number, a UK number, a formula, an over-long note, and a repeat
    When it is read
    Then each row has its exact outcome and the tally counts reasons."""
    _, events = read_fixture("bad_phones.csv")

    assert events == [
        RowRejected(line=2, reason="digits lost to Excel scientific notation", value="2.12555E+09"),
        contact(3, "+12125550156", "Bob"),
        RowRejected(line=4, reason="contains letters", value="call me"),
        RowRejected(line=5, reason="is blank", value=""),
        contact(6, "+12125550157", "Ed"),
        RowRejected(line=7, reason="not a valid phone number", value="12345"),
        RowRejected(line=8, reason="only US and Canadian numbers can be texted",
                    value="+44 20 7946 0958"),
        RowRejected(line=9, reason="contains letters", value='=HYPERLINK("http://example.com")'),
        RowRejected(line=10, reason="notes is longer than 1000 characters", value="2125550158"),
        RowRejected(line=11, reason="contains letters", value="555-CALL-NOW"),
        RowDuplicate(line=12, phone="+12125550156", first_line=3),
    ]
    assert tally_of(events) == ImportTally(
        rows_read=11, accepted=2, duplicates=1, rejected=8,
        rejected_by_reason={"digits lost to Excel scientific notation": 1, "contains letters": 3,
                            "is blank": 1, "not a valid phone number": 1,
                            "only US and Canadian numbers can be texted": 1,
                            "notes is longer than 1000 characters": 1})


def test_the_report_lists_rejected_and_duplicate_rows_safely():
    """Given the bad-phones file's events
    When the report rows are made
    Then duplicates show a masked phone and the first line, and a formula cell is made text."""
    _, events = read_fixture("bad_phones.csv")

    rows = [report_row(event) for event in events if not isinstance(event, ContactRow)]

    assert REPORT_COLUMNS == ("line", "outcome", "reason", "value")
    assert rows == [
        ("2", "rejected", "digits lost to Excel scientific notation", "2.12555E+09"),
        ("4", "rejected", "contains letters", "call me"),
        ("5", "rejected", "is blank", ""),
        ("7", "rejected", "not a valid phone number", "12345"),
        ("8", "rejected", "only US and Canadian numbers can be texted", "+44 20 7946 0958"),
        ("9", "rejected", "contains letters", "'=HYPERLINK(\"http://example.com\")"),
        ("10", "rejected", "notes is longer than 1000 characters", "2125550158"),
        ("11", "rejected", "contains letters", "555-CALL-NOW"),
        ("12", "duplicate", "same phone as line 3", "+1212***0156"),
    ]


@pytest.mark.parametrize("value, shown", [
    ("x" * 50, "x" * 40), ("@SUM(A1)", "'@SUM(A1)"), ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3", "-2+3"), ("+1 (212) 555-0142", "+1 (212) 555-0142"), ("\tx", "'\tx"),
])
def test_report_values_are_cut_to_40_characters_and_never_a_formula(value, shown):
    """Given a rejected raw cell / When reported / Then at most 40 characters, never a formula."""
    assert report_row(RowRejected(line=9, reason="contains letters", value=value))[3] == shown


def test_an_accepted_row_is_not_a_report_line():
    """Given a contact / When a report row is asked for / Then it is refused."""
    with pytest.raises(TypeError):
        report_row(contact(2, "+12125550142"))


def test_custom_fields_are_capped_at_50_and_their_names_at_64_characters():
    """Given 56 custom columns, the first with an 80-character header, every cell padded with spaces
    When it is read
    Then the contact keeps the first 50 non-empty ones, stripped, the long name cut to 64."""
    layout, events = read_fixture("custom_fields.csv")

    long_name = "how_did_you_hear_about_us_and_what_would_you_like_us_to_know_bef"
    assert len(layout.columns) == 57
    assert layout.columns["How did you hear about us and what would you like us to know before "
                          "we call you"] == long_name
    [row] = events
    assert row.fields == {long_name: "radio",
                          **{f"field_{n:02d}": f"v{n:02d}" for n in range(1, 50)}}


@pytest.mark.parametrize("fixture, reason", [
    ("empty.csv", "the file is empty"),
    ("blank_lines_only.csv", "the file has only blank lines"),
    ("no_phone_column.csv",
     "no phone column (found First Name, Email, City): name it phone, mobile or cell"),
    ("no_header.csv",
     ("the first row is a contact, not a header: add a header row that names the "
      "phone column (phone, mobile or cell)")),
    ("workbook.xlsx", "an Excel workbook (.xlsx) or a zip archive, not a CSV file: save it as CSV"),
    ("image.png", "binary data, not a CSV file"),
])
def test_files_that_are_not_contact_lists_are_refused_before_any_row(fixture, reason):
    """Given a file that cannot be a contacts list / When opened / Then CsvUnreadable says why."""
    with pytest.raises(CsvUnreadable) as caught:
        read_fixture(fixture)
    assert caught.value.reason == reason


def test_a_cell_beyond_the_csv_field_limit_rejects_its_row_and_reading_goes_on():
    """Given a 200,000-character quoted cell on line 2
    When the file is read
    Then line 2 is rejected as not valid CSV and line 3 is still a contact."""
    data = b'phone,notes\n2125550160,"' + b"x" * 200_000 + b'"\n2125550161,ok\n'

    _, events = read_bytes(data)

    assert events == [
        RowRejected(line=2, reason="not valid CSV: field larger than field limit (131072)",
                    value=""),
        contact(3, "+12125550161", notes="ok"),
    ]


def test_a_line_longer_than_a_mebibyte_stops_the_import():
    """Given a header and then more than 1 MiB without a line break
    When the rows are read
    Then CsvUnreadable names line 2."""
    _, events = read_contacts(io.BytesIO(b"phone\n" + b"1" * (MAX_LINE_LENGTH + 10)))

    with pytest.raises(CsvUnreadable) as caught:
        list(events)
    assert caught.value.reason == (f"line 2 is longer than {MAX_LINE_LENGTH} characters: "
                                   "not a contacts list")


# -- streaming and memory ----------------------------------------------------------------------
class RecordingStream(io.RawIOBase):
    """A binary stream that remembers the size of every read."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)
        self.reads: list[int] = []

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        return self._data.read(size)

    @property
    def consumed(self) -> int:
        return self._data.tell()


def test_the_file_is_read_one_chunk_at_a_time():
    """Given a 5,000-row file of about 150 KB
    When it is opened and then read row by row
    Then opening reads one 64 KiB chunk, the first row needs no more, every read asks for at most
    64 KiB, and all 5,000 rows come out."""
    body = "".join(f"212555{n % 10000:04d},Name {n}\r\n" for n in range(5000))
    stream = RecordingStream(("phone,name\r\n" + body).encode())

    layout, events = read_contacts(stream)
    assert stream.consumed == CHUNK_BYTES
    first = next(events)
    assert stream.consumed == CHUNK_BYTES
    rest = list(events)

    assert (first.line, layout.phone_column) == (2, "phone")
    assert max(stream.reads) == CHUNK_BYTES
    assert len(rest) + 1 == 5000


def test_first_line_by_phone_agrees_with_a_dict_through_growth():
    """Given 50,000 phones, every third one seen twice, in a table that starts with 4,096 slots
    When each is looked up with its line
    Then each answer is the line a dict would give, and the table holds 12 bytes a slot."""
    table, reference = FirstLineByPhone(capacity_bits=12), {}
    for line in range(2, 50_002):
        phone = f"+1{2125550000 + (line * 7919) % 40_000}"
        assert table.first_line(phone, line) == reference.setdefault(phone, line)

    assert len(table) == len(reference) == 40_000
    assert table.nbytes == 12 * 65_536  # 40,000 phones at most 70% full: 2**16 slots


# -- property: any valid US numbers in any format are their distinct set --------------------------
AREA_CODES = (201, 212, 213, 305, 312, 415, 512, 617, 702, 713, 805, 919)


def _is_valid_us(national: str) -> bool:
    return phonenumbers.is_valid_number(phonenumbers.parse("+1" + national))


US_NUMBERS = st.builds(
    lambda area, exchange, line: f"{area}{exchange}{line:04d}",
    st.sampled_from(AREA_CODES), st.integers(200, 999).filter(lambda code: code % 100 != 11),
    st.integers(0, 9999),
).filter(_is_valid_us)

WRITTEN_AS = (
    lambda d: f"({d[:3]}) {d[3:6]}-{d[6:]}", lambda d: f"{d[:3]}.{d[3:6]}.{d[6:]}",
    lambda d: f"+1 {d[:3]} {d[3:6]} {d[6:]}", lambda d: f"1-{d[:3]}-{d[3:6]}-{d[6:]}",
    lambda d: d, lambda d: f"{d}.0", lambda d: f"{d[:3]}-{d[3:6]}-{d[6:]} x12",
    lambda d: f"{d[0]}.{d[1:]}E+09",
)
NAMES = st.text(alphabet="AnéöñZ “”,;\"\t\n'", max_size=12)


def write_csv(rows: list[list[str]], delimiter: str, terminator: str) -> str:
    """CSV as spreadsheets write it. csv.writer only quotes the line breaks its own terminator
    uses, so rows are written with CRLF (quoting any CR or LF) and the terminator swapped after."""
    lines = []
    for row in rows:
        line = io.StringIO()
        csv.writer(line, delimiter=delimiter, lineterminator="\r\n").writerow(row)
        lines.append(line.getvalue()[:-2] + terminator)
    return "".join(lines)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), pool=st.lists(US_NUMBERS, min_size=1, max_size=8, unique=True),
       delimiter=st.sampled_from([",", ";", "\t"]),
       terminator=st.sampled_from(["\r\n", "\n", "\r"]),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "windows-1252", "utf-16"]))
def test_valid_numbers_in_any_format_delimiter_and_encoding_are_their_distinct_set(
        data, pool, delimiter, terminator, encoding):
    """Given valid US numbers, some repeated, each written in a random format, with names full of
    delimiters, quotes and line breaks, in a random delimiter, line ending and encoding
    When the file is read
    Then the contacts are exactly the distinct numbers in first-seen order, nothing is rejected,
    and every repeat points at its number's contact line."""
    picks = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=25))
    rows = [["Name", "Cell Phone"]]
    rows += [[data.draw(NAMES), data.draw(st.sampled_from(WRITTEN_AS))(national)]
             for national in picks]

    _, events = read_bytes(write_csv(rows, delimiter, terminator).encode(encoding))

    distinct = list(dict.fromkeys("+1" + national for national in picks))
    contacts = {event.phone: event.line for event in events if isinstance(event, ContactRow)}
    assert list(contacts) == distinct
    assert [event for event in events if isinstance(event, RowRejected)] == []
    duplicates = [event for event in events if isinstance(event, RowDuplicate)]
    assert len(duplicates) == len(picks) - len(distinct)
    assert all(event.first_line == contacts[event.phone] < event.line for event in duplicates)
    lines = [event.line for event in events]
    assert lines == sorted(set(lines))


# -- the memory benchmark runs ------------------------------------------------------------------
def test_the_import_memory_benchmark_counts_what_its_file_holds():
    """Given the benchmark's generated file of 3,000 rows
    When it is read in a fresh interpreter
    Then every row is counted once: rejected ones are exactly the planted bad phones, duplicates
    exactly the numbers seen before."""
    from bench import import_memory

    result = import_memory.run(rows=3000)

    seen, bad, repeats = set(), 0, 0
    for cells in import_memory.contact_rows(3000):
        phone = cells[2]
        if phone in import_memory.BAD_PHONES:
            bad += 1
            continue
        digits = re.sub(r"\D", "", phone)[-10:]
        repeats += digits in seen
        seen.add(digits)
    assert (result["rows"], result["rejected"], result["duplicates"], result["accepted"]) == (
        3000, bad, repeats, 3000 - bad - repeats)
    assert bad > 0 and repeats > 0
    assert 0 < result["peak_rss_mb"] < 100
