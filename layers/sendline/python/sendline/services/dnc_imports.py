"""Bulk additions to the DNC list from a CSV file, of any size.

The file goes to the uploads bucket as a contacts file does (in the request itself up to 5 MB,
or by a presigned PUT), and its upload event starts the import in `contacts_import`, which
streams it: memory stays flat and no request timeout caps the file's length. The file is read
by the contacts reader (any encoding, delimiter, header synonyms, Excel's phones); only the
phone column matters. Every row ends in the import's figures and, when it is a duplicate or
rejected, in its downloadable report (`GET /v1/imports/{id}/report.csv`) with its line.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from sendline.adapters.records import DNC_BATCH, Records
from sendline.domain.clock import iso
from sendline.domain.contacts_csv import (
    REPORT_COLUMNS,
    CsvUnreadable,
    FirstLineByPhone,
    RowDuplicate,
    RowRejected,
    failure_row,
    read_contacts,
    report_row,
)
from sendline.domain.ids import new_id
from sendline.domain.phones import PhoneRejected, normalise_phone
from sendline.errors import FieldProblem, UploadMissing, ValidationFailed
from sendline.services.contact_lists import (
    PROGRESS_EVERY,
    UPLOAD_URL_LIFETIME_S,
    Uploads,
    report_key,
    source_key,
)

logger = Logger(child=True)

KIND = "dnc"
LISTING = "IMPORTS#DNC"
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}


def start_dnc_import(records: Records, uploads: Uploads, now: datetime, body: bytes | None = None,
                     filename: str | None = None) -> dict[str, Any]:
    """Open a DNC import: with the file in the request, stored and under way (a file that is
    empty or names no phone column is refused at once, naming `body`); without one, a
    presigned URL to PUT the file to."""
    if body is not None:
        if not body.strip():
            raise ValidationFailed(FieldProblem(
                "body", "is empty; send the CSV file as the body (Content-Type: text/csv), "
                        "or post without a body for an upload URL"))
        try:
            read_contacts(io.BytesIO(body))  # the header only: the rows are read by the import
        except CsvUnreadable as exc:
            raise ValidationFailed(FieldProblem("body", exc.reason)) from None
    import_id = new_id("im")
    record = {"import_id": import_id, "kind": KIND, "status": "awaiting_upload", "filename": filename,
              "created_at": iso(now), "updated_at": iso(now)}
    records.create_entity("IMPORT", import_id, record, listing=(LISTING, f"{iso(now)}#{import_id}"))
    if body is not None:
        uploads.put(source_key(import_id), body, "text/csv")
        return records.update_entity("IMPORT", import_id, set_fields={"status": "uploaded", "bytes": len(body)})
    return {**record, "upload": {"method": "PUT", "headers": {"Content-Type": "text/csv"},
                                 "url": uploads.upload_url(source_key(import_id), "text/csv", UPLOAD_URL_LIFETIME_S),
                                 "expires_in_s": UPLOAD_URL_LIFETIME_S}}


def list_dnc_imports(records: Records) -> list[dict[str, Any]]:
    return records.list_entities(LISTING)


class _Tally:
    def __init__(self) -> None:
        self.rows_read = self.added = self.already_listed = self.duplicates = self.rejected = 0
        self.rejected_by_reason: dict[str, int] = {}

    def figures(self) -> dict[str, Any]:
        return {"rows_read": self.rows_read, "added": self.added, "already_listed": self.already_listed,
                "duplicates": self.duplicates, "rejected": self.rejected,
                "rejected_by_reason": dict(self.rejected_by_reason)}


def run_dnc_import(records: Records, uploads: Uploads, record: dict[str, Any],
                   clock: Callable[[], datetime]) -> dict[str, Any]:
    """Stream an uploaded file onto the DNC list (source `import`, detail `line N`) and store
    the figures and the report. A number already listed keeps its entry (its source and time)."""
    import_id = record["import_id"]
    now = clock()
    records.update_entity("IMPORT", import_id, set_fields={"status": "importing", "started_at": iso(now)})
    tally = _Tally()
    report = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, mode="w+b")
    text = io.TextIOWrapper(report, encoding="utf-8", newline="")
    writer = csv.writer(text)
    writer.writerow(REPORT_COLUMNS)
    batch: dict[str, str] = {}
    layout = None
    error = None
    try:
        with uploads.open(source_key(import_id)) as stream:
            layout, events = read_contacts(stream)
            first_lines = FirstLineByPhone()
            for event in events:
                tally.rows_read += 1
                if isinstance(event, RowDuplicate):
                    tally.duplicates += 1
                    writer.writerow(report_row(event))
                else:
                    phone = _phone_of(event)
                    if phone is None:
                        tally.rejected += 1
                        tally.rejected_by_reason[event.reason] = tally.rejected_by_reason.get(event.reason, 0) + 1
                        writer.writerow(report_row(event))
                    elif (first := first_lines.first_line(phone, event.line)) != event.line:
                        tally.duplicates += 1
                        writer.writerow(report_row(RowDuplicate(event.line, phone, first)))
                    else:
                        batch[phone] = f"line {event.line}"
                        if len(batch) == DNC_BATCH:
                            _add(records, tally, batch, now)
                if tally.rows_read % PROGRESS_EVERY == 0:
                    records.update_entity("IMPORT", import_id, set_fields={"rows_read": tally.rows_read})
    except (CsvUnreadable, UploadMissing) as exc:
        # The numbers before the line that stopped the reading are listed; the import and the
        # end of its report say where.
        error = str(getattr(exc, "reason", exc))
        writer.writerow(failure_row(error))
    _add(records, tally, batch, now)
    text.flush()
    report.seek(0)
    uploads.put_file(report_key(import_id), report, "text/csv")
    text.close()
    summary: dict[str, Any] = {**tally.figures(), "finished_at": iso(clock()),
                               "seconds": round((clock() - now).total_seconds(), 1)}
    if layout is not None:
        summary.update(encoding=layout.encoding, phone_column=layout.phone_column,
                       delimiter=DELIMITERS.get(layout.delimiter, layout.delimiter))
    summary.update(status="failed", error=error) if error else summary.update(status="completed")
    logger.info("DNC import", extra={"import_id": import_id, **{k: summary[k] for k in (
        "rows_read", "added", "already_listed", "rejected")}})
    return records.update_entity("IMPORT", import_id, set_fields=summary)


def _phone_of(event: Any) -> str | None:
    """The row's number, if it has a usable one. A row the contacts reader rejects for another
    cell (a long note) still names a number that asked not to be texted: it is listed."""
    if isinstance(event, RowRejected):
        try:
            return normalise_phone(event.value).e164
        except PhoneRejected:
            return None
    return event.phone


def _add(records: Records, tally: _Tally, batch: dict[str, str], now: datetime) -> None:
    if batch:
        added = len(records.add_dnc_many(batch, "import", now))
        tally.added += added
        tally.already_listed += len(batch) - added
        batch.clear()
