"""The `make demo` report: counts, nearest-rank percentiles and the two invariant checks."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from scripts.demo import (
    RowResult,
    lead_settled,
    nearest_rank,
    rejection_reason,
    render_table,
    retry_after_seconds,
    summarise,
)

T0 = datetime(2025, 3, 1, 15, 0, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    moment = T0 + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def message(step: int, status: str, *, sent: float | None = None,
            delivered: float | None = None, error_code: int | None = None,
            error_message: str | None = None) -> dict:
    return {
        "message_id": f"m{step}",
        "step": step,
        "body": "...",
        "status": status,
        "provider_sid": "SM0123" if sent is not None else None,
        "error_code": error_code,
        "error_message": error_message,
        "segments": 1,
        "price": None,
        "due_at": at(60 * step),
        "queued_at": None,
        "sent_at": at(sent) if sent is not None else None,
        "delivered_at": at(delivered) if delivered is not None else None,
        "failed_at": None,
        "updated_at": at(0),
    }


def lead(lead_id: str, *messages: dict) -> dict:
    return {"lead_id": lead_id, "flow_id": "f1", "phone": "+12125550142", "first_name": "Zoë",
            "last_name": "O'Brien", "source": "demo", "custom_fields": {},
            "created_at": at(0), "messages": list(messages)}


@pytest.fixture
def rows() -> list[RowResult]:
    return [
        RowResult.accepted(1, "L1", T0, drips_queued=2),
        RowResult.accepted(2, "L2", T0, drips_queued=2, throttled=1),
        RowResult.rejected(3, 422, "phone: is blank"),
        RowResult.accepted(4, "L1", T0 + timedelta(seconds=30), duplicate=True, drips_queued=2),
        RowResult.rejected(5, 422, "phone: contains letters", throttled=2),
        RowResult.rejected(6, 422, "phone: is blank"),
        RowResult.accepted(7, "L3", T0, drips_queued=2),
        RowResult.accepted(8, "L4", T0, drips_queued=2),
        RowResult.rejected(9, 422, "phone: digits lost to Excel scientific notation"),
    ]


@pytest.fixture
def leads() -> dict[str, dict]:
    return {
        "L1": lead("L1",
                   message(0, "delivered", sent=1.0, delivered=3.0),
                   message(1, "delivered", sent=61.0, delivered=62.0),
                   message(2, "delivered", sent=121.0, delivered=122.5)),
        "L2": lead("L2",
                   message(0, "undelivered", sent=2.0, error_code=30003),
                   message(1, "undelivered", sent=62.0, error_code=30003),
                   message(2, "cancelled", error_message="opted out")),
        "L3": lead("L3",
                   message(0, "delivered", sent=4.0, delivered=10.0),
                   message(1, "skipped", error_message="dnc"),
                   message(2, "cancelled", error_message="dnc")),
        "L4": lead("L4",
                   message(0, "failed", error_code=21211),
                   message(1, "cancelled", error_message="opted out"),
                   message(2, "cancelled", error_message="opted out")),
    }


def test_counts_rows_accepted_duplicates_and_rejections_by_reason(rows, leads):
    # Given nine rows: five accepted (one a duplicate of L1) and four rejected
    summary = summarise(rows, leads)

    # Then every row is accounted for, and rejections are grouped by their reason
    assert (summary.rows, summary.accepted, summary.rejected) == (9, 5, 4)
    assert (summary.new_leads, summary.duplicates, summary.unanswered) == (4, 1, 0)
    assert summary.rejected_by_reason == {
        "phone: is blank": 2,
        "phone: contains letters": 1,
        "phone: digits lost to Excel scientific notation": 1,
    }
    assert summary.rejected_rows_by_reason == {
        "phone: is blank": [3, 6],
        "phone: contains letters": [5],
        "phone: digits lost to Excel scientific notation": [9],
    }
    assert summary.throttled == 3


def test_counts_messages_per_step_and_by_outcome(rows, leads):
    summary = summarise(rows, leads)

    assert summary.steps == [0, 1, 2]
    assert summary.expected_by_step == {0: 4, 1: 4, 2: 4}
    assert summary.sent_by_step == {0: 3, 1: 2, 2: 1}
    assert summary.status_by_step[0] == {"delivered": 2, "undelivered": 1, "failed": 1}
    assert summary.status_by_step[1] == {"delivered": 1, "undelivered": 1, "skipped": 1,
                                         "cancelled": 1}
    assert summary.status_by_step[2] == {"delivered": 1, "cancelled": 3}
    assert summary.errors_by_code == {("failed", "21211"): 1, ("undelivered", "30003"): 2}
    assert summary.skipped_by_reason == {
        ("cancelled", "dnc"): 1,
        ("cancelled", "opted out"): 3,
        ("skipped", "dnc"): 1,
    }
    # The duplicate row's drips_queued is not counted again.
    assert summary.drips_queued == 8
    assert summary.drips_sent == 3


def test_latency_is_nearest_rank_over_initial_messages_from_the_creating_submission(rows, leads):
    summary = summarise(rows, leads)

    # submit -> sent: 1.0, 2.0, 4.0 s (L4 never sent); the duplicate's later submit is ignored
    assert (summary.submit_to_sent.n, summary.submit_to_sent.p50,
            summary.submit_to_sent.p95) == (3, 2.0, 4.0)
    # submit -> delivered: 3.0, 10.0 s
    assert (summary.submit_to_delivered.n, summary.submit_to_delivered.p50,
            summary.submit_to_delivered.p95) == (2, 3.0, 10.0)


@pytest.mark.parametrize(
    ("values", "percentile", "expected"),
    [
        (list(range(1, 21)), 50, 10),  # ceil(0.50 * 20) = 10th value
        (list(range(1, 21)), 95, 19),  # ceil(0.95 * 20) = 19th value
        ([20, 1, 7, 3], 50, 3),  # sorted 1 3 7 20; ceil(2.0) = 2nd
        ([20, 1, 7, 3], 95, 20),  # ceil(3.8) = 4th
        ([5.5], 50, 5.5),
        ([5.5], 95, 5.5),
        (list(range(1, 101)), 95, 95),
        ([], 50, None),
    ],
)
def test_nearest_rank_percentile(values, percentile, expected):
    assert nearest_rank(values, percentile) == expected


def test_both_invariants_pass_when_every_row_and_message_is_accounted_for(rows, leads):
    summary = summarise(rows, leads)

    assert summary.leads_without_outcome == []
    assert [(c.name, c.passed) for c in summary.checks] == [
        ("accepted + rejected == rows", True),
        ("every accepted lead has a recorded outcome for each message", True),
    ]
    assert summary.ok


@pytest.mark.parametrize("still", ["scheduled", "queued", "sending"])
def test_outcome_check_fails_for_a_message_without_an_outcome(rows, leads, still):
    # Given L3's last drip never left the pipeline
    leads = copy.deepcopy(leads)
    leads["L3"]["messages"][2]["status"] = still

    summary = summarise(rows, leads)

    assert summary.leads_without_outcome == ["L3"]
    assert not summary.checks[1].passed
    assert summary.checks[1].detail == "1 of 4 leads lack one: L3"
    assert summary.checks[0].passed
    assert not summary.ok


def test_outcome_check_fails_for_a_queued_drip_that_never_appeared(rows, leads):
    leads = copy.deepcopy(leads)
    del leads["L2"]["messages"][2]

    summary = summarise(rows, leads)

    assert summary.leads_without_outcome == ["L2"]
    assert summary.status_by_step[2] == {"delivered": 1, "cancelled": 2, "missing": 1}
    assert not summary.ok


def test_outcome_check_fails_for_a_lead_that_could_not_be_read(rows, leads):
    leads = dict(leads, L4=None)

    summary = summarise(rows, leads)

    assert summary.leads_without_outcome == ["L4"]
    assert summary.status_by_step[0]["missing"] == 1
    assert not summary.ok


def test_a_message_sent_but_awaiting_its_receipt_is_an_outcome(rows, leads):
    leads = copy.deepcopy(leads)
    leads["L1"]["messages"][2].update(status="sent", delivered_at=None)

    summary = summarise(rows, leads)

    assert summary.leads_without_outcome == []
    assert summary.ok


def test_row_count_check_fails_when_a_row_got_no_answer(rows, leads):
    rows = rows + [RowResult.unanswered(10, "HTTP 503", status_code=503)]

    summary = summarise(rows, leads)

    assert (summary.rows, summary.accepted, summary.rejected, summary.unanswered) == (10, 5, 4, 1)
    assert not summary.checks[0].passed
    assert summary.checks[0].detail == "5 + 4 = 9, rows = 10 (1 rows got no answer)"
    assert summary.checks[1].passed


def test_a_lead_withdrawn_at_submission_counts_every_recorded_step(rows, leads):
    # Given L4 was on the DNC list: no drips queued, yet all three steps are recorded
    rows = [r if r.lead_id != "L4" else RowResult.accepted(8, "L4", T0) for r in rows]
    leads = copy.deepcopy(leads)
    for msg in leads["L4"]["messages"]:
        msg.update(status="skipped" if msg["step"] == 0 else "cancelled", error_code=None,
                   error_message=None, skip_reason="dnc")

    summary = summarise(rows, leads)

    assert summary.expected_by_step == {0: 4, 1: 4, 2: 4}
    assert summary.drips_queued == 6
    assert summary.skipped_by_reason[("skipped", "dnc")] == 2
    assert summary.skipped_by_reason[("cancelled", "dnc")] == 3
    assert summary.ok


def test_one_based_steps_line_up_with_the_initial_message(rows, leads):
    leads = copy.deepcopy(leads)
    for item in leads.values():
        for msg in item["messages"]:
            msg["step"] += 1

    summary = summarise(rows, leads)

    assert summary.steps == [0, 1, 2]
    assert summary.submit_to_sent.p50 == 2.0
    assert summary.ok


def row(*cells: object) -> re.Pattern[str]:
    """A table line holding exactly these cells, in order, separated by alignment spaces."""
    return re.compile(r"^ *" + r" +".join(re.escape(str(c)) for c in cells) + r"$", re.MULTILINE)


def test_render_table_shows_every_figure_aligned(rows, leads):
    table = render_table(summarise(rows, leads))

    for cells in [
        ("Rows", 9),
        ("Accepted", 5),
        ("new leads", 4),
        ("duplicates (existing lead returned)", 1),
        ("Rejected", 4),
        ("phone: is blank", 2, "(rows 3, 6)"),
        ("phone: contains letters", 1, "(row 5)"),
        ("phone: digits lost to Excel scientific notation", 1, "(row 9)"),
        ("429 answers honoured", 3),
        ("Messages", "initial", "drip 1", "drip 2", "total"),
        ("expected", 4, 4, 4, 12),
        ("sent", 3, 2, 1, 6),
        ("delivered", 2, 1, 1, 4),
        ("undelivered", 1, 1, 0, 2),
        ("failed", 1, 0, 0, 1),
        ("skipped", 0, 1, 0, 1),
        ("cancelled", 0, 1, 3, 4),
        ("failed 21211", 1),
        ("undelivered 30003", 2),
        ("cancelled: opted out", 3),
        ("skipped: dnc", 1),
        ("Drips queued", 8),
        ("Drips sent", 3),
        ("Initial message, seconds from submit", "p50", "p95", "n"),
        ("to sent", "2.00", "4.00", 3),
        ("to delivered", "3.00", "10.00", 2),
    ]:
        assert row(*cells).search(table), cells
    assert "PASS  accepted + rejected == rows: 5 + 4 = 9, rows = 9" in table
    assert ("PASS  every accepted lead has a recorded outcome for each message: "
            "4 leads, 12 messages") in table
    assert "FAIL" not in table
    assert "unknown" not in table  # rows for statuses nobody reached are left out

    # The per-step columns line up: every "total" figure ends in the same column.
    grid = [ln for ln in table.splitlines() if ln.startswith(("Messages", "  expected",
                                                              "  sent", "  delivered"))]
    assert len({len(ln) for ln in grid}) == 1


def test_render_table_names_at_most_six_rows_per_rejection_reason():
    rows = [RowResult.rejected(n, 422, "phone: is blank") for n in range(10, 18)]

    table = render_table(summarise(rows, {}))

    assert row("phone: is blank", 8, "(rows 10, 11, 12, 13, 14, 15, ...)").search(table)


def test_render_table_reports_a_failed_invariant(rows, leads):
    leads = copy.deepcopy(leads)
    leads["L1"]["messages"][1]["status"] = "queued"

    table = render_table(summarise(rows, leads))

    assert "FAIL  every accepted lead has a recorded outcome for each message: " \
           "1 of 4 leads lack one: L1" in table
    assert row("no outcome yet", 0, 1, 0, 1).search(table)


def test_render_table_with_no_accepted_leads():
    summary = summarise([RowResult.rejected(1, 422, "phone: is blank")], {})

    table = render_table(summary)

    assert row("to sent", "-", "-", 0).search(table)
    assert "PASS  accepted + rejected == rows: 0 + 1 = 1, rows = 1" in table


def test_lead_settles_only_when_every_expected_message_is_final(leads):
    assert lead_settled(leads["L2"], 3)
    assert not lead_settled(leads["L2"], 4)  # a queued drip not yet visible
    awaiting = copy.deepcopy(leads["L1"])
    awaiting["messages"][0]["status"] = "sent"
    awaiting["messages"][0]["sent_at"] = "2026-12-03T10:00:00.000Z"
    assert not lead_settled(awaiting, 3, now=datetime(2026, 12, 3, 10, 1, tzinfo=UTC))
    # a receipt that has not come in two minutes is not coming: the send is its outcome
    assert lead_settled(awaiting, 3, now=datetime(2026, 12, 3, 10, 2, 1, tzinfo=UTC))
    assert not lead_settled(None, 1)


def test_rejection_reason_names_the_field_from_the_error_body():
    response = httpx.Response(422, json={
        "success": False, "error": "phone: contains letters",
        "errors": [{"field": "phone", "reason": "contains letters"}],
    })
    assert rejection_reason(response) == "phone: contains letters"
    assert rejection_reason(httpx.Response(404, json={"error": "flow_id: unknown flow"})) == \
        "flow_id: unknown flow"
    assert rejection_reason(httpx.Response(400, text="bad")) == "HTTP 400"


def test_retry_after_reads_seconds_and_falls_back():
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "17"})) == 17.0
    assert retry_after_seconds(httpx.Response(429)) == 1.0
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "soon"})) == 1.0
