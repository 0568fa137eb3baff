"""The recount agrees exactly with the counters the send and status paths keep, after the
THOUSANDS seeded run, whose receipts came late, twice and out of order; a counter changed
outside the code shows as a difference, and a rebuild puts it right."""

from __future__ import annotations

import pytest

from sendline import runtime
from sendline.services.recount import differences, rebuild, recount, stored
from tests.integration.seeded_run import Scale, Snapshot, restore, seeded_run, thousands

# A few hours of everything the run does, for the tests that change counters.
FEW_HOURS = Scale(hours=4, leads_per_hour=3, contacts=20, quick_sends=1)
TWO_HOURS = Scale(hours=2, leads_per_hour=3, contacts=10, quick_sends=1)


@pytest.fixture(scope="module")
def seeded() -> Snapshot:
    return thousands()  # made before any test's account: it makes the run in an account of its own


def test_the_recount_agrees_with_the_kept_counters_after_thousands_of_texts(fns, monkeypatch, seeded):
    # Given the run, whose carrier repeated receipts, sent `sent` after the final status and
    # posted receipts hours late, and retried inbound webhooks
    run = restore(fns, monkeypatch, seeded)
    assert run.texts_attempted >= 2_000
    assert run.receipts_repeated >= 200 and run.receipts_out_of_order >= 150 and run.receipts_late >= 500
    assert run.inbound_repeated >= 10
    records = runtime.records()

    # When the counters are worked out again from the records
    recounted, kept = recount(records), stored(records)

    # Then they agree exactly, in every scope and bucket, and the run counted something of each kind
    assert differences(recounted, kept) == []
    total = kept[("ALL", "TOTAL")]
    assert total["attempted"] == run.texts_attempted
    assert {"sent", "delivered", "undelivered", "failed", "unknown", "skipped", "cancelled", "drips_sent", "replies",
            "opt_outs", "segments", "cost_micros", "revenue_micros", "fee_micros", "inbound"} <= set(total)
    assert sorted(name for name in total if name.startswith("e|")) == [
        "e|21211", "e|21610", "e|21614", "e|30003", "e|30005", "e|30006", "e|30007", "e|30008"]
    assert sorted(name.split("|")[1] for name in total if name.startswith("c|") and name.endswith("|sent")) == [
        "AT&T Wireless", "T-Mobile USA, Inc.", "US Cellular", "Verizon Wireless", "unknown"]
    assert {scope.split("#")[0] for scope, _ in kept} == {"ALL", "BRAND", "CAMP", "FLOW", "NUM", "CARRIER", "CREATIVE"}
    assert len({scope for scope, _ in kept}) == 1 + 3 + 3 + 3 + 7 + 5 + 6
    # ...hour by hour: 47 hours had texts attempted
    assert sum(1 for scope, bucket in kept if scope == "ALL" and bucket.startswith("H#")) >= 47


def test_a_counter_changed_outside_the_code_is_found_and_a_rebuild_puts_it_right(fns, monkeypatch):
    seeded_run(fns, monkeypatch, seed=3, scale=FEW_HOURS)
    records = runtime.records()
    sent_before = stored(records)[("ALL", "TOTAL")]["sent"]
    records.store.update("CTR#ALL#5", "TOTAL", add={"sent": 2, "leads": 1})

    found = differences(recount(records), stored(records))

    assert [(d.scope, d.bucket, d.counter, d.stored, d.recounted) for d in found] == [
        ("ALL", "TOTAL", "sent", sent_before + 2, sent_before)]
    rebuild(records, recount(records))
    assert differences(recount(records), stored(records)) == []
    assert records.counters([("ALL", "TOTAL")])[("ALL", "TOTAL")]["sent"] == sent_before


def test_the_recount_command_reports_differences_and_rebuilds(fns, monkeypatch, tmp_path, capsys):
    from scripts.recount import main

    seeded_run(fns, monkeypatch, seed=5, scale=TWO_HOURS)
    no_stack = ["--state-dir", str(tmp_path)]
    assert main(no_stack) == 0
    assert "0 differences" in capsys.readouterr().out
    runtime.records().store.update("CTR#ALL#2", "TOTAL", add={"delivered": 1})
    assert main(no_stack) == 1
    out = capsys.readouterr().out
    assert "1 differences" in out and "  ALL TOTAL delivered: kept " in out
    assert main([*no_stack, "--rebuild"]) == 0
    assert main(no_stack) == 0
