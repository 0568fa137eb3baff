"""Contact lists and their CSV imports.

A file is uploaded to S3 (a presigned PUT, or the API puts a small body there itself); the
upload's event starts the import, which streams the file row by row, so memory stays flat
whatever its size. Every row ends in the report: accepted, a duplicate of an earlier line, or
rejected with its line number and the reason. Importing never touches the DNC list: a number
on it stays on it whatever the file says.
"""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import datetime
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from sendline.adapters.records import Records
from sendline.domain.clock import iso
from sendline.domain.contacts_csv import (
    REPORT_COLUMNS,
    ContactRow,
    CsvUnreadable,
    ImportTally,
    RowDuplicate,
    RowRejected,
    failure_row,
    read_contacts,
    report_row,
)
from sendline.domain.ids import new_id
from sendline.domain.phones import PhoneRejected, normalise_phone
from sendline.errors import Conflict, FieldProblem, NotFound, UploadMissing, ValidationFailed
from sendline.services.validation import parse

logger = Logger(child=True)

CHUNK = 100  # contacts written (and checked against the list and the DNC list) at a time
PROGRESS_EVERY = 10_000  # rows between progress updates an operator can watch
UPLOAD_URL_LIFETIME_S = 900


class Uploads(Protocol):
    """Where import files and reports live (S3 on AWS and in the local stack)."""

    def upload_url(self, key: str, content_type: str, expires_s: int) -> str: ...
    def download_url(self, key: str, expires_s: int) -> str: ...
    def put(self, key: str, body: bytes, content_type: str) -> None: ...
    def open(self, key: str) -> BinaryIO:
        """Raises UploadMissing when there is no such file."""
        ...
    def put_file(self, key: str, file: BinaryIO, content_type: str) -> None: ...
    def size(self, key: str) -> int: ...
    def read(self, key: str) -> bytes: ...


def source_key(import_id: str) -> str:
    return f"imports/{import_id}/contacts.csv"


def report_key(import_id: str) -> str:
    # Outside imports/: writing the report must not look like a new upload.
    return f"reports/{import_id}.csv"


def import_id_from_key(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) == 3 and parts[0] == "imports" and parts[2] == "contacts.csv":
        return parts[1]
    return None


# -- lists ------------------------------------------------------------------------------------
class ListDraft(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: StrictStr = Field(min_length=1, max_length=120)
    description: StrictStr | None = Field(default=None, max_length=500)


def create_list(records: Records, body: object, now: datetime) -> dict[str, Any]:
    draft = parse(ListDraft, body)
    list_id = new_id("cl")
    contact_list = {"list_id": list_id, **draft.model_dump(), "contacts": 0, "imports": 0,
                    "created_at": iso(now), "updated_at": iso(now)}
    records.create_entity("LIST", list_id, contact_list, listing=("LISTS", f"{iso(now)}#{list_id}"))
    return contact_list


def get_list(records: Records, list_id: str) -> dict[str, Any]:
    found = records.get_entity("LIST", list_id)
    if not found:
        raise NotFound(FieldProblem("list_id", "no contact list with this id"))
    return found


def list_lists(records: Records) -> list[dict[str, Any]]:
    return records.list_entities("LISTS")


def contacts_page(records: Records, list_id: str, after: str | None, limit: int) -> dict[str, Any]:
    """A page of the list's contacts in phone order; `after` is the previous page's `next`."""
    get_list(records, list_id)
    cursor = f"C#{_phone_cursor(after)}" if after else None
    contacts = records.contacts_after(list_id, cursor, limit)
    shown = [{k: v for k, v in c.items() if k not in ("pk", "sk")} for c in contacts]
    return {"contacts": shown, "next": contacts[-1]["phone"] if len(contacts) == limit else None}


def _phone_cursor(after: str) -> str:
    # A `+` that was not URL-encoded arrives as a space; the phone reads the same either way.
    try:
        return normalise_phone(after).e164
    except PhoneRejected as exc:
        reason = f"must be the phone number a page gave as next ({exc.reason})"
        raise ValidationFailed(FieldProblem("after", reason)) from None


# -- imports ----------------------------------------------------------------------------------
def start_import(records: Records, uploads: Uploads, list_id: str, now: datetime,
                 body: bytes | None = None, filename: str | None = None) -> dict[str, Any]:
    """Open an import for a list: a presigned URL to PUT the file to, or, when the request
    carried the file itself, the file stored and the import under way."""
    contact_list = get_list(records, list_id)
    import_id = new_id("im")
    record = {"import_id": import_id, "list_id": contact_list["list_id"], "status": "awaiting_upload",
              "filename": filename, "created_at": iso(now), "updated_at": iso(now)}
    records.create_entity("IMPORT", import_id, record, listing=(f"IMPORTS#{list_id}", f"{iso(now)}#{import_id}"))
    if body is not None:
        if not body.strip():
            raise Conflict(FieldProblem("body", "the file is empty"))
        uploads.put(source_key(import_id), body, "text/csv")
        record = records.update_entity("IMPORT", import_id, set_fields={"status": "uploaded", "bytes": len(body)})
        return record
    return {**record, "upload": {"method": "PUT", "headers": {"Content-Type": "text/csv"},
                                 "url": uploads.upload_url(source_key(import_id), "text/csv", UPLOAD_URL_LIFETIME_S),
                                 "expires_in_s": UPLOAD_URL_LIFETIME_S}}


def get_import(records: Records, import_id: str) -> dict[str, Any]:
    found = records.get_entity("IMPORT", import_id, consistent=True)
    if not found:
        raise NotFound(FieldProblem("import_id", "no import with this id"))
    return found


def list_imports(records: Records, list_id: str) -> list[dict[str, Any]]:
    get_list(records, list_id)
    return records.list_entities(f"IMPORTS#{list_id}")


def run_import(records: Records, uploads: Uploads, import_id: str, clock: Callable[[], datetime]) -> dict[str, Any]:
    """Stream an uploaded file into its list and store the report. Running it again for the
    same upload (a redelivered event) finds it done and changes nothing. `clock` gives the
    times it started and finished (a big file takes minutes)."""
    now = clock()
    record = get_import(records, import_id)
    if record["status"] in ("completed", "failed"):
        return record
    if record.get("kind") == "dnc":
        from sendline.services.dnc_imports import run_dnc_import  # it builds on this module

        return run_dnc_import(records, uploads, record, clock)
    records.update_entity("IMPORT", import_id, set_fields={"status": "importing", "started_at": iso(now)})
    tally = ImportTally()
    added = on_dnc = 0
    report = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, mode="w+b")
    text = io.TextIOWrapper(report, encoding="utf-8", newline="")
    writer = csv.writer(text)
    writer.writerow(REPORT_COLUMNS)
    batch: list[ContactRow] = []
    try:
        with uploads.open(source_key(import_id)) as stream:
            layout, events = read_contacts(stream)
            for event in events:
                tally.add(event)
                if isinstance(event, ContactRow):
                    batch.append(event)
                    if len(batch) == CHUNK:
                        new, dnc = _store(records, record["list_id"], batch, now)
                        added, on_dnc, batch = added + new, on_dnc + dnc, []
                elif isinstance(event, (RowRejected, RowDuplicate)):
                    writer.writerow(report_row(event))
                if tally.rows_read % PROGRESS_EVERY == 0:
                    records.update_entity("IMPORT", import_id, set_fields={"rows_read": tally.rows_read})
            if batch:
                new, dnc = _store(records, record["list_id"], batch, now)
                added, on_dnc = added + new, on_dnc + dnc
    except (CsvUnreadable, UploadMissing) as exc:
        # Rows read before a bad line stay in the list and are counted; the import and its
        # report say why it stopped and where, after the rows reported until then.
        error = str(getattr(exc, "reason", exc))
        writer.writerow(failure_row(error))
        _put_report(uploads, import_id, report, text)
        if batch:
            added += _store(records, record["list_id"], batch, now)[0]
        if added:
            records.update_entity("LIST", record["list_id"], add={"contacts": added}, set_fields={"updated_at": iso(now)})
        return records.update_entity("IMPORT", import_id, set_fields={
            "status": "failed", "error": error, "rows_read": tally.rows_read,
            "new_contacts": added, "finished_at": iso(clock())})
    _put_report(uploads, import_id, report, text)
    records.update_entity("LIST", record["list_id"], add={"contacts": added, "imports": 1},
                          set_fields={"updated_at": iso(now)})
    summary = {
        "status": "completed",
        "rows_read": tally.rows_read,
        "accepted": tally.accepted,
        "duplicates": tally.duplicates,
        "rejected": tally.rejected,
        "rejected_by_reason": dict(tally.rejected_by_reason),
        "new_contacts": added,
        "already_in_list": tally.accepted - added,
        "on_dnc": on_dnc,
        "encoding": layout.encoding,
        "delimiter": {",": "comma", ";": "semicolon", "\t": "tab"}.get(layout.delimiter, layout.delimiter),
        "columns": layout.columns,
        "finished_at": iso(clock()),
        "seconds": round((clock() - now).total_seconds(), 1),
    }
    logger.info("contacts imported", extra={"import_id": import_id, "rows_read": tally.rows_read,
                                            "accepted": tally.accepted, "rejected": tally.rejected})
    return records.update_entity("IMPORT", import_id, set_fields=summary)


def _put_report(uploads: Uploads, import_id: str, report: BinaryIO, text: io.TextIOWrapper) -> None:
    text.flush()
    report.seek(0)
    uploads.put_file(report_key(import_id), report, "text/csv")
    text.close()


def _store(records: Records, list_id: str, rows: list[ContactRow], now: datetime) -> tuple[int, int]:
    """Write one chunk; returns (contacts new to the list, contacts on the DNC list)."""
    phones = [r.phone for r in rows]
    added = records.contacts_in_list(list_id, phones)
    on_dnc = records.dnc_among(phones)
    records.put_contacts(list_id, (_contact(r, now, added.get(r.phone)) for r in rows))
    return len(set(phones) - set(added)), len(on_dnc)


def _contact(row: ContactRow, now: datetime, added_at: str | None) -> dict[str, Any]:
    """A contact as stored; `added_at` is when the phone first joined the list (a campaign
    texts the contacts its list had when it was launched), `imported_at` its latest import."""
    return {"phone": row.phone, "first_name": row.first_name, "last_name": row.last_name, "email": row.email,
            "fields": row.fields or None, "source_line": row.line, "imported_at": iso(now),
            "added_at": added_at or iso(now)}


def report_csv(records: Records, uploads: Uploads, import_id: str) -> tuple[bytes | None, str | None]:
    """The report's bytes when small enough to return inline, else a download URL. A failed
    import's report ends with the reason it failed, after the rows reported until then."""
    record = get_import(records, import_id)
    if record["status"] not in ("completed", "failed"):
        raise Conflict(FieldProblem("import_id", f"the import is {record['status']}; its report is ready when "
                                                 "the import has completed or failed"))
    key = report_key(import_id)
    size = uploads.size(key)
    if size == 0 and record["status"] == "failed":
        # Failed before this report was kept: all that is known is why.
        return _csv_text([REPORT_COLUMNS, failure_row(str(record.get("error") or "the import failed"))]), None
    if size <= 4 * 1024 * 1024:
        return uploads.read(key), None
    return None, uploads.download_url(key, UPLOAD_URL_LIFETIME_S)


def _csv_text(rows: list[tuple[str, ...]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8")
