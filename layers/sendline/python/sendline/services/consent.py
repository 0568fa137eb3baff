"""A phone number's consent record: how each of its leads was obtained (source, API key, IP,
user agent, time, the page and opt-in text the integrator sent), its opt-outs and opt-ins as
they came, and where it stands on the DNC list today. What an operator hands over when a
recipient or a lawyer asks."""

from __future__ import annotations

import csv
import io
from typing import Any

from sendline.adapters.records import Records
from sendline.domain.contacts_csv import spreadsheet_text
from sendline.domain.phones import PhoneRejected, normalise_phone
from sendline.errors import FieldProblem, ValidationFailed

# `request_ip` and `user_agent` are of the integrator's request; `consumer_ip` and the
# TrustedForm and Jornaya ids are what the integrator says of the consumer's opt-in.
CSV_COLUMNS = ("phone", "record", "at", "lead_id", "flow_id", "sending_number", "source", "api_key_id", "api_key_name",
               "request_ip", "user_agent", "consumer_ip", "page_url", "opt_in_text", "trusted_form_url",
               "jornaya_leadid", "keyword", "body")


def consent_record(records: Records, raw_phone: object) -> dict[str, Any]:
    try:
        phone = normalise_phone(raw_phone).e164
    except PhoneRejected as exc:
        raise ValidationFailed(FieldProblem("phone", exc.reason)) from None
    leads = [{"lead_id": lead["lead_id"], "flow_id": lead["flow_id"], "sending_number": lead.get("from_number"),
              "created_at": lead["created_at"], "consent": lead.get("consent") or {}}
             for lead in records.leads_for_phone(phone)]
    events = [{k: event.get(k) for k in ("at", "event", "keyword", "body", "to", "message_sid")}
              for event in records.phone_events(phone)]
    entry = records.get_dnc(phone)
    return {"phone": phone, "on_dnc": entry is not None, "dnc": entry, "leads": leads, "opt_events": events}


def consent_csv(record: dict[str, Any]) -> str:
    """The record as one CSV: a line per lead's consent and per opt-out or opt-in, oldest first,
    every cell safe to open in a spreadsheet."""
    rows = []
    for lead in record["leads"]:
        consent = lead["consent"]
        rows.append({"record": "consent", "at": consent.get("submitted_at") or lead["created_at"],
                     "lead_id": lead["lead_id"], "flow_id": lead["flow_id"], "sending_number": lead["sending_number"],
                     "source": consent.get("source"), "api_key_id": consent.get("api_key_id"),
                     "api_key_name": consent.get("api_key_name"), "request_ip": consent.get("ip"),
                     "user_agent": consent.get("user_agent"), "consumer_ip": consent.get("ip_address"),
                     "page_url": consent.get("page_url"),
                     "opt_in_text": consent.get("opt_in_text") or consent.get("consent_text"),
                     "trusted_form_url": consent.get("trusted_form_url"),
                     "jornaya_leadid": consent.get("jornaya_leadid")})
    for event in record["opt_events"]:
        rows.append({"record": event["event"], "at": event["at"], "sending_number": event.get("to"),
                     "keyword": event.get("keyword"), "body": event.get("body")})
    if record["dnc"]:
        entry = record["dnc"]
        rows.append({"record": "dnc", "at": entry.get("added_at"), "source": entry.get("source"),
                     "keyword": entry.get("detail")})
    rows.sort(key=lambda row: row.get("at") or "")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        row["phone"] = record["phone"]
        writer.writerow([spreadsheet_text(str(row.get(column) or "")) for column in CSV_COLUMNS])
    return out.getvalue()
