"""Bulk campaigns through the local stack over HTTP, as a new operator runs them.

A brand with three sending numbers and a template; contacts imported the way they are on AWS (a
presigned PUT to S3, whose event starts the import); campaigns launched with a start in the past
and a send window open all day, so nothing here depends on the clock; pause and resume; phone
validation with both providers; the legacy routes integrators call.

The carrier simulator is seeded: whether a number is delivered to, is a landline or has a low
activity score is drawn once from (seed, number), so the counts asserted below are exact. The
contacts use 555-2xxx lines, which no other end-to-end test texts.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests import polling
from tests.e2e.conftest import TICK_SECONDS

pytestmark = pytest.mark.e2e

ALL_DAY = {"start": "00:00", "end": "24:00"}
NUMBERS = ("+12125550910", "+12125550911", "+12125550912")
NUMBER_MPS = 5
POOL_RATE = NUMBER_MPS * len(NUMBERS)
TEMPLATE = "Hi {first_name}, your December offer is ready. Call {call_number}."
FOOTER = "Reply STOP to opt out"
NO_VALIDATION = {"enabled_for_campaigns": False}

# Manhattan contacts for the plain and the validated campaign. Seeded fates: 40 are delivered
# to; four are landlines (undelivered 30006) and one is filtered (30007). Five score below 50,
# the filtered one among them; one landline scores 22, but a landline is skipped as such.
MANHATTAN = [f"+1212555{2000 + i}" for i in range(45)]
MANHATTAN_DELIVERED = 40
LANDLINES = {f"+1212555{n}" for n in (2016, 2026, 2037, 2038)}
LOW_SCORES = {f"+1212555{n}" for n in (2007, 2009, 2011, 2015, 2033)}
# Brooklyn contacts for pause and resume: 26 delivered to, 4 undelivered.
BROOKLYN = [f"+1718555{2000 + i}" for i in range(30)]
BROOKLYN_DELIVERED = 26
LAST_ONE = ["+12155552000"]
# For Twilio Lookup: 2012 is a landline; 2009's line status is inactive and 2013's
# unreachable (scores 5 and 20); 2000 and 2014 are "unknown", which screens no one out.
QUEENS = [f"+1646555{2000 + i}" for i in range(20)]

def national(e164: str) -> str:
    return f"({e164[2:5]}) {e164[5:8]}-{e164[8:]}"


def contacts_csv(phones: list[str]) -> tuple[str, dict[str, str]]:
    """A contacts file with the phones written several ways; returns the text and each
    phone's first name."""
    names, rows = {}, ["Phone Number,First Name,Last Name"]
    for i, phone in enumerate(phones):
        digits = phone[2:]
        written = [national(phone), f"{digits[:3]}.{digits[3:6]}.{digits[6:]}", phone, digits][i % 4]
        names[phone] = f"Pat{i}"
        rows.append(f"{written},Pat{i},Lee")
    return "\r\n".join(rows) + "\r\n", names


# -- helpers ---------------------------------------------------------------------------------------
def wait_for(check, timeout_s: float = 60.0, interval_s: float = 0.5, describe=None):
    """Campaigns take longer: a minute by default, looked at twice a second."""
    return polling.wait_for(check, timeout_s=timeout_s, interval_s=interval_s, describe=describe)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Operator:
    """The operator's HTTP client, and the carrier simulator's admin view."""

    def __init__(self, stack: dict[str, Any]):
        self.stack = stack
        self.http = httpx.Client(base_url=stack["api_url"], timeout=15,
                                 headers={"Authorization": f"Bearer {stack['admin_token']}"})

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, status: int = 200) -> Any:
        return ok(self.http.get(path), status)

    def post(self, path: str, body: Any = None, status: int = 200) -> Any:
        return ok(self.http.post(path, json=body) if body is not None else self.http.post(path), status)

    def patch(self, path: str, body: Any) -> Any:
        return ok(self.http.patch(path, json=body))

    def sim_messages(self, recipients) -> list[dict[str, Any]]:
        """The carrier's outbound messages to these recipients."""
        wanted = set(recipients)
        every = httpx.get(f"{self.stack['carrier_url']}/_sim/messages", timeout=15).json()["messages"]
        return [m for m in every if m["direction"] == "outbound-api" and m["to"] in wanted]

    def sim_stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.stack['carrier_url']}/_sim/stats", timeout=15).json()

    def sim_lookups(self) -> dict[str, int]:
        return self.sim_stats()["lookups"]

    def sim_config(self, changes: dict[str, Any]) -> None:
        response = httpx.post(f"{self.stack['carrier_url']}/_sim/config", json=changes, timeout=15)
        assert response.status_code == 200, response.text

    # -- contact lists -------------------------------------------------------------------------
    def imported_list(self, name: str, csv_text: str) -> dict[str, Any]:
        """A list filled the AWS way: a presigned PUT to S3, whose event starts the import."""
        contact_list = self.post("/v1/contact-lists", {"name": name}, 201)
        started = self.post(f"/v1/contact-lists/{contact_list['list_id']}/imports", status=202)
        upload = started["upload"]
        put = httpx.put(upload["url"], content=csv_text.encode(), headers=upload["headers"], timeout=15)
        assert put.status_code == 200, put.text
        done = wait_for(lambda: (r := self.get(f"/v1/imports/{started['import_id']}"))["status"]
                        in ("completed", "failed") and r, timeout_s=30)
        return {"list": contact_list, "started": started, "import": done}

    # -- campaigns -----------------------------------------------------------------------------
    def campaign(self, name: str, brand: dict[str, Any], list_id: str, **overrides) -> dict[str, Any]:
        body = {"name": name, "brand_id": brand["brand_id"], "list_id": list_id, "rate_per_second": POOL_RATE,
                "send_window": ALL_DAY, "creatives": [{"template_id": brand["template_id"]}]}
        body.update(overrides)
        return self.post("/v1/campaigns", body, 201)

    def launch(self, campaign_id: str) -> dict[str, Any]:
        past = (datetime.now().astimezone() - timedelta(minutes=5)).isoformat()
        launched = self.post(f"/v1/campaigns/{campaign_id}/launch", {"start_at": past})
        assert launched["status"] == "scheduled"
        return launched

    def view(self, campaign_id: str) -> dict[str, Any]:
        return self.get(f"/v1/campaigns/{campaign_id}")

    def until_status(self, campaign_id: str, status: str, timeout_s: float = 60) -> dict[str, Any]:
        return wait_for(lambda: (v := self.view(campaign_id))["status"] == status and v, timeout_s=timeout_s,
                        describe=lambda: self.view(campaign_id))

    def until_receipts(self, campaign_id: str, timeout_s: float = 20) -> dict[str, Any]:
        """The campaign once every text the carrier took has its final receipt (none of these
        contacts' carriers leaves a text at `sent`)."""
        def settled():
            view = self.view(campaign_id)
            p = view["progress"]
            return p["delivered"] + p["undelivered"] + p["failed"] == p["attempted"] and view
        return wait_for(settled, timeout_s=timeout_s, describe=lambda: self.view(campaign_id))

    def run(self, campaign_id: str) -> dict[str, Any]:
        self.launch(campaign_id)
        self.until_status(campaign_id, "completed")
        return self.until_receipts(campaign_id)

    def campaign_messages(self, campaign_id: str) -> list[dict[str, Any]]:
        return self.get(f"/v1/campaigns/{campaign_id}/messages?limit=200")["messages"]


def progress_of(view: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: view["progress"][k] for k in keys}


COUNTS = ("total_contacts", "not_yet_released", "done", "percent", "messages", "waiting", "attempted", "sent",
          "delivered", "undelivered", "failed", "unknown", "skipped", "cancelled", "deferred", "segments",
          "lookups", "lookup_cost_micros", "skipped_by_reason", "error_rate_pct", "delivery_rate_pct")


# -- fixtures --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def operator(stack) -> Operator:
    client = Operator(stack)
    yield client
    client.close()


@pytest.fixture(scope="module")
def brand(operator) -> dict[str, Any]:
    """A brand, three long codes raised to 5 messages a second, and a saved template."""
    made = operator.post("/v1/brands", {"name": "Acme Auto", "call_number": "888-555-0123"}, 201)
    assert (made["call_number"], made["call_number_display"], made["default_pool"], made["opt_out_footer"]) == (
        "+18885550123", "(888) 555-0123", "default", FOOTER)
    for number in NUMBERS:
        added = operator.post("/v1/numbers", {"number": number, "brand_id": made["brand_id"], "mps": NUMBER_MPS}, 201)
        assert (added["type"], added["pool"], added["status"], added["mps"]) == ("long_code", "default", "active", 5)
    listed = operator.get(f"/v1/numbers?brand_id={made['brand_id']}&pool=default")["numbers"]
    assert [n["number"] for n in listed] == list(NUMBERS)
    template = operator.post("/v1/templates", {"name": "December offer", "body": TEMPLATE,
                                               "brand_id": made["brand_id"]}, 201)
    assert (template["encoding"], template["segments"], template["variables"]) == (
        "GSM-7", 1, ["first_name", "call_number"])
    return {**made, "template_id": template["template_id"]}


@pytest.fixture(scope="module")
def manhattan(operator) -> dict[str, Any]:
    """The Manhattan list, from a file with one phone repeated (in another format) on line 10
    and a phone with letters in it on line 20."""
    text, names = contacts_csv(MANHATTAN)
    lines = text.split("\r\n")
    lines.insert(9, f"{MANHATTAN[0][2:5]}-{MANHATTAN[0][5:8]}-{MANHATTAN[0][8:]},Ann again,Lee")
    lines.insert(19, "212-555-CALL,Bad,Row")
    imported = operator.imported_list("Manhattan", "\r\n".join(lines))
    return {**imported, "names": names}


@pytest.fixture(scope="module")
def plain_run(operator, brand, manhattan) -> dict[str, Any]:
    """A campaign without phone validation over the Manhattan list, run to the end."""
    made = operator.campaign("December promo", brand, manhattan["list"]["list_id"], validation=NO_VALIDATION)
    preview = operator.get(f"/v1/campaigns/{made['campaign_id']}/preview")
    started = time.monotonic()
    view = operator.run(made["campaign_id"])
    return {"campaign": made, "preview": preview, "view": view, "seconds": time.monotonic() - started,
            "sim": operator.sim_messages(MANHATTAN)}


@pytest.fixture(scope="module")
def validated_run(operator, brand, manhattan, plain_run) -> dict[str, Any]:
    """The same list again, created while the account's settings turn phone validation on (the
    plain campaign ran first: both texting the pool at once would halve each one's pace)."""
    before = operator.get("/v1/settings")
    lookups_before = operator.sim_lookups()
    try:
        changed = operator.patch("/v1/settings", {"validation": {
            "enabled_for_campaigns": True, "min_score": 50, "provider": "activity_score"}})
        assert changed["validation"] == {"enabled_for_campaigns": True, "min_score": 50, "cost_per_lookup": 0.005,
                                         "provider": "activity_score"}
        made = operator.campaign("December promo, validated", brand, manhattan["list"]["list_id"])
    finally:
        operator.patch("/v1/settings", {"validation": before["validation"]})
    view = operator.run(made["campaign_id"])
    lookups_after = operator.sim_lookups()
    return {"campaign": made, "view": view, "sim": operator.sim_messages(MANHATTAN),
            "messages": operator.campaign_messages(made["campaign_id"]),
            "lookups": {k: lookups_after[k] - lookups_before[k] for k in lookups_after}}


# -- imports ---------------------------------------------------------------------------------------
def test_a_presigned_upload_imports_the_list_and_reports_every_row(operator, manhattan):
    started, report = manhattan["started"], manhattan["import"]
    assert started["status"] == "awaiting_upload"
    assert (started["upload"]["method"], started["upload"]["headers"]) == ("PUT", {"Content-Type": "text/csv"})
    assert started["upload"]["url"].startswith(operator.stack["moto_url"])
    assert {k: report[k] for k in ("status", "rows_read", "accepted", "duplicates", "rejected", "rejected_by_reason",
                                   "new_contacts", "already_in_list", "on_dnc", "delimiter")} == {
        "status": "completed", "rows_read": 47, "accepted": 45, "duplicates": 1, "rejected": 1,
        "rejected_by_reason": {"contains letters": 1}, "new_contacts": 45, "already_in_list": 0, "on_dnc": 0,
        "delimiter": "comma"}
    assert report["columns"] == {"Phone Number": "phone", "First Name": "first_name", "Last Name": "last_name"}
    response = operator.http.get(f"/v1/imports/{report['import_id']}/report.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines() == [
        "line,outcome,reason,value",
        "10,duplicate,same phone as line 2,+1212***2000",
        "20,rejected,contains letters,212-555-CALL",
    ]
    list_id = manhattan["list"]["list_id"]
    contact_list = operator.get(f"/v1/contact-lists/{list_id}")
    assert (contact_list["contacts"], contact_list["imports"]) == (45, 1)
    assert [i["import_id"] for i in operator.get(f"/v1/contact-lists/{list_id}/imports")["imports"]] == [
        report["import_id"]]
    page = operator.get(f"/v1/contact-lists/{list_id}/contacts?limit=500")["contacts"]
    assert sorted(c["phone"] for c in page) == MANHATTAN
    assert {c["phone"]: c["first_name"] for c in page} == manhattan["names"]  # the first line of a phone wins


# -- a campaign from launch to the last receipt ----------------------------------------------------
def test_a_campaign_texts_every_contact_once_from_its_sticky_number(plain_run, manhattan):
    sim = plain_run["sim"]
    assert sorted(m["to"] for m in sim) == MANHATTAN  # everyone, exactly once
    senders = {m["to"]: m["from"] for m in sim}
    assert set(senders.values()) == set(NUMBERS)  # spread over the whole pool
    names = manhattan["names"]
    assert {m["to"]: m["body"] for m in sim} == {
        phone: f"Hi {names[phone]}, your December offer is ready. Call (888) 555-0123.\n{FOOTER}"
        for phone in MANHATTAN}
    assert Counter(m["status"] for m in sim) == {"delivered": MANHATTAN_DELIVERED,
                                                 "undelivered": 45 - MANHATTAN_DELIVERED}
    assert plain_run["seconds"] < 45, plain_run["seconds"]


def test_a_completed_campaigns_progress_adds_up(plain_run):
    view = plain_run["view"]
    assert (view["status"], view["validation"]["enabled_for_campaigns"]) == ("completed", False)
    assert "cursor" not in view
    assert parse_time(view["running_at"]) <= parse_time(view["completed_at"])
    assert progress_of(view, *COUNTS) == {
        "total_contacts": 45, "not_yet_released": 0, "done": 45, "percent": 100.0, "messages": 45, "waiting": 0,
        "attempted": 45, "sent": 45, "delivered": MANHATTAN_DELIVERED, "undelivered": 45 - MANHATTAN_DELIVERED,
        "failed": 0, "unknown": 0, "skipped": 0, "cancelled": 0, "deferred": 0, "segments": 45, "lookups": 0,
        "lookup_cost_micros": 0, "skipped_by_reason": {}, "error_rate_pct": 11.11, "delivery_rate_pct": 88.89}
    projected = plain_run["preview"]["projected"]
    assert {k: projected[k] for k in ("messages", "segments", "pool_numbers", "effective_rate_per_second",
                                      "validation_cost")} == {
        "messages": 45, "segments": 45, "pool_numbers": 3, "effective_rate_per_second": POOL_RATE,
        "validation_cost": 0.0}


def test_a_campaigns_cost_counts_the_texts_it_sent(plain_run):
    """45 single-segment texts at the simulator's (and the account's) $0.0079 a segment."""
    progress = plain_run["view"]["progress"]
    assert (progress["segments"], progress["cost"]) == (45, round(45 * 0.0079, 4))


# -- pause and resume ------------------------------------------------------------------------------
def test_pause_stops_texts_at_once_and_resume_texts_each_remaining_contact_once(operator, brand):
    text, _ = contacts_csv(BROOKLYN)
    brooklyn = operator.imported_list("Brooklyn", text)
    assert brooklyn["import"]["accepted"] == len(BROOKLYN)
    # 5 a second: the 30 texts take six seconds, long enough to pause in the middle.
    made = operator.campaign("Brooklyn promo", brand, brooklyn["list"]["list_id"], rate_per_second=5,
                             validation=NO_VALIDATION)
    cid = made["campaign_id"]
    operator.launch(cid)
    wait_for(lambda: len(operator.sim_messages(BROOKLYN)) >= 6, timeout_s=30, interval_s=0.2)
    paused = operator.post(f"/v1/campaigns/{cid}/pause")
    assert (paused["status"], paused["pause_reason"]) == ("paused", "operator")
    paused_at = parse_time(paused["paused_at"])

    # The texts already released reach a worker as their seconds come, and it parks them. Once
    # every text is accounted for, the carrier has exactly the texts the campaign attempted.
    def parked():
        p = operator.view(cid)["progress"]
        return p["messages"] == len(BROOKLYN) and p["attempted"] + p["waiting"] == len(BROOKLYN) and p
    at_pause = wait_for(parked, timeout_s=30, describe=lambda: operator.view(cid))
    sim = operator.sim_messages(BROOKLYN)
    assert len(sim) == at_pause["attempted"]
    assert 6 <= len(sim) < len(BROOKLYN)
    # Only a text a worker had already taken past its checks could still go after the pause.
    assert max(parse_time(m["date_created"]) for m in sim) <= paused_at + timedelta(seconds=1)
    # Two more dispatcher ticks while paused: nothing is released, nothing is sent.
    time.sleep(2 * TICK_SECONDS + 0.5)
    still = operator.view(cid)
    assert (still["status"], len(operator.sim_messages(BROOKLYN))) == ("paused", len(sim))
    assert progress_of(still, "attempted", "waiting") == {"attempted": len(sim), "waiting": len(BROOKLYN) - len(sim)}

    # The rate may change while paused; the rest then goes at the pool's pace.
    assert operator.patch(f"/v1/campaigns/{cid}", {"rate_per_second": POOL_RATE})["rate_per_second"] == POOL_RATE
    resumed = operator.post(f"/v1/campaigns/{cid}/resume")
    assert (resumed["status"], resumed.get("pause_reason")) == ("running", None)
    operator.until_status(cid, "completed")
    view = operator.until_receipts(cid)
    sim = operator.sim_messages(BROOKLYN)
    assert sorted(m["to"] for m in sim) == BROOKLYN  # the rest, and no one twice
    # A parked text keeps the sender it was given.
    given = {m["to_masked"]: m["from_number"] for m in operator.campaign_messages(cid)}
    assert {m["to"][:5] + "***" + m["to"][-4:]: m["from"] for m in sim} == given
    assert progress_of(view, "messages", "attempted", "sent", "delivered", "undelivered", "waiting", "done",
                       "percent") == {
        "messages": 30, "attempted": 30, "sent": 30, "delivered": BROOKLYN_DELIVERED,
        "undelivered": 30 - BROOKLYN_DELIVERED, "waiting": 0, "done": 30, "percent": 100.0}


def test_a_text_the_carrier_could_not_take_is_retried_not_cancelled_when_it_was_the_last(operator, brand):
    """A 5xx means nothing was sent, and the worker queues the text again after a backoff. If it
    is the campaign's last text, the campaign must wait for it rather than finish without it."""
    text, _ = contacts_csv(LAST_ONE)
    last = operator.imported_list("Last one", text)
    made = operator.campaign("Last one", brand, last["list"]["list_id"], validation=NO_VALIDATION)
    cid = made["campaign_id"]
    errors_before = operator.sim_stats()["server_errors"]
    operator.sim_config({"error_5xx_rate": 1.0})
    try:
        operator.launch(cid)
        wait_for(lambda: operator.sim_stats()["server_errors"] > errors_before, timeout_s=30, interval_s=0.2)
    finally:
        operator.sim_config({"error_5xx_rate": 0.0})
    # The retry comes 5 to 8 seconds later and goes through.
    wait_for(lambda: all(m["status"] not in ("queued", "sending") for m in operator.campaign_messages(cid))
             and operator.view(cid)["status"] == "completed", timeout_s=30)
    view = operator.until_receipts(cid)
    texted = [m["to"] for m in operator.sim_messages(LAST_ONE)]
    outcome = [(m["status"], m.get("skip_reason")) for m in operator.campaign_messages(cid)]
    assert (texted, outcome, progress_of(view, "attempted", "delivered", "cancelled")) == (
        LAST_ONE, [("delivered", None)], {"attempted": 1, "delivered": 1, "cancelled": 0})


# -- phone validation -------------------------------------------------------------------------------
def test_validation_skips_low_scores_and_landlines_and_raises_the_delivery_rate(validated_run, plain_run):
    view = validated_run["view"]
    assert view["validation"] == {"enabled_for_campaigns": True, "min_score": 50, "cost_per_lookup": 0.005,
                                  "provider": "activity_score"}
    skipped, sent = len(LOW_SCORES) + len(LANDLINES), 45 - len(LOW_SCORES) - len(LANDLINES)
    assert progress_of(view, *COUNTS) == {
        "total_contacts": 45, "not_yet_released": 0, "done": 45, "percent": 100.0, "messages": 45, "waiting": 0,
        "attempted": sent, "sent": sent, "delivered": sent, "undelivered": 0, "failed": 0, "unknown": 0,
        "skipped": skipped, "cancelled": 0, "deferred": 0, "segments": sent, "lookups": 45,
        "lookup_cost_micros": 225_000, "skipped_by_reason": {"low_activity_score": 5, "landline": 4},
        "error_rate_pct": 0.0, "delivery_rate_pct": 100.0}
    assert view["progress"]["delivery_rate_pct"] > plain_run["view"]["progress"]["delivery_rate_pct"]
    # Each contact was looked up once, with the activity-score provider, and the lookups cost.
    assert validated_run["lookups"] == {"phone_intel": 45, "lookup_v2": 0}
    progress = view["progress"]
    assert progress["cost"] == round((progress["cost_micros"] + 225_000) / 1_000_000, 4)
    # The carrier texted each contact the screen let through once more, from the same number.
    first = {m["to"]: m["from"] for m in plain_run["sim"]}
    again = [m for m in validated_run["sim"] if m["sid"] not in {p["sid"] for p in plain_run["sim"]}]
    assert sorted(m["to"] for m in again) == sorted(set(MANHATTAN) - LOW_SCORES - LANDLINES)
    assert all(m["status"] == "delivered" and m["from"] == first[m["to"]] for m in again)
    masked = {phone[:5] + "***" + phone[-4:]: phone for phone in MANHATTAN}
    reasons = {masked[m["to_masked"]]: m["skip_reason"] for m in validated_run["messages"] if m["status"] == "skipped"}
    assert reasons == {**dict.fromkeys(LOW_SCORES, "low_activity_score"), **dict.fromkeys(LANDLINES, "landline")}


def test_validation_with_twilio_lookup_screens_by_line_type_and_status(operator, brand):
    text, _ = contacts_csv(QUEENS)
    queens = operator.imported_list("Queens", text)
    lookups_before = operator.sim_lookups()
    made = operator.campaign("Queens promo", brand, queens["list"]["list_id"], validation={
        "enabled_for_campaigns": True, "min_score": 50, "provider": "twilio_lookup"})
    assert made["validation"]["provider"] == "twilio_lookup"
    view = operator.run(made["campaign_id"])
    lookups_after = operator.sim_lookups()
    assert {k: lookups_after[k] - lookups_before[k] for k in lookups_after} == {"phone_intel": 0, "lookup_v2": 20}
    assert progress_of(view, "messages", "attempted", "delivered", "skipped", "skipped_by_reason", "lookups",
                       "lookup_cost_micros", "cost", "delivery_rate_pct") == {
        "messages": 20, "attempted": 17, "delivered": 17, "skipped": 3,
        "skipped_by_reason": {"low_activity_score": 2, "landline": 1}, "lookups": 20, "lookup_cost_micros": 100_000,
        "cost": round((view["progress"]["cost_micros"] + 100_000) / 1_000_000, 4), "delivery_rate_pct": 100.0}
    assert sorted(m["to"] for m in operator.sim_messages(QUEENS)) == sorted(
        set(QUEENS) - {"+16465552009", "+16465552012", "+16465552013"})


# -- legacy routes ----------------------------------------------------------------------------------
def test_legacy_routes_show_campaigns_to_integrators(operator, plain_run):
    cid = plain_run["campaign"]["campaign_id"]
    key = operator.stack["api_key"]
    api = operator.stack["api_url"]
    listed = httpx.get(f"{api}/api.php", params={"action": "ext_campaigns", "api_key": key}, timeout=15)
    body = ok(listed)
    assert body["success"] is True
    assert listed.headers["X-RateLimit-Limit"] == "300"
    mine = next(c for c in body["campaigns"] if c["campaign_id"] == cid)
    expected = operator.view(cid)
    assert mine == expected
    assert "cursor" not in listed.text
    status = ok(httpx.get(f"{api}/api.php", params={"action": "ext_campaign_status", "campaign_id": cid,
                                                    "api_key": key}, timeout=15))
    assert status == {"success": True, **expected}
    missing = httpx.get(f"{api}/api.php", params={"action": "ext_campaign_status", "api_key": key}, timeout=15)
    assert (missing.status_code, missing.json()["errors"]) == (400, [{"field": "campaign_id", "reason": "is required"}])
    unknown = httpx.get(f"{api}/api.php", params={"action": "ext_campaign_status", "campaign_id": "cm_nope",
                                                  "api_key": key}, timeout=15)
    assert (unknown.status_code, unknown.json()["errors"]) == (
        404, [{"field": "campaign_id", "reason": "no campaign with this id"}])
    anonymous = httpx.get(f"{api}/api.php", params={"action": "ext_campaigns"}, timeout=15)
    assert anonymous.status_code == 401
