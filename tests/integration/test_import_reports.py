"""Each real-world contacts file, imported the way operators do it, against its expected
report: the summary counts and every line of the downloadable report, exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import OPERATOR

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "contacts"
CASES = sorted(p.name for p in FIXTURES.iterdir()
               if p.is_file() and not p.name.endswith(".report.json") and not p.name.startswith("."))
SUMMARY = ("status", "error", "rows_read", "accepted", "duplicates", "rejected", "rejected_by_reason", "new_contacts",
           "encoding", "delimiter", "columns")


def import_fixture(fns, name: str) -> dict:
    created = fns.http("POST", "/v1/contact-lists", headers=OPERATOR, json_body={"name": name})
    list_id = created.body["list_id"]
    started = fns.http("POST", f"/v1/contact-lists/{list_id}/imports", headers=OPERATOR)
    from sendline import runtime

    runtime.uploads().put(f"imports/{started.body['import_id']}/contacts.csv", (FIXTURES / name).read_bytes(),
                          "text/csv")
    fns.drain_imports()
    record = fns.http("GET", f"/v1/imports/{started.body['import_id']}", headers=OPERATOR).body
    summary = {k: record.get(k) for k in SUMMARY if record.get(k) is not None}
    report = fns.http("GET", f"/v1/imports/{started.body['import_id']}/report.csv", headers=OPERATOR)
    assert report.status == 200, report.body  # a failed import's report too: it says why
    lines = report.body.splitlines()
    contacts = fns.http("GET", f"/v1/contact-lists/{list_id}/contacts?limit=500", headers=OPERATOR).body["contacts"]
    return {"summary": summary, "report": lines,
            "contacts": [[c["phone"], c.get("first_name"), c.get("last_name"), c.get("fields")] for c in contacts]}


@pytest.mark.parametrize("name", CASES)
def test_each_file_gives_its_expected_report(fns, name):
    expected = json.loads((FIXTURES / f"{name}.report.json").read_text())
    assert import_fixture(fns, name) == expected


def test_a_message_no_import_can_come_of_is_a_failed_record_not_a_function_error(fns):
    # Given a message on the imports queue that names no upload (a poison message)
    from devstack.pollers import sqs_event

    queue = fns.queues["imports"]
    message = {"MessageId": "poison-1", "ReceiptHandle": "rh-1", "Body": '{"not": "an S3 event"}',
               "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764849600000"},
               "MessageAttributes": {}, "MD5OfBody": "0" * 32}

    # When the import function gets it
    response = fns.handler("contacts_import")(sqs_event([message], queue.arn), fns.context("contacts_import"))

    # Then it answers that record failed (SQS retries it, then dead-letters it) instead of raising
    assert response == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}
