"""The DNC list (search, bulk import, export, the integrators' routes) and auto-DNC from delivery
failures, through the real handlers and moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sendline import runtime
from sendline.domain.clock import utcnow
from sendline.services.dnc import record_failure
from tests.integration.conftest import INTEGRATOR, OPERATOR, form
from tests.integration.test_lead_flow import make_flow, twilio_created
from tests.integration.test_sending_and_receipts import callback, receipt, send_all

# Leads are texted only inside their recipients' send windows: every test runs at 13:00 New York.
pytestmark = pytest.mark.usefixtures("daytime")

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def dnc_page(fns, query=""):
    result = fns.http("GET", f"/v1/dnc{query}", headers=OPERATOR)
    assert result.status == 200, result.body
    return result.body


def phones_of(page):
    return [e["phone"] for e in page["entries"]]


def seeded_list(fns):
    """Five entries, one per source, a day or an hour apart, oldest first."""
    records = runtime.records()
    records.add_dnc("+12125550101", "keyword", T0, "STOP")
    operator_api = fns.module("operator_api")
    operator_api.utcnow = lambda: T0 + timedelta(hours=1)
    fns.http("POST", "/v1/dnc", headers=OPERATOR, json_body={"phone": "(212) 555-0102"})
    operator_api.utcnow = lambda: T0 + timedelta(days=1)
    fns.http("POST", "/v1/dnc", headers=INTEGRATOR, json_body={"phones": ["310-555-0103"]})
    records.add_dnc("+12125550104", "import", T0 + timedelta(days=2), "line 2")
    records.add_dnc("+13105550105", "auto_dnc", T0 + timedelta(days=3), "error 30005 after 2 failed messages",
                    code="30005", message_ids=["ld_a-0", "ld_b-0"])


# -- search ---------------------------------------------------------------------------------------
def test_the_list_shows_every_entry_newest_first_with_its_source(fns):
    seeded_list(fns)
    page = dnc_page(fns)
    assert phones_of(page) == ["+13105550105", "+12125550104", "+13105550103", "+12125550102", "+12125550101"]
    assert [e["source"] for e in page["entries"]] == ["auto_dnc", "import", "api", "operator", "keyword"]
    assert page["entries"][0] == {"phone": "+13105550105", "source": "auto_dnc", "added_at": "2026-03-04T10:00:00.000Z",
                                  "detail": "error 30005 after 2 failed messages", "code": "30005",
                                  "message_ids": ["ld_a-0", "ld_b-0"]}
    assert page["entries"][3] == {"phone": "+12125550102", "source": "operator", "added_at": "2026-03-01T11:00:00.000Z",
                                  "detail": None, "code": None, "message_ids": []}
    assert page["next_cursor"] is None


def test_search_by_source_number_and_time(fns):
    seeded_list(fns)
    assert phones_of(dnc_page(fns, "?source=auto_dnc")) == ["+13105550105"]
    assert phones_of(dnc_page(fns, "?source=keyword")) == ["+12125550101"]
    # The start of a number with its '+', encoded or as a query string delivers an unencoded one.
    assert phones_of(dnc_page(fns, "?q=%2B1310")) == ["+13105550105", "+13105550103"]
    assert phones_of(dnc_page(fns, "?q=+1310")) == ["+13105550105", "+13105550103"]
    # Digits anywhere in the number.
    assert phones_of(dnc_page(fns, "?q=0104")) == ["+12125550104"]
    assert phones_of(dnc_page(fns, "?q=555-010")) == phones_of(dnc_page(fns))
    # A whole number, however it is written.
    assert phones_of(dnc_page(fns, "?q=(212)%20555-0102")) == ["+12125550102"]
    assert phones_of(dnc_page(fns, "?q=2125550102&source=api")) == []
    # Dates are whole days; `until` takes in its whole day.
    assert phones_of(dnc_page(fns, "?since=2026-03-02&until=2026-03-03")) == ["+12125550104", "+13105550103"]
    assert phones_of(dnc_page(fns, "?since=2026-03-01T10:30:00Z&until=2026-03-02T10:00:00Z")) == [
        "+13105550103", "+12125550102"]
    assert phones_of(dnc_page(fns, "?since=2026-03-01T11:30:00%2B01:00&q=212")) == [
        "+12125550104", "+12125550102"]


def test_pages_follow_the_cursor_to_the_end(fns):
    seeded_list(fns)
    first = dnc_page(fns, "?limit=2")
    second = dnc_page(fns, f"?limit=2&cursor={first['next_cursor']}")
    third = dnc_page(fns, f"?limit=2&cursor={second['next_cursor']}")
    assert (phones_of(first), phones_of(second), phones_of(third)) == (
        ["+13105550105", "+12125550104"], ["+13105550103", "+12125550102"], ["+12125550101"])
    assert third["next_cursor"] is None
    # With a filter too.
    one = dnc_page(fns, "?q=%2B1212&limit=2")
    two = dnc_page(fns, f"?q=%2B1212&limit=2&cursor={one['next_cursor']}")
    assert (phones_of(one), phones_of(two), two["next_cursor"]) == (
        ["+12125550104", "+12125550102"], ["+12125550101"], None)
    # A page that ends exactly at the list's end says so.
    assert dnc_page(fns, "?limit=5")["next_cursor"] is None


@pytest.mark.parametrize(("query", "field", "reason"), [
    ("?source=sms", "source", "must be one of keyword, phrase, operator, api, import, auto_dnc"),
    ("?cursor=bm90LWEtY3Vyc29y", "cursor", "is not a cursor this listing gave"),
    ("?since=last%20week", "since", "must be a date (2026-03-01) or an ISO 8601 time (2026-03-01T14:00:00Z)"),
    ("?since=2026-03-05&until=2026-03-01", "since", "must not be after until"),
    ("?q=212-CALL", "q", "must be digits of a phone number, or its start with '+'"),
    ("?limit=500", "limit", "must be a whole number from 1 to 200"),
])
def test_bad_search_parameters_are_named(fns, query, field, reason):
    result = fns.http("GET", f"/v1/dnc{query}", headers=OPERATOR)
    assert (result.status, result.body["errors"]) == (422, [{"field": field, "reason": reason}])


def test_the_list_import_and_export_are_for_operators_only(fns):
    for method, target in (("GET", "/v1/dnc"), ("POST", "/v1/dnc/imports"), ("GET", "/v1/dnc/export.csv")):
        result = fns.http(method, target, headers=INTEGRATOR, body="phone\n2125550142\n")
        assert (result.status, result.body["errors"][0]["field"]) == (401, "authorization")


# -- bulk import ----------------------------------------------------------------------------------
MESSY_CSV = (
    b"Mobile Phone;Name;Notes\r\n"
    b"(212) 555-0142;Jos\xe9;\r\n"  # Windows-1252, as Excel on Windows saves it
    b"2.125550143E+09;Bob;\r\n"  # Excel's scientific notation, all digits kept
    b"212-555-CALL;Cy;\r\n"
    b"+1 212 555 0142;Ann again;\r\n"
    b"\r\n"
    b"2125550144;Dee;" + b"x" * 1001 + b"\r\n"  # a note too long for a contact, not for a DNC entry
    b"2125550145;Eve;\r\n"
    b"2.12555E+09;Fay;\r\n"
)


def imported(fns, body, headers=None):
    """POST a file as the request's body, let its upload event run the import; returns the
    import's record and its report's rows."""
    started = fns.http("POST", "/v1/dnc/imports", headers={**OPERATOR, **(headers or {})}, body=body)
    assert started.status == 202, started.body
    assert (started.body["kind"], started.body["status"]) == ("dnc", "uploaded")
    assert fns.drain_imports() == 1
    record = fns.http("GET", f"/v1/imports/{started.body['import_id']}", headers=OPERATOR).body
    report = fns.http("GET", f"/v1/imports/{started.body['import_id']}/report.csv", headers=OPERATOR)
    rows = report.body.splitlines() if report.status == 200 else None
    return record, rows


def test_a_messy_csv_is_imported_and_every_row_reported(fns):
    runtime.records().add_dnc("+12125550145", "keyword", T0, "STOP")
    record, report = imported(fns, MESSY_CSV, {"content-type": "text/csv"})
    assert {k: record[k] for k in ("status", "rows_read", "added", "already_listed", "duplicates", "rejected",
                                   "rejected_by_reason", "encoding", "delimiter", "phone_column")} == {
        "status": "completed", "rows_read": 7, "added": 3, "already_listed": 1, "duplicates": 1,
        "rejected": 2, "rejected_by_reason": {"contains letters": 1, "digits lost to Excel scientific notation": 1},
        "encoding": "windows-1252", "delimiter": "semicolon", "phone_column": "Mobile Phone"}
    assert report == ["line,outcome,reason,value", "4,rejected,contains letters,212-555-CALL",
                      "5,duplicate,same phone as line 2,+1212***0142",
                      "9,rejected,digits lost to Excel scientific notation,2.12555E+09"]
    imported_entries = dnc_page(fns, "?source=import")["entries"]
    assert sorted((e["phone"], e["detail"]) for e in imported_entries) == [
        ("+12125550142", "line 2"), ("+12125550143", "line 3"), ("+12125550144", "line 7")]
    kept = dnc_page(fns, "?q=2125550145")["entries"]
    assert [(e["source"], e["added_at"]) for e in kept] == [("keyword", "2026-03-01T10:00:00.000Z")]


def test_importing_the_same_file_again_adds_nothing(fns):
    body = "phone\n2125550142\n2125550143\n"
    first, _ = imported(fns, body)
    again, _ = imported(fns, body)
    assert (first["added"], first["already_listed"]) == (2, 0)
    assert (again["rows_read"], again["added"], again["already_listed"]) == (2, 0, 2)
    listed = fns.http("GET", "/v1/dnc/imports", headers=OPERATOR).body["imports"]
    assert [i["import_id"] for i in listed] == [again["import_id"], first["import_id"]]


def test_an_import_of_more_numbers_than_one_batch_lists_them_all(fns):
    phones = [f"+1212555{n:04d}" for n in range(1000, 1250)]
    record, report = imported(fns, "phone\n" + "\n".join(phones) + "\n")
    assert (record["rows_read"], record["added"], record["rejected"], report) == (
        250, 250, 0, ["line,outcome,reason,value"])
    listed = []
    cursor = ""
    while True:
        page = dnc_page(fns, f"?limit=200{cursor}")
        listed += phones_of(page)
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert sorted(listed) == phones


def test_a_file_of_any_size_goes_through_a_presigned_upload(fns):
    started = fns.http("POST", "/v1/dnc/imports?filename=stops.csv", headers=OPERATOR)
    assert started.status == 202, started.body
    assert {k: started.body[k] for k in ("kind", "status", "filename")} == {
        "kind": "dnc", "status": "awaiting_upload", "filename": "stops.csv"}
    assert (started.body["upload"]["method"], started.body["upload"]["headers"]) == ("PUT", {"Content-Type": "text/csv"})
    # What the client's PUT to the presigned URL does: the object lands under the import's key.
    runtime.uploads().put(f"imports/{started.body['import_id']}/contacts.csv", b"cell\n2125550101\n", "text/csv")
    assert fns.drain_imports() == 1
    record = fns.http("GET", f"/v1/imports/{started.body['import_id']}", headers=OPERATOR).body
    assert (record["status"], record["added"], record["phone_column"]) == ("completed", 1, "cell")
    assert phones_of(dnc_page(fns)) == ["+12125550101"]


def test_a_line_that_stops_the_reading_is_reported_and_the_numbers_before_it_stay_listed(fns):
    body = "phone\n2125550142\n212-555-CALL\n" + "x" * (2 * 1024 * 1024)  # no line break: not text lines at all
    record, report = imported(fns, body)
    assert {k: record[k] for k in ("status", "error", "rows_read", "added")} == {
        "status": "failed", "error": "line 4 is longer than 1048576 characters: not a contacts list",
        "rows_read": 2, "added": 1}
    assert report == ["line,outcome,reason,value", "3,rejected,contains letters,212-555-CALL",
                      ",import_failed,line 4 is longer than 1048576 characters: not a contacts list,"]
    assert phones_of(dnc_page(fns)) == ["+12125550142"]


def test_a_file_over_5_mb_in_the_request_is_sent_to_the_upload_url(fns):
    body = "phone\n" + "2125550142\n" * (5 * 1024 * 1024 // 11 + 1)
    result = fns.http("POST", "/v1/dnc/imports", headers=OPERATOR, body=body)
    assert (result.status, result.body["errors"]) == (413, [{
        "field": "body", "reason": "files over 5 MB go to the upload URL: post without a body"}])


@pytest.mark.parametrize(("body", "reason"), [
    ("  \n", "is empty; send the CSV file as the body (Content-Type: text/csv), or post without a body for an "
              "upload URL"),
    ("name,notes\nAnn,hi\n", "no phone column (found name, notes): name it phone, mobile or cell"),
    ("2125550142\n2125550143\n", "the first row is a contact, not a header: add a header row that names the phone "
                                 "column (phone, mobile or cell)"),
])
def test_a_file_that_is_not_a_phone_list_is_refused_with_the_reason(fns, body, reason):
    result = fns.http("POST", "/v1/dnc/imports", headers=OPERATOR, body=body)
    assert (result.status, result.body["errors"]) == (422, [{"field": "body", "reason": reason}])
    assert fns.drain_imports() == 0
    assert dnc_page(fns)["entries"] == []


# -- export ---------------------------------------------------------------------------------------
def test_the_export_lists_every_entry_with_formula_cells_made_text(fns):
    records = runtime.records()
    records.add_dnc("+12125550101", "keyword", T0, "STOP")
    records.add_dnc("+12125550102", "operator", T0 + timedelta(hours=1), '=HYPERLINK("http://x.test","click")')
    records.add_dnc("+12125550103", "auto_dnc", T0 + timedelta(hours=2), "error 21610", code="21610",
                    message_ids=["ld_c-0"])
    result = fns.http("GET", "/v1/dnc/export.csv", headers=OPERATOR)
    assert result.status == 200
    assert result.headers["content-type"] == "text/csv; charset=utf-8"
    assert result.headers["content-disposition"].startswith('attachment; filename="dnc-')
    assert result.body == (
        "phone,source,added_at,code,detail\r\n"
        "+12125550103,auto_dnc,2026-03-01T12:00:00.000Z,21610,error 21610\r\n"
        "+12125550102,operator,2026-03-01T11:00:00.000Z,,\"'=HYPERLINK(\"\"http://x.test\"\",\"\"click\"\")\"\r\n"
        "+12125550101,keyword,2026-03-01T10:00:00.000Z,,STOP\r\n")


def test_an_empty_list_exports_its_header(fns):
    result = fns.http("GET", "/v1/dnc/export.csv", headers=OPERATOR)
    assert (result.status, result.body) == (200, "phone,source,added_at,code,detail\r\n")


# -- the integrators' routes ------------------------------------------------------------------------
def test_ext_dnc_add_and_ext_dnc_check_keep_working(fns):
    added = fns.http("POST", "/api.php?action=ext_dnc_add", headers=INTEGRATOR,
                     json_body={"phones": ["(212) 555-0142", "555-CALL"]})
    assert (added.status, added.body["added"], added.body["rejected"]) == (
        200, 1, [{"field": "phones[1]", "reason": "contains letters"}])
    posted_as_form = fns.http("POST", "/api.php?action=ext_dnc_add", body=form({"phone": "2125550143"}),
                              headers={**INTEGRATOR, "content-type": "application/x-www-form-urlencoded"})
    assert (posted_as_form.status, posted_as_form.body["phones"]) == (200, ["+12125550143"])
    checked = fns.http("GET", "/api.php?action=ext_dnc_check&phone=2125550142", headers=INTEGRATOR)
    assert (checked.status, checked.body["dnc"], checked.body["source"]) == (200, True, "api")
    assert checked.headers["x-ratelimit-limit"] == "300"
    unlisted = fns.http("GET", "/api.php?action=ext_dnc_check&phone=2125550199", headers=INTEGRATOR).body
    assert (unlisted["dnc"], unlisted["source"], unlisted["added_at"]) == (False, None, None)
    assert [(e["phone"], e["source"]) for e in dnc_page(fns)["entries"]] == [
        ("+12125550143", "api"), ("+12125550142", "api")]


# -- auto-DNC from delivery failures ----------------------------------------------------------------
PHONE = "+12125550142"
_sids = iter(range(1, 1000))


def sent_message(fns, phone=PHONE):
    """A lead's first text to `phone`, accepted by the carrier; returns (message id, sid)."""
    flow_id = make_flow(fns)  # a flow of its own: the same phone twice in one flow is one lead
    submitted = fns.http("POST", "/v1/leads", headers=INTEGRATOR, json_body={"flow_id": flow_id, "phone": phone})
    assert submitted.status == 200, submitted.body
    sid = "SM" + f"{next(_sids):032x}"
    send_all(fns, twilio_created(sid))
    return f"{submitted.body['lead_id']}-0", sid


def undelivered(fns, code, phone=PHONE):
    """A text to `phone` that the carrier reports undelivered with `code`; returns its message id."""
    message_id, sid = sent_message(fns, phone)
    assert callback(fns, receipt("sent", sid)).status == 200
    assert callback(fns, receipt("undelivered", sid, ErrorCode=code)).status == 200
    return message_id


def rejected_at_send(fns, code, phone=PHONE):
    """A text to `phone` that the carrier refuses at once with `code`; returns its message id."""
    flow_id = make_flow(fns)
    submitted = fns.http("POST", "/v1/leads", headers=INTEGRATOR, json_body={"flow_id": flow_id, "phone": phone})
    send_all(fns, httpx.Response(400, json={"code": int(code), "message": "refused", "status": 400}))
    return f"{submitted.body['lead_id']}-0"


def entry(fns, phone=PHONE):
    found = dnc_page(fns, f"?q={phone.replace('+', '%2B')}")["entries"]
    return found[0] if found else None


def auto_dnc_settings(fns, **changes):
    result = fns.http("PATCH", "/v1/settings", headers=OPERATOR, json_body={"auto_dnc": changes})
    assert result.status == 200, result.body
    return result.body["auto_dnc"]


def test_auto_dnc_settings_have_their_defaults_and_are_checked(fns):
    shown = fns.http("GET", "/v1/settings", headers=OPERATOR).body["auto_dnc"]
    assert shown == {"enabled": True, "codes": [30007, 21610, 21211, 21614, 30005, 30006], "failures_before_dnc": 2,
                     "immediate_codes": [21610]}
    assert auto_dnc_settings(fns, failures_before_dnc=3)["codes"] == [30007, 21610, 21211, 21614, 30005, 30006]
    bad = fns.http("PATCH", "/v1/settings", headers=OPERATOR, json_body={"auto_dnc": {"codes": [30005, 42],
                                                                                     "failures_before_dnc": 0}})
    assert (bad.status, bad.body["errors"]) == (422, [
        {"field": "auto_dnc.codes.1", "reason": "input should be greater than or equal to 10000"},
        {"field": "auto_dnc.failures_before_dnc", "reason": "input should be greater than or equal to 1"}])


def test_a_second_30005_failure_lists_the_number_with_both_messages(fns):
    first = undelivered(fns, "30005")
    assert entry(fns) is None
    # The carrier repeats its callback for the same message: it is the same failure.
    sid = runtime.records().get_message(first)["provider_sid"]
    assert callback(fns, receipt("undelivered", sid, ErrorCode="30005")).status == 200
    assert callback(fns, receipt("failed", sid, ErrorCode="30005")).status == 200
    assert entry(fns) is None
    second = undelivered(fns, "30005")
    listed = entry(fns)
    assert {k: listed[k] for k in ("phone", "source", "code", "detail", "message_ids")} == {
        "phone": PHONE, "source": "auto_dnc", "code": "30005", "detail": "error 30005 after 2 failed messages",
        "message_ids": sorted([first, second])}
    assert fns.http("GET", f"/v1/dnc/{PHONE}", headers=OPERATOR).body["dnc"] is True


def test_the_same_failure_recorded_twice_counts_once(fns):
    first = undelivered(fns, "30006")
    failed = runtime.records().get_message(first)
    assert (failed["status"], failed["error_code"]) == ("undelivered", "30006")
    # A second report of this message's failure (a callback retried while the first was applied).
    assert record_failure(runtime.records(), failed, utcnow()) is False
    assert entry(fns) is None


@pytest.mark.parametrize("code", ["30007", "30006"])
def test_other_listed_delivery_codes_also_list_at_the_second_failure(fns, code):
    undelivered(fns, code)
    assert entry(fns) is None
    undelivered(fns, code)
    assert (entry(fns)["source"], entry(fns)["code"]) == ("auto_dnc", code)


@pytest.mark.parametrize("code", ["21211", "21614"])
def test_a_refusal_at_send_counts_as_a_failure(fns, code):
    first = rejected_at_send(fns, code)
    assert runtime.records().get_message(first)["status"] == "failed"
    assert entry(fns) is None
    second = undelivered(fns, "30005")
    listed = entry(fns)
    assert (listed["code"], listed["message_ids"]) == ("30005", sorted([first, second]))


def test_21610_at_send_lists_the_number_at_once(fns):
    message_id = rejected_at_send(fns, "21610")
    listed = entry(fns)
    assert {k: listed[k] for k in ("source", "code", "detail", "message_ids")} == {
        "source": "auto_dnc", "code": "21610", "detail": "error 21610", "message_ids": [message_id]}
    # The next lead to the number is not texted.
    flow_id = make_flow(fns)
    again = fns.http("POST", "/v1/leads", headers=INTEGRATOR, json_body={"flow_id": flow_id, "phone": PHONE}).body
    assert again["sent"] is False


def test_a_code_not_in_the_list_never_lists_the_number(fns):
    for _ in range(3):
        undelivered(fns, "30003")  # unreachable handset: transient
    assert entry(fns) is None
    assert dnc_page(fns)["entries"] == []


def test_auto_dnc_turned_off_lists_nothing(fns):
    auto_dnc_settings(fns, enabled=False)
    undelivered(fns, "30005")
    undelivered(fns, "30005")
    rejected_at_send(fns, "21610", phone="+12125550143")
    assert dnc_page(fns)["entries"] == []
    # Turned back on, the failures while it was off did not count.
    auto_dnc_settings(fns, enabled=True)
    undelivered(fns, "30005")
    assert entry(fns) is None


def test_a_custom_threshold_of_three_is_honoured(fns):
    assert auto_dnc_settings(fns, failures_before_dnc=3)["failures_before_dnc"] == 3
    ids = [undelivered(fns, "30005"), undelivered(fns, "30007")]
    assert entry(fns) is None
    ids.append(undelivered(fns, "30005"))
    listed = entry(fns)
    assert (listed["code"], listed["detail"], listed["message_ids"]) == (
        "30005", "error 30005 after 3 failed messages", sorted(ids))


def test_custom_codes_and_immediate_codes_are_honoured(fns):
    auto_dnc_settings(fns, codes=[30003], immediate_codes=[30003])
    undelivered(fns, "30005", phone="+12125550143")
    undelivered(fns, "30005", phone="+12125550143")
    message_id = undelivered(fns, "30003")
    assert phones_of(dnc_page(fns)) == [PHONE]
    assert entry(fns)["message_ids"] == [message_id]


def test_a_number_taken_off_the_list_starts_again_from_no_failures(fns):
    undelivered(fns, "30005")
    undelivered(fns, "30005")
    assert entry(fns)["source"] == "auto_dnc"
    assert fns.http("DELETE", f"/v1/dnc/{PHONE}", headers=OPERATOR).body["removed"] is True
    undelivered(fns, "30005")
    assert entry(fns) is None
