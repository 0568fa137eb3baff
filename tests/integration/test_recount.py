"""The recount agrees exactly with the counters the send and status paths keep, after a
seeded run with receipts that come late, twice and out of order; a counter changed outside the
code shows as a difference, and a rebuild puts it right."""

from __future__ import annotations

import pytest

from sendline import runtime
from sendline.services.recount import differences, rebuild, recount, stored
from tests.integration.seeded_run import seeded_run


@pytest.mark.parametrize("seed", [7, 2026])
def test_the_recount_agrees_with_the_kept_counters_after_a_random_run(fns, monkeypatch, seed):
    # Given a randomized run
    run = seeded_run(fns, monkeypatch, seed=seed, hours=12, leads_per_hour=4, contacts=60, quick_sends=4)
    records = runtime.records()

    # When the counters are worked out again from the records
    recounted, kept = recount(records), stored(records)

    # Then they agree exactly, in every scope and bucket, and the run counted something in each kind
    assert differences(recounted, kept) == []
    total = kept[("ALL", "TOTAL")]
    assert total["attempted"] == run.texts_attempted
    assert {k for k in total if k in ("sent", "delivered", "undelivered", "failed", "unknown", "skipped",
                                       "replies", "opt_outs", "revenue_micros", "fee_micros")} == {
        "sent", "delivered", "undelivered", "failed", "unknown", "skipped", "replies", "opt_outs",
        "revenue_micros", "fee_micros"}
    scopes = {scope.split("#")[0] for scope, _ in kept}
    assert scopes == {"ALL", "BRAND", "CAMP", "FLOW", "NUM", "CARRIER", "CREATIVE"}
    assert any(name.startswith("e|") for name in total) and any(name.startswith("c|") for name in total)


def test_a_counter_changed_outside_the_code_is_found_and_a_rebuild_puts_it_right(fns, monkeypatch):
    seeded_run(fns, monkeypatch, seed=3, hours=4, leads_per_hour=3, contacts=20, quick_sends=1)
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

    seeded_run(fns, monkeypatch, seed=5, hours=2, leads_per_hour=3, contacts=10, quick_sends=1)
    no_stack = ["--state-dir", str(tmp_path)]
    assert main(no_stack) == 0
    assert "0 differences" in capsys.readouterr().out
    runtime.records().store.update("CTR#ALL#2", "TOTAL", add={"delivered": 1})
    assert main(no_stack) == 1
    out = capsys.readouterr().out
    assert "1 differences" in out and "  ALL TOTAL delivered: kept " in out
    assert main([*no_stack, "--rebuild"]) == 0
    assert main(no_stack) == 0
