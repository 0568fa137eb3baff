"""The operators' message log through the reports function and moto: every text newest first
with its current status, masked phones, filters, cursor pages across hour partitions that stay
exact while statuses change, and the CSV export (formula-safe cells, capped files)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from sendline import runtime
from sendline.domain.status import MessageStatus
from sendline.services import message_log
from sendline.services.dispatch import dispatch_tick
from tests.integration.conftest import INTEGRATOR, OPERATOR
from tests.integration.test_campaigns import brand_with_numbers, campaign, contacts_csv, imported_list, launch, ok
from tests.integration.test_lead_flow import make_flow

DAY = datetime(2026, 12, 3, tzinfo=UTC)
WHOLE_DAY = {"from": "2026-12-03", "to": "2026-12-04"}
FLOW_NUMBER = "+12125550100"
BRAND_NUMBER = "+12125550900"
HEADER = ["time", "sent_at", "phone", "body", "creative_id", "carrier", "brand_id", "from_number", "status",
          "error_code", "campaign_id", "flow_id", "message_id", "segments", "cost"]


def at(hour: int, minute: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def submit_lead(fns, clock, flow_id: str, phone: str, when: datetime) -> str:
    clock["value"] = when
    submitted = ok(fns.http("POST", "/v1/leads", headers=INTEGRATOR,
                            json_body={"flow_id": flow_id, "phone": phone, "first_name": "Ann"}))
    return submitted["tracking_id"]


def quick_send(fns, clock, brand_id: str, phone: str, body: str, when: datetime) -> str:
    clock["value"] = when
    return ok(fns.http("POST", "/v1/messages", headers=OPERATOR,
                       json_body={"to": phone, "brand_id": brand_id, "body": body}), 202)["message_id"]


def move(message_id: str, status: MessageStatus, when: datetime, **fields) -> None:
    """A status change as the worker or a receipt makes it."""
    records = runtime.records()
    records.transition(records.get_message(message_id), status, when, fields=fields)


def log(fns, **params):
    return fns.http("GET", "/v1/reports/messages?" + urlencode(params), headers=OPERATOR)


def ids(fns, **params) -> list[str]:
    page = ok(log(fns, **{**WHOLE_DAY, **params}))
    assert page["next_cursor"] is None
    return [row["message_id"] for row in page["messages"]]


def export(fns, **params):
    return fns.http("GET", "/v1/reports/messages.csv?" + urlencode(params), headers=OPERATOR)


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()


def wire_size(text: str) -> int:
    """The size of a body inside a Lambda response: JSON-escaped."""
    return len(json.dumps(text)) - 2


@pytest.fixture
def texts(fns, daytime):
    """Three leads of one flow in three hours, a campaign's two texts, and a quick send, with
    one lead's text delivered and another's failed."""
    flow_id = make_flow(fns, initial_message="Hi {first_name}, call {call_number}.", drips=[])
    lead_1 = submit_lead(fns, daytime, flow_id, "(212) 555-0142", at(15, 10))
    lead_2 = submit_lead(fns, daytime, flow_id, "(212) 555-0143", at(16, 20))
    lead_3 = submit_lead(fns, daytime, flow_id, "(212) 555-0144", at(17, 30))
    brand = brand_with_numbers(fns, numbers=(BRAND_NUMBER,))
    contacts = imported_list(fns, contacts_csv(["+12125550145", "+12125550146"]))
    made = campaign(fns, contacts["list"]["list_id"], brand["brand_id"],
                    creatives=[{"body": "Hi {first_name}", "weight": 1}])
    launch(fns, made["campaign_id"])
    dispatch_tick(runtime.records(), runtime.send_queue(), at(17, 50))
    campaign_texts = sorted((f"{made['campaign_id']}-{key}" for key in _contact_keys(made["campaign_id"])),
                            reverse=True)
    quick = quick_send(fns, daytime, brand["brand_id"], "(212) 555-0147", "Call {call_number}", at(17, 55))
    move(lead_1, MessageStatus.SENDING, at(15, 11), carrier="Verizon Wireless")
    move(lead_1, MessageStatus.SENT, at(15, 11), segments=1, cost_micros=7900, sent_at=stamp(at(15, 11)))
    move(lead_1, MessageStatus.DELIVERED, at(15, 12))
    move(lead_2, MessageStatus.SENDING, at(16, 21), carrier="T-Mobile USA")
    move(lead_2, MessageStatus.FAILED, at(16, 21), error_code="30007")
    daytime["value"] = at(18)
    return {"flow_id": flow_id, "brand_id": brand["brand_id"], "campaign_id": made["campaign_id"],
            "leads": [lead_1, lead_2, lead_3], "campaign": campaign_texts, "quick": quick}


def _contact_keys(campaign_id: str) -> list[str]:
    items = runtime.records().list_entities(f"CAMPMSG#{campaign_id}")
    return [item["message_id"].rpartition("-")[2] for item in items]


def newest_first(texts) -> list[str]:
    lead_1, lead_2, lead_3 = texts["leads"]
    return [texts["quick"], *texts["campaign"], lead_3, lead_2, lead_1]


# -- the page -------------------------------------------------------------------------------------
def test_the_log_lists_every_text_newest_first_with_its_current_status_and_a_masked_phone(fns, texts):
    page = ok(log(fns, **WHOLE_DAY))
    assert [row["message_id"] for row in page["messages"]] == newest_first(texts)
    assert page["next_cursor"] is None
    by_id = {row["message_id"]: row for row in page["messages"]}
    lead_1, lead_2, lead_3 = texts["leads"]
    assert by_id[lead_1] == {
        "time": "2026-12-03T15:10:00.000Z", "sent_at": "2026-12-03T15:11:00.000Z", "phone": "+1212***0142",
        "body": "Hi Ann, call (888) 555-0123.", "creative_id": None, "carrier": "Verizon Wireless",
        "brand_id": None, "from_number": FLOW_NUMBER, "status": "delivered", "error_code": None,
        "campaign_id": None, "flow_id": texts["flow_id"], "message_id": lead_1, "segments": 1, "cost": 0.0079}
    assert (by_id[lead_2]["status"], by_id[lead_2]["error_code"], by_id[lead_2]["carrier"]) == (
        "failed", "30007", "T-Mobile USA")
    assert (by_id[lead_3]["status"], by_id[lead_3]["carrier"], by_id[lead_3]["sent_at"]) == ("queued", "unknown", None)
    assert (by_id[texts["quick"]]["phone"], by_id[texts["quick"]]["body"]) == ("+1212***0147", "Call (888) 555-0123")

    shown = ok(log(fns, **WHOLE_DAY, unmask="true"))["messages"]
    assert [row["phone"] for row in shown] == [runtime.records().get_message(m)["to"] for m in newest_first(texts)]
    assert {row["phone"] for row in shown} == {f"+121255501{n}" for n in range(42, 48)}
    greeting = {"+12125550145": "Hi Pat0\nReply STOP to opt out", "+12125550146": "Hi Pat1\nReply STOP to opt out"}
    for row in shown[1:3]:
        assert {k: row[k] for k in ("time", "creative_id", "brand_id", "from_number", "campaign_id", "status",
                                    "body")} == {
            "time": "2026-12-03T17:50:00.000Z", "creative_id": "c1", "brand_id": texts["brand_id"],
            "from_number": BRAND_NUMBER, "campaign_id": texts["campaign_id"], "status": "queued",
            "body": greeting[row["phone"]]}


def test_the_default_range_is_the_last_24_hours_and_from_to_narrow_it(fns, texts):
    lead_1, lead_2, lead_3 = texts["leads"]
    assert [row["message_id"] for row in ok(log(fns))["messages"]] == newest_first(texts)
    assert ids(fns, **{"from": "2026-12-03T16:00:00Z", "to": "2026-12-03T17:50:00Z"}) == [lead_3, lead_2]
    # `from` is inclusive, `to` exclusive: the campaign's texts were created at 17:50:00.000.
    assert [r["message_id"] for r in ok(log(fns, **{"from": "2026-12-03T17:50:00Z", "to": "2026-12-03T17:55:00Z"}))[
        "messages"]] == texts["campaign"]
    assert ok(log(fns, **{"from": "2026-12-04T00:00:00Z", "to": "2026-12-05"})) == {"messages": [],
                                                                                   "next_cursor": None}


def test_each_filter_picks_exactly_its_texts(fns, texts):
    lead_1, lead_2, lead_3 = texts["leads"]
    assert ids(fns, status="failed") == [lead_2]
    assert ids(fns, status="QUEUED") == [texts["quick"], *texts["campaign"], lead_3]
    assert ids(fns, campaign_id=texts["campaign_id"]) == texts["campaign"]
    assert ids(fns, flow_id=texts["flow_id"]) == [lead_3, lead_2, lead_1]
    assert ids(fns, brand_id=texts["brand_id"]) == [texts["quick"], *texts["campaign"]]
    assert ids(fns, from_number="(212) 555-0100") == [lead_3, lead_2, lead_1]
    assert ids(fns, from_number=BRAND_NUMBER) == [texts["quick"], *texts["campaign"]]
    assert ids(fns, carrier="verizon wireless") == [lead_1]
    assert ids(fns, carrier="unknown") == [texts["quick"], *texts["campaign"], lead_3]
    assert ids(fns, creative_id="c1") == texts["campaign"]
    assert ids(fns, error_code="30007") == [lead_2]
    assert ids(fns, phone="(212) 555-0143") == [lead_2]
    assert ids(fns, phone="+12125550143", status="delivered") == []
    assert ids(fns, flow_id=texts["flow_id"], status="delivered") == [lead_1]
    assert ids(fns, campaign_id="cm_none") == []


@pytest.mark.parametrize(("params", "field", "reason"), [
    ({"colour": "red"}, "colour", "is not a parameter of this report"),
    ({"status": "lost"}, "status", "must be one of scheduled, queued, sending, sent, delivered, undelivered, "
                                   "failed, skipped, cancelled, unknown"),
    ({"phone": "12"}, "phone", None),
    ({"from_number": "call me"}, "from_number", None),
    ({"campaign_id": "x" * 101}, "campaign_id", "must be at most 100 characters"),
    ({"from": "yesterday"}, "from", "must be a date (2026-12-01) or an ISO 8601 time (2026-12-01T14:00:00Z)"),
    ({"from": "2026-12-03", "to": "2026-12-02"}, "from", "must be before to"),
    ({"from": "2026-09-01", "to": "2026-12-03"}, "from", "must be at most 92 days before to"),
    ({"limit": "0"}, "limit", "must be a whole number from 1 to 500"),
    ({"limit": "501"}, "limit", "must be a whole number from 1 to 500"),
    ({"unmask": "please"}, "unmask", "must be true or false"),
    ({"cursor": "not-a-cursor"}, "cursor", "is not a cursor this log gave"),
])
def test_a_bad_filter_is_refused_naming_the_field(fns, daytime, params, field, reason):
    refused = log(fns, **params)
    assert refused.status == 422, refused.body
    (problem,) = refused.body["errors"]
    assert problem["field"] == field
    if reason:
        assert problem["reason"].startswith(reason)


def test_the_log_is_for_operators_only(fns, daytime):
    assert fns.http("GET", "/v1/reports/messages", headers=INTEGRATOR).status == 401
    assert fns.http("GET", "/v1/reports/messages.csv").status == 401


# -- cursor pages ---------------------------------------------------------------------------------------
def test_pages_cross_hour_partitions_with_no_text_twice_or_missed_while_statuses_change(fns, daytime):
    # Given seven texts over three hours (one of them with no text at all)
    flow_id = make_flow(fns, initial_message="Hi {first_name}", drips=[])
    times = [at(13, 5), at(13, 40), at(15, 10), at(15, 15), at(15, 50), at(16, 20), at(16, 59)]
    created = [submit_lead(fns, daytime, flow_id, f"+1212555{150 + n:04d}", when) for n, when in enumerate(times)]
    expected = list(reversed(created))
    daytime["value"] = at(18)

    # When the operator reads two at a time while each text moves on between the pages
    seen, statuses, cursor = [], {}, None
    for page_number in range(10):
        page = ok(log(fns, limit="2", **WHOLE_DAY, **({"cursor": cursor} if cursor else {})))
        seen += [row["message_id"] for row in page["messages"]]
        statuses.update({row["message_id"]: row["status"] for row in page["messages"]})
        for msg_id in created:
            message = runtime.records().get_message(msg_id)
            if message["status"] == MessageStatus.QUEUED:
                move(msg_id, MessageStatus.SENDING, at(18, page_number))
            elif message["status"] == MessageStatus.SENDING:
                move(msg_id, MessageStatus.SENT, at(18, page_number), sent_at=stamp(at(18, page_number)))
        cursor = page["next_cursor"]
        if cursor is None:
            break

    # Then every text came once, newest first, in four pages, each showing its status as read
    assert seen == expected
    assert page_number == 3
    assert [statuses[m] for m in expected] == ["queued", "queued", "sending", "sending", "sent", "sent", "sent"]


def test_a_page_that_ends_with_the_range_has_no_cursor(fns, daytime):
    flow_id = make_flow(fns, initial_message="Hi {first_name}", drips=[])
    created = [submit_lead(fns, daytime, flow_id, f"+1212555{160 + n:04d}", at(14 + n)) for n in range(3)]
    daytime["value"] = at(18)
    page = ok(log(fns, limit="3", **WHOLE_DAY))
    assert ([r["message_id"] for r in page["messages"]], page["next_cursor"]) == (list(reversed(created)), None)
    first = ok(log(fns, limit="2", **WHOLE_DAY))
    rest = ok(log(fns, limit="2", **WHOLE_DAY, cursor=first["next_cursor"]))
    assert [r["message_id"] for r in first["messages"] + rest["messages"]] == list(reversed(created))
    assert rest["next_cursor"] is None


def test_a_sparse_filter_reads_a_bounded_number_of_keys_and_hands_back_a_cursor(fns, texts, monkeypatch):
    # Given a request may read only three index keys
    monkeypatch.setattr(message_log, "MAX_KEYS_PER_REQUEST", 3)
    read = []
    real_keys = type(runtime.records()).message_log_keys

    def counted(self, hour, *, below, limit):
        keys = real_keys(self, hour, below=below, limit=limit)
        read.append(len(keys))
        return keys

    monkeypatch.setattr(type(runtime.records()), "message_log_keys", counted)
    # When the operator asks for the failed texts (one, the oldest but one)
    pages, cursor = [], None
    while True:
        read.clear()
        page = ok(log(fns, status="failed", **WHOLE_DAY, **({"cursor": cursor} if cursor else {})))
        assert sum(read) <= 3
        pages.append([row["message_id"] for row in page["messages"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Then short pages carry the cursor on until the failed text is found, and the range ends
    assert pages == [[], [texts["leads"][1]], []]


def test_a_cursor_keeps_its_range_as_time_goes_on(fns, daytime):
    flow_id = make_flow(fns, initial_message="Hi {first_name}", drips=[])
    created = [submit_lead(fns, daytime, flow_id, f"+1212555{170 + n:04d}", at(17, 10 * n)) for n in range(3)]
    daytime["value"] = at(18)
    first = ok(log(fns, limit="2"))  # the last 24 hours
    daytime["value"] = at(18) + timedelta(days=1, hours=2)  # the default range has moved past them
    rest = ok(log(fns, limit="2", cursor=first["next_cursor"]))
    assert [r["message_id"] for r in first["messages"] + rest["messages"]] == list(reversed(created))


# -- the CSV export ---------------------------------------------------------------------------------------
def test_the_export_has_the_header_and_a_row_per_text(fns, texts):
    response = export(fns, **WHOLE_DAY, flow_id=texts["flow_id"])
    assert response.status == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="message-log.csv"'
    assert "x-next-cursor" not in response.headers
    lead_1, lead_2, lead_3 = texts["leads"]
    flow = texts["flow_id"]
    body = "Hi Ann, call (888) 555-0123."
    assert csv_rows(response.body) == [
        HEADER,
        ["2026-12-03T17:30:00.000Z", "", "'+1212***0144", body, "", "unknown", "", FLOW_NUMBER, "queued", "", "",
         flow, lead_3, "", ""],
        ["2026-12-03T16:20:00.000Z", "", "'+1212***0143", body, "", "T-Mobile USA", "", FLOW_NUMBER, "failed",
         "30007", "", flow, lead_2, "", ""],
        ["2026-12-03T15:10:00.000Z", "2026-12-03T15:11:00.000Z", "'+1212***0142", body, "", "Verizon Wireless", "",
         FLOW_NUMBER, "delivered", "", "", flow, lead_1, "1", "0.0079"],
    ]
    shown = csv_rows(export(fns, **WHOLE_DAY, flow_id=texts["flow_id"], unmask="1").body)
    assert [row[2] for row in shown[1:]] == ["+12125550144", "+12125550143", "+12125550142"]


def test_export_cells_that_a_spreadsheet_would_run_are_made_text(fns, daytime):
    brand = brand_with_numbers(fns, numbers=(BRAND_NUMBER,))
    bodies = ['=HYPERLINK("http://evil.test","Win")', "@SUM(1+1)", "+1 call now", "-10% off today", "Plain text",
              "to be a tab", "to be a return"]
    sent = [quick_send(fns, daytime, brand["brand_id"], f"+1212555{180 + n:04d}", body, at(15, n))
            for n, body in enumerate(bodies)]
    # Bodies are stripped when sent; a stored one may still begin with a tab or a carriage return.
    records = runtime.records()
    for msg_id, body in ((sent[5], "\tTabbed"), (sent[6], "\rReturned")):
        message = records.get_message(msg_id)
        records.store.update(message["pk"], message["sk"], set_fields={"body": body})
    daytime["value"] = at(18)
    rows = csv_rows(export(fns, **WHOLE_DAY).body)
    assert [row[3] for row in rows[1:]] == [
        "'\rReturned", "'\tTabbed", "Plain text", "'-10% off today", "'+1 call now", "'@SUM(1+1)",
        "'=HYPERLINK(\"http://evil.test\",\"Win\")"]


def test_a_capped_export_ends_its_file_and_the_cursor_header_continues_it(fns, texts, monkeypatch):
    whole = csv_rows(export(fns, **WHOLE_DAY).body)
    assert len(whole) == 1 + 6
    # Given a file may hold the header and about two rows
    cap = wire_size(line(HEADER)) + 400
    monkeypatch.setattr(message_log, "MAX_EXPORT_BYTES", cap)
    # When the operator asks again with each file's X-Next-Cursor until a file has none
    files, cursor = [], None
    while True:
        response = export(fns, **WHOLE_DAY, **({"cursor": cursor} if cursor else {}))
        assert response.status == 200
        rows = csv_rows(response.body)
        assert rows[0] == HEADER
        assert wire_size(response.body) <= cap
        files.append(rows[1:])
        cursor = response.headers.get("x-next-cursor")
        if cursor is None:
            break
    # Then together the files hold every row once, in order, and each holds as many as fit
    assert len(files) >= 3
    assert [row for f in files for row in f] == whole[1:]
    for this, following in zip(files, files[1:]):
        assert wire_size("".join(line(r) for r in [HEADER, *this, following[0]])) > cap
    assert fns.http("GET", "/v1/reports/messages.csv?limit=5", headers=OPERATOR).body["errors"] == [
        {"field": "limit", "reason": "is not a parameter of this report; use brand_id, campaign_id, carrier, "
                                     "creative_id, cursor, error_code, flow_id, from, from_number, phone, status, "
                                     "to, unmask"}]
