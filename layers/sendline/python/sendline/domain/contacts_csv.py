"""Contacts CSV files as operators upload them for bulk campaigns, read as a stream.

A campaign list can hold a million rows, so the file is never held in memory: it is decoded
chunk by chunk, parsed by `csv.reader`, and each row becomes one event, in file order:

- `ContactRow`: a row that becomes a contact;
- `RowRejected`: a row that cannot (its phone, or an over-long cell), and why;
- `RowDuplicate`: the same number as an earlier contact, written the same way or not.

What real lists look like, and what is done about it:

- encodings: UTF-8 with or without a BOM, Windows-1252 from Excel on Windows, files mixing both
  (rows pasted together from different exports), UTF-16 with a BOM (Excel's "Unicode text");
- line endings CRLF, LF and a lone CR (old Mac exports); blank lines and rows of empty cells are
  not rows; quoted cells may hold commas and newlines;
- delimiters comma, semicolon (Excel where the decimal separator is a comma) and tab;
- headers in any case and spacing, under the usual names for phone, first and last name, email;
  every other column is a custom field, usable as a template variable.

Line numbers are the file's physical lines (the header is line 1), as an operator sees them in
a text editor, so the report can point at the row to fix.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
import unicodedata
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from sendline.domain.phones import PhoneRejected, mask_phone, normalise_phone

CHUNK_BYTES = 64 * 1024
MAX_CELL_LENGTH = 1000
# The same limits as leads posted through the API (services/leads.py): an imported contact must
# be usable by the same templates and stored in the same record.
MAX_CUSTOM_FIELDS = 50
MAX_FIELD_NAME_LENGTH = 64
# A physical line longer than this is not a contact: it is a file without line breaks (binary
# data, or an unclosed quote swallowing the rest), and holding it would defeat the streaming.
MAX_LINE_LENGTH = 1024 * 1024
REPORT_VALUE_LENGTH = 40
REPORT_COLUMNS = ("line", "outcome", "reason", "value")

PHONE, FIRST_NAME, LAST_NAME, EMAIL = "phone", "first_name", "last_name", "email"

# Header names as normalise_header() writes them, most preferred first. When a file has several
# phone columns, a mobile one wins over a generic "phone": lists that carry both keep the office
# or home landline under "phone", and a text to a landline fails yet is still billed. The column
# that loses stays as a custom field.
HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {
    PHONE: ("mobile", "mobile_phone", "mobile_number", "cell", "cell_phone", "cellphone",
            "wireless", "msisdn", "phone", "phone_number", "phonenumber", "contact_number",
            "telephone", "tel", "number"),
    FIRST_NAME: ("first_name", "firstname", "fname", "first", "given_name"),
    LAST_NAME: ("last_name", "lastname", "lname", "last", "surname", "family_name"),
    EMAIL: ("email", "e_mail", "email_address", "e_mail_address"),
}


# -- events -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContactRow:
    """A row that becomes a contact."""

    line: int
    phone: str
    first_name: str | None
    last_name: str | None
    email: str | None
    fields: dict[str, str]


@dataclass(frozen=True)
class RowRejected:
    """A row that cannot become a contact; `value` is its phone cell as the file has it."""

    line: int
    reason: str
    value: str


@dataclass(frozen=True)
class RowDuplicate:
    """The same phone (in E.164) as the contact accepted on `first_line`."""

    line: int
    phone: str
    first_line: int


ImportEvent = ContactRow | RowRejected | RowDuplicate


@dataclass
class CsvLayout:
    """What was found out about the file, to show the operator before the import runs."""

    encoding: str
    delimiter: str
    columns: dict[str, str]  # header as the file writes it -> canonical or custom field name
    phone_column: str


class CsvUnreadable(ValueError):
    """The file cannot be read as a contacts list at all; `reason` says why in plain words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# -- tally and report -------------------------------------------------------------------------
@dataclass
class ImportTally:
    """Counts of an import's outcomes, for its summary."""

    rows_read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    def add(self, event: ImportEvent) -> None:
        self.rows_read += 1
        if isinstance(event, ContactRow):
            self.accepted += 1
        elif isinstance(event, RowDuplicate):
            self.duplicates += 1
        else:
            self.rejected += 1
            self.rejected_by_reason[event.reason] = self.rejected_by_reason.get(event.reason, 0) + 1


# Spreadsheets run a cell starting with "=", "@", "+" or "-" as a formula; the report carries
# cells of an uploaded file, so those are made text with a leading apostrophe. A phone written
# "+1 212 555 0142" or "-" is left alone: digits and punctuation compute nothing.
_FORMULA = re.compile(r"[=@\t\r]|[+-](?![\d\s().+-]*$)")


def report_row(event: RowRejected | RowDuplicate) -> tuple[str, str, str, str]:
    """One line of the downloadable report (REPORT_COLUMNS). Accepted rows are not reported."""
    if isinstance(event, RowDuplicate):
        return (str(event.line), "duplicate", f"same phone as line {event.first_line}",
                mask_phone(event.phone))
    if isinstance(event, RowRejected):
        return (str(event.line), "rejected", event.reason,
                spreadsheet_text(event.value[:REPORT_VALUE_LENGTH]))
    raise TypeError(f"only rejected and duplicate rows are reported, not {type(event).__name__}")


def failure_row(reason: str) -> tuple[str, str, str, str]:
    """The report's last line when the file stopped being read: why (`reason` names the line
    when one line is the cause). The rows reported above it are those read before."""
    return ("", "import_failed", reason, "")


def spreadsheet_text(value: str) -> str:
    """A cell any export can write safely: a formula-looking value is made text."""
    return "'" + value if _FORMULA.match(value) else value


def spreadsheet_line(cells: Iterable[object]) -> str:
    """One line of an export (CRLF-ended): text made safe by `spreadsheet_text`, None empty,
    numbers as they are."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(
        ["" if c is None else spreadsheet_text(c) if isinstance(c, str) else c for c in cells])
    return out.getvalue()


# -- reading ----------------------------------------------------------------------------------
def read_contacts(stream: BinaryIO) -> tuple[CsvLayout, Iterator[ImportEvent]]:
    """Read the header now and the rows as the returned iterator is consumed.

    Raises CsvUnreadable when the file is empty, not text, or has no phone column; the iterator
    itself raises it only for a line longer than MAX_LINE_LENGTH.
    """
    head = _read_head(stream)
    if not head:
        raise CsvUnreadable("the file is empty")
    encoding = detect_encoding(head, complete=len(head) < CHUNK_BYTES)
    lines = _physical_lines(_decoded_chunks(head, stream, _decoder_for(encoding)))
    blank_lines, header_line = _first_non_blank_line(lines)
    delimiter = sniff_delimiter(header_line)
    # skipinitialspace: `Ann, "Smith, Jr."` is a quoted cell after a space, as people type it.
    records = csv.reader(itertools.chain([header_line], lines), delimiter=delimiter,
                         skipinitialspace=True)
    plan = _plan_columns(_header_cells(records))
    layout = CsvLayout(encoding=encoding, delimiter=delimiter, columns=plan.layout_columns(),
                       phone_column=plan.labels[plan.phone])
    return layout, _events(records, plan, blank_lines)


def _read_head(stream: BinaryIO) -> bytes:
    """The first chunk, complete even from a stream that returns short reads (a socket)."""
    head = b""
    while len(head) < CHUNK_BYTES:
        more = stream.read(CHUNK_BYTES - len(head))
        if not more:
            break
        head += more
    return head


def _header_cells(records: Iterator[list[str]]) -> list[str]:
    try:
        headers = next(records)
    except csv.Error as error:
        raise CsvUnreadable(f"the header row is not valid CSV: {error}") from None
    if not any(cell.strip() for cell in headers):
        raise CsvUnreadable("the first row has no column names")
    return headers


def _first_non_blank_line(lines: Iterator[str]) -> tuple[int, str]:
    """Leading blank lines are tolerated: the header is the first line with text on it."""
    for blank_lines, line in enumerate(lines):
        if line.strip():
            return blank_lines, line
    raise CsvUnreadable("the file has only blank lines")


# -- encodings --------------------------------------------------------------------------------
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))
# What operators upload by mistake, named so they know what to do instead.
_NOT_CSV = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or a zip archive, not a CSV file: save it as CSV"),
    (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook (.xls), not a CSV file: save it as CSV"),
    (b"%PDF", "a PDF document, not a CSV file"),
)
_FALLBACK_ERRORS = "sendline.windows-1252-fallback"
# Byte -> character in Windows-1252; the five bytes it leaves undefined (0x81, 0x8D, 0x8F, 0x90,
# 0x9D) as Latin-1, so that no byte of a text file is ever lost or refused.
_WINDOWS_1252 = tuple(bytes([byte]).decode("cp1252", errors="ignore") or chr(byte)
                      for byte in range(256))


def _windows_1252_for_invalid_utf8(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: bytes that are not UTF-8 are read as Windows-1252.

    Decoding every file as UTF-8 with this fallback reads pure UTF-8, pure Windows-1252 and files
    mixing both (a UTF-8 export with rows pasted from an old Excel), without guessing one
    encoding for the whole file from its first rows. The UTF-8 decoder reports the shortest
    invalid run, so "Jos\\xe9," gives back just "\\xe9" to decode here.
    """
    if not isinstance(error, UnicodeDecodeError):
        raise error
    invalid = error.object[error.start:error.end]
    return "".join(_WINDOWS_1252[byte] for byte in invalid), error.end


codecs.register_error(_FALLBACK_ERRORS, _windows_1252_for_invalid_utf8)


def detect_encoding(head: bytes, complete: bool) -> str:
    """The encoding the layout reports, from the file's first chunk.

    "utf-8-sig" or "utf-16" when a BOM says so, "windows-1252" when the chunk is not valid UTF-8
    (it is then decoded with the fallback above), else "utf-8". Raises CsvUnreadable for binary
    files. `complete` says the chunk is the whole file (a cut multibyte character at its end is
    then an error, not the next chunk's start).
    """
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    for signature, reason in _NOT_CSV:
        if head.startswith(signature):
            raise CsvUnreadable(reason)
    if b"\x00" in head:
        raise CsvUnreadable("binary data, not a CSV file")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError:
        return "windows-1252"
    return "utf-8"


def _decoder_for(encoding: str) -> codecs.IncrementalDecoder:
    if encoding == "utf-16":
        return codecs.getincrementaldecoder("utf-16")(errors="replace")
    # A BOM-less Windows-1252 file is decoded as UTF-8 too: the fallback handles its bytes, and
    # UTF-8 rows further down a mixed file still come out right.
    codec = "utf-8-sig" if encoding == "utf-8-sig" else "utf-8"
    return codecs.getincrementaldecoder(codec)(errors=_FALLBACK_ERRORS)


def _decoded_chunks(head: bytes, stream: BinaryIO,
                    decoder: codecs.IncrementalDecoder) -> Iterator[str]:
    chunk = head
    while chunk:
        yield decoder.decode(chunk)
        chunk = stream.read(CHUNK_BYTES)
    yield decoder.decode(b"", final=True)


def _physical_lines(texts: Iterable[str]) -> Iterator[str]:
    """The file's lines, each with its own terminator (CRLF, LF or a lone CR).

    One item per physical line is what lets `csv.reader.line_num` count the file's lines, and
    keeping the terminators keeps newlines inside quoted cells. A line ending the chunk with CR
    waits for the next chunk, whose first character may be its LF.
    """
    pending, complete_lines = "", 0
    for text in texts:
        if pending:
            text = pending + text
        # StringIO with newline="" splits on \r\n, \n and \r alone (and nothing else, unlike
        # str.splitlines), keeping each terminator as it is.
        lines = io.StringIO(text, newline="").readlines()
        pending = lines.pop() if lines else ""
        if pending.endswith("\n"):
            lines.append(pending)
            pending = ""
        elif len(pending) > MAX_LINE_LENGTH:
            raise CsvUnreadable(f"line {complete_lines + len(lines) + 1} is longer than "
                                f"{MAX_LINE_LENGTH} characters: not a contacts list")
        complete_lines += len(lines)
        yield from lines
    if pending:
        yield pending


# -- header -----------------------------------------------------------------------------------
_DELIMITERS = (",", ";", "\t")


def sniff_delimiter(header_line: str) -> str:
    """The delimiter the header uses most, counting outside quotes; a comma on a tie or none."""
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    return max(_DELIMITERS, key=counts.__getitem__)  # max keeps the first of equals: the comma


_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise_header(header: str) -> str:
    """"Mobile Phone #" -> "mobile_phone", "Prénom" -> "prenom": a name templates can use.

    Accents are dropped rather than the letters (template variables are ASCII), and the name is
    cut to MAX_FIELD_NAME_LENGTH.
    """
    ascii_text = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode("ascii")
    name = _NOT_ALNUM.sub("_", ascii_text.lower()).strip("_")
    return name[:MAX_FIELD_NAME_LENGTH].rstrip("_")


@dataclass(frozen=True)
class _ColumnPlan:
    """Which cell of a row goes where."""

    labels: tuple[str, ...]  # each column's header as the file writes it
    phone: int
    first_name: int | None
    last_name: int | None
    email: int | None
    custom: tuple[tuple[int, str], ...]  # (cell index, custom field name), in file order

    def layout_columns(self) -> dict[str, str]:
        names = {index: name for index, name in self.custom}
        for name in (PHONE, FIRST_NAME, LAST_NAME, EMAIL):
            index = getattr(self, name)
            if index is not None:
                names[index] = name
        columns: dict[str, str] = {}
        for index, label in enumerate(self.labels):
            # Two columns with one header (two "Notes") both show, told apart by position.
            shown = label if label not in columns else f"{label} (column {index + 1})"
            columns[shown] = names[index]
        return columns


def _plan_columns(headers: list[str]) -> _ColumnPlan:
    # A BOM inside the header is a second one (two files joined): it is not part of the name.
    labels = tuple(header.replace("\ufeff", "").strip() or f"(column {index + 1})"
                   for index, header in enumerate(headers))
    names = [normalise_header(header) for header in headers]
    canonical = {target: _preferred_column(names, synonyms)
                 for target, synonyms in HEADER_SYNONYMS.items()}
    if canonical[PHONE] is None:
        raise _no_phone_column(headers)
    chosen = {index for index in canonical.values() if index is not None}
    # Custom names never repeat and never shadow a canonical one: the losing "Phone" of a file
    # with a "Mobile" column is kept as "phone_2", a second "Notes" as "notes_2".
    taken = set(HEADER_SYNONYMS)
    custom = []
    for index, name in enumerate(names):
        if index not in chosen:
            unique = _unused_name(name or f"column_{index + 1}", taken)
            taken.add(unique)
            custom.append((index, unique))
    return _ColumnPlan(labels=labels, phone=canonical[PHONE], first_name=canonical[FIRST_NAME],
                       last_name=canonical[LAST_NAME], email=canonical[EMAIL], custom=tuple(custom))


def _preferred_column(names: list[str], synonyms: tuple[str, ...]) -> int | None:
    """The column whose name comes first among the synonyms; the leftmost of equals."""
    candidates = [(synonyms.index(name), index)
                  for index, name in enumerate(names) if name in synonyms]
    return min(candidates)[1] if candidates else None


def _unused_name(name: str, taken: set[str]) -> str:
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        suffix = f"_{number}"
        candidate = name[:MAX_FIELD_NAME_LENGTH - len(suffix)] + suffix
    return candidate


def _no_phone_column(headers: list[str]) -> CsvUnreadable:
    found = [header.strip()[:MAX_FIELD_NAME_LENGTH] for header in headers if header.strip()]
    if any(_is_phone(header) for header in found):
        return CsvUnreadable("the first row is a contact, not a header: add a header row "
                             "that names the phone column (phone, mobile or cell)")
    shown = ", ".join(found[:20]) + (", ..." if len(found) > 20 else "")
    return CsvUnreadable(f"no phone column (found {shown}): name it phone, mobile or cell")


def _is_phone(text: str) -> bool:
    try:
        normalise_phone(text)
    except PhoneRejected:
        return False
    return True


# -- rows -------------------------------------------------------------------------------------
def _events(records: Iterator[list[str]], plan: _ColumnPlan,
            blank_lines: int) -> Iterator[ImportEvent]:
    seen = FirstLineByPhone()
    while True:
        # line_num counts the physical lines the reader has taken, so the next record starts on
        # the one after; blank lines before the header were taken before the reader existed.
        line = blank_lines + records.line_num + 1
        try:
            cells = next(records)
        except StopIteration:
            return
        except csv.Error as error:
            # The reader starts afresh on the next line: one broken row is not a broken file.
            yield RowRejected(line, f"not valid CSV: {error}", "")
            continue
        if any(cell.strip() for cell in cells):
            yield _row_event(cells, line, plan, seen)


def _row_event(cells: list[str], line: int, plan: _ColumnPlan,
               seen: FirstLineByPhone) -> ImportEvent:
    # Cells beyond the header are ignored; missing ones are empty, as a spreadsheet shows them.
    width = len(plan.labels)
    if len(cells) != width:
        cells = cells[:width] + [""] * (width - len(cells))
    phone_cell = cells[plan.phone]
    too_long = next((index for index, cell in enumerate(cells) if len(cell) > MAX_CELL_LENGTH),
                    None)
    if too_long is not None:
        reason = f"{plan.labels[too_long]} is longer than {MAX_CELL_LENGTH} characters"
        return RowRejected(line, reason, phone_cell)
    try:
        phone = normalise_phone(phone_cell).e164
    except PhoneRejected as rejected:
        return RowRejected(line, rejected.reason, phone_cell)
    first_line = seen.first_line(phone, line)
    if first_line != line:
        return RowDuplicate(line, phone, first_line)
    return ContactRow(line=line, phone=phone, first_name=_optional(cells, plan.first_name),
                      last_name=_optional(cells, plan.last_name),
                      email=_optional(cells, plan.email), fields=_custom_fields(cells, plan.custom))


def _optional(cells: list[str], index: int | None) -> str | None:
    if index is None:
        return None
    return cells[index].strip() or None


def _custom_fields(cells: list[str], custom: tuple[tuple[int, str], ...]) -> dict[str, str]:
    """Non-empty custom cells, stripped; the first MAX_CUSTOM_FIELDS of them in column order."""
    fields: dict[str, str] = {}
    for index, name in custom:
        value = cells[index].strip()
        if value:
            fields[name] = value
            if len(fields) == MAX_CUSTOM_FIELDS:
                break
    return fields


# -- duplicates -------------------------------------------------------------------------------
_LINE_TYPE = "I" if array("I").itemsize >= 4 else "L"
_FIBONACCI = 0x9E3779B97F4A7C15  # 2**64 / golden ratio: spreads consecutive numbers apart
_UINT64 = (1 << 64) - 1


class FirstLineByPhone:
    """The line where each phone was first accepted, small enough for a million phones.

    A dict of int -> int costs about 110 bytes a phone (two int objects and the slot), 110 MB for
    a million; this open-addressing table keeps the E.164 digits and the line in two flat arrays,
    12 bytes a slot, kept at most 70% full (about 25 MB for a million phones).
    """

    _MAX_LOAD = 0.7

    def __init__(self, capacity_bits: int = 12):
        self._allocate(capacity_bits)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        return len(self._phones) * self._phones.itemsize + len(self._lines) * self._lines.itemsize

    def first_line(self, e164: str, line: int) -> int:
        """The line `e164` was first seen on; records `line` for it when this is the first time."""
        phone = int(e164[1:])  # never 0, which marks an empty slot
        slot = self._slot(phone)
        phones, mask = self._phones, self._mask
        while True:
            found = phones[slot]
            if found == phone:
                return self._lines[slot]
            if not found:
                break
            slot = (slot + 1) & mask
        phones[slot] = phone
        self._lines[slot] = line
        self._count += 1
        if self._count > self._limit:
            self._grow()
        return line

    def _allocate(self, bits: int) -> None:
        self._bits, self._mask = bits, (1 << bits) - 1
        self._limit = int((1 << bits) * self._MAX_LOAD)
        self._phones = array("q", bytes(8 << bits))
        self._lines = array(_LINE_TYPE, bytes(array(_LINE_TYPE).itemsize << bits))

    def _slot(self, phone: int) -> int:
        return ((phone * _FIBONACCI) & _UINT64) >> (64 - self._bits)

    def _grow(self) -> None:
        old_phones, old_lines = self._phones, self._lines
        self._allocate(self._bits + 1)
        phones, lines, mask = self._phones, self._lines, self._mask
        for phone, line in zip(old_phones, old_lines):
            if phone:
                slot = self._slot(phone)
                while phones[slot]:
                    slot = (slot + 1) & mask
                phones[slot] = phone
                lines[slot] = line
