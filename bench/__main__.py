"""`python -m bench`: runs the benchmarks, prints their tables, writes bench/results.json."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import REPO_ROOT, RESULTS_FILE
from bench.table import render

BENCHMARKS = ("aws", "cold", "pipeline", "campaign", "import", "reports")
# Measured on 2 cores: the local stack sends a little over 5 campaign texts a second at a 6/s rate
# (its HTTP functions take turns and every text brings two status callbacks), so the 10,000
# contacts take about half an hour; docs/performance.md, section 4.
CAMPAIGN_CONTACTS = 10_000
CAMPAIGN_RATE = 6.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", choices=BENCHMARKS, action="append",
                        help="run only this benchmark (repeatable); the others keep their last results")
    parser.add_argument("--leads", type=int, default=50, help="leads through the handlers against moto")
    parser.add_argument("--runs", type=int, default=3, help="imports per function and variant")
    parser.add_argument("--pipeline-leads", type=int, default=200, help="leads posted to the local stack")
    parser.add_argument("--concurrency", type=int, default=10, help="requests in flight against the local stack")
    parser.add_argument("--campaign-contacts", type=int, default=CAMPAIGN_CONTACTS,
                        help="contacts the local campaign texts (10,000 take about half an hour at 6/s)")
    parser.add_argument("--campaign-rate", type=float, default=CAMPAIGN_RATE,
                        help="the campaign's rate_per_second")
    parser.add_argument("--campaign-numbers", type=int, default=10, help="sending numbers in the campaign's pool")
    parser.add_argument("--campaign-number-mps", type=float, default=2.0, help="each sending number's MPS")
    parser.add_argument("--campaign-tick-seconds", type=float, default=5, help="the local stack's schedule period")
    parser.add_argument("--campaign-variant-seconds", type=float, default=45,
                        help="how long the binding-number campaign runs before it is cancelled (0: skip it)")
    parser.add_argument("--campaign-aws-contacts", type=int, default=300,
                        help="contacts through the campaign handlers against in-process moto (request counts)")
    parser.add_argument("--import-rows", type=int, default=1_000_000, help="rows the contacts reader reads")
    parser.add_argument("--import-handler-rows", type=int, default=50_000,
                        help="rows imported through contacts_import against in-process moto")
    parser.add_argument("--reports-messages", type=int, default=100_000,
                        help="texts behind the reports (they are also measured after a tenth of them)")
    parser.add_argument("--out", type=Path, default=RESULTS_FILE)
    return parser.parse_args(argv)


# -- tables ---------------------------------------------------------------------------------------
def aws_tables(result: dict[str, Any]) -> str:
    from bench.aws_calls import PHASES
    from bench.pricing import LAMBDA_ARM_USD_PER_GB_S, PRICES_DATE, USD_PER_MILLION

    leads, messages = result["leads"], result["messages_sent"]
    short = {"drip tick": "tick", "drip send": "drip send", "drip receipt": "drip rcpt"}
    operations = render(
        f"1. AWS requests per lead and per message ({leads} leads, {result['drips_per_lead']} drips each, "
        f"{messages} messages sent, {result['receipts_posted']} receipts)",
        ["operation", "per lead", "per msg", *(short.get(p, p) for p in PHASES)],
        [[label, row["per_lead"], row["per_message"], *(row.get(p, 0) for p in PHASES)]
         for label, row in result["operations"].items()],
        note="Phase columns are totals for the run. 'event source' calls are the SQS event source mapping's\n"
             "(one ReceiveMessage per batch of up to 10, one DeleteMessageBatch), made by the harness.")
    phase_rows = []
    for name in PHASES:
        p = result["phases"][name]
        phase_rows.append([name, p["dynamodb_calls"], p["sqs_calls_app"] + p["sqs_calls_event_source"],
                           p["transactions"], p["transact_items"], p["wru_table"], p["wru_index"], p["rru"],
                           p["lambda_invocations"], p["http_api_requests"]])
    m = result["per_message"]
    phase_rows.append(["per message", m["dynamodb_calls"], m["sqs_calls_app"] + m["sqs_calls_event_source"],
                       None, m["transact_items"], m["wru_table"], m["wru_index"], m["rru"],
                       m["lambda_invocations"], m["http_api_requests"]])
    sizes = "; ".join(f"{phase}: " + ", ".join(f"{n}x{items}" for items, n in counts.items())
                      for phase, counts in result["transaction_sizes"].items())
    phases = render(
        "1b. By phase: calls and DynamoDB request units",
        ["phase", "DDB calls", "SQS calls", "txns", "txn items", "WRU table", "WRU index", "RRU", "Lambda", "HTTP"],
        phase_rows, digits=1,
        note=f"Transactions (count x items): {sizes}.\n"
             f"WRU table: 2 per item of a TransactWriteItems, 1 per standard write (items <= 1 KB; largest item seen "
             f"{result['largest_item_bytes']} bytes).\nWRU index: writes to the GSIs (gsi1 and due hold whole items, log only keys), by index per "
             f"message: " + ", ".join(f"{k} {v:.2f}" for k, v in result["wru_index_by_index_per_message"].items())
             + ".\nRRU: 1 per 4 KB strongly consistent, 0.5 eventually consistent; a miss costs the minimum.")
    cost = result["cost_per_1000_messages_usd"]
    units = {
        "DynamoDB writes": (m["wru_table"] + m["wru_index"], "WRU", USD_PER_MILLION["dynamodb_write_request_unit"]),
        "DynamoDB reads": (m["rru"], "RRU", USD_PER_MILLION["dynamodb_read_request_unit"]),
        "SQS requests": (m["sqs_calls_app"] + m["sqs_calls_event_source"], "requests", USD_PER_MILLION["sqs_request"]),
        "Lambda requests": (m["lambda_invocations"], "invocations", USD_PER_MILLION["lambda_request"]),
        "API Gateway requests": (m["http_api_requests"], "requests", USD_PER_MILLION["http_api_request"]),
    }
    cost_rows = [[name, f"{per_msg:.2f}", unit, f"${price:g}", f"${cost[name]:.4f}",
                  f"{100 * cost[name] / cost['total']:.1f}%"]
                 for name, (per_msg, unit, price) in units.items()]
    cost_rows.append(["total", "", "", "", f"${cost['total']:.4f}", "100%"])
    costs = render(
        f"1c. Estimated AWS cost per 1,000 messages (us-east-1 on-demand list prices as of {PRICES_DATE})",
        ["item", "per message", "unit", "$ per million", "$ per 1,000 msgs", "share"],
        cost_rows, right=(1, 3, 4, 5),
        note=f"Not included: Lambda duration (each 100 ms billed per invocation, at each function's memory, adds "
             f"${result['lambda_compute_per_100ms_billed_per_1000_messages_usd']:.4f} per 1,000 messages at "
             f"${LAMBDA_ARM_USD_PER_GB_S:.10f}/GB-s, Arm),\nthe scheduler's idle ticks, storage, Secrets Manager, "
             f"CloudWatch, data transfer, free tiers, and the carrier's own price.")
    return "\n\n".join([operations, phases, costs])


def cold_table(result: dict[str, Any]) -> str:
    rows = []
    for name, r in result["functions"].items():
        top = ", ".join(f"{pkg} {ms:.0f}" for pkg, ms in list(r["importtime_self_ms_by_package"].items())[:4])
        rows.append([name, r["import_ms_median"], f"{r['import_ms_min']:.0f}-{r['import_ms_max']:.0f}",
                     r["no_bytecode_import_ms_median"], r["clients_ms_median"], r["modules_loaded"],
                     r["peak_rss_mb_median"], top])
    return render(
        f"2. Cold start: handler import time, fresh interpreter, median of {result['runs']} "
        f"(Python {result['python']})",
        ["function", "import ms", "range", "no .pyc ms", "clients ms", "modules", "RSS MB", "self ms by package"],
        rows, digits=0,
        note="import ms: bytecode cached. no .pyc ms: the layers and function without bytecode, as deployed "
             "(stdlib and boto3 cached).\nclients ms: building the DynamoDB and SQS clients afterwards (first "
             "invocation). RSS: peak resident memory after the import.\nInterpreter start-up (~10-20 ms) is not "
             "included; Lambda's init also covers the runtime's own bootstrap.")


def pipeline_table(result: dict[str, Any]) -> str:
    lat, sent, rcpt, deliv = (result["submit_latency_ms"], result["submit_to_sent_s"], result["sent_to_delivered_s"],
                              result["submit_to_delivered_s"])
    rows = [
        ["leads accepted / posted", f"{result['accepted']} / {result['leads']}", ""],
        ["requests in flight", result["concurrency"], ""],
        ["stack start-up", result["stack_startup_s"], "s"],
        ["submit latency p50 / p95 / p99", f"{lat['p50']:.0f} / {lat['p95']:.0f} / {lat['p99']:.0f}", "ms"],
        ["leads accepted per second", result["leads_per_s_accepted"], "leads/s"],
        ["submit -> sent_at p50 / p95", f"{sent['p50']:.2f} / {sent['p95']:.2f}", "s"],
        ["sent_at -> delivered_at p50 / p95", f"{rcpt['p50']:.2f} / {rcpt['p95']:.2f}", "s"],
        ["submit -> delivered_at p50 / p95", f"{deliv['p50']:.2f} / {deliv['p95']:.2f}", "s"],
        ["messages sent per second", result["messages_per_s_sent"], "msg/s"],
        ["messages to final receipt per second", result["messages_per_s_end_to_end"], "msg/s"],
        ["first texts: " + ", ".join(f"{k} {v}" for k, v in sorted(result["first_text_status"].items())), "", ""],
    ]
    main = render("3. Local pipeline (devstack over HTTP; moto, not AWS)", ["measure", "value", "unit"], rows)
    durations = render(
        "3b. Handler durations in the local stack (from its REPORT log lines, whole run)",
        ["function", "invocations", "p50 ms", "p95 ms", "max ms", "busy s", "environments"],
        [[name, d["n"], d["p50"], d["p95"], d["max"], d["total_s"], d["inits"]]
         for name, d in result["function_durations_ms"].items()], digits=1,
        note="The local API Gateway runs one HTTP function invocation at a time (devstack TakingTurns), so the\n"
             "HTTP functions' busy seconds add up to a floor on the run's duration; on AWS each environment is\n"
             "a process of its own.")
    return main + "\n\n" + durations


def campaign_tables(result: dict[str, Any]) -> str:
    local, calls = result["local"], result["aws_requests"]
    sections = [campaign_local_table(local)]
    if local.get("binding_number_variant"):
        sections.append(binding_variant_table(local["binding_number_variant"]))
    sections.append(campaign_durations_table(local))
    sections.extend(campaign_aws_tables(calls))
    return "\n\n".join(sections)


def campaign_local_table(r: dict[str, Any]) -> str:
    campaign, pause, done = r["campaign"], r["pause"], r["completion"]
    worst, imported = r["worst_number"], r["import"]
    rate = r["rate_per_second"]
    rows = [
        ["contacts imported (CSV through the API)", f"{imported['new_contacts']:,} in {imported['seconds']:.1f} s",
         f"{imported['rows_per_s']:,.0f} rows/s"],
        ["configured rate / pool", f"{rate:g} msg/s / {r['numbers']} numbers x {r['number_mps'][0]:g} MPS", ""],
        ["launch -> first send / -> completed", f"{r['launch_to_first_send_s']:.1f} / "
         + (f"{r['launch_to_completed_s']:.0f}" if r["launch_to_completed_s"] else "-"), "s"],
        ["mean achieved rate, steady (before pause / after resume)",
         f"{r['mean_rate_steady']:.2f} ({r['mean_rate_before_pause']:.2f} / "
         + (f"{r['mean_rate_after_resume']:.2f})" if r["mean_rate_after_resume"] else "-)"), "msg/s"],
        ["achieved / configured, steady", f"{100 * r['mean_rate_steady'] / rate:.0f}%", ""],
        ["busiest sliding 1 s window / over the rate",
         f"{campaign['sliding_1s_max']} / +{campaign['sliding_1s_excess']:g}", "sends"],
        ["sends that were over the rate in their last 1 s", f"{campaign['sends_above_limit_in_sliding_1s']:,} of "
         f"{campaign['sends']:,}", ""],
        ["platform's turns: busiest sliding 1 s / over the rate (campaign; worst number)",
         f"{r['platform']['campaign']['sliding_1s_max']} / +{r['platform']['campaign']['sliding_1s_excess']:g}; "
         f"+{r['platform']['numbers_sliding_1s_excess_max']:g}", "sends"],
        ["carrier stamp after the platform's turn p50 / p95 / max",
         f"{r['platform']['carrier_lag_ms'].get('p50')} / {r['platform']['carrier_lag_ms'].get('p95')} / "
         f"{r['platform']['carrier_lag_ms'].get('max')}", "ms"],
        ["busiest wall-clock second / seconds above ceil(rate)",
         f"{campaign['aligned_1s_max']} / {campaign['aligned_seconds_above_cap']} of {campaign['aligned_seconds']}",
         ""],
        ["worst number: busiest sliding 1 s / its MPS", f"{worst['sliding_1s_max']} / {worst['mps']:g}",
         worst["number"]],
        ["numbers: seconds above MPS / carrier 429s (token bucket)",
         f"{r['numbers_seconds_above_mps']} / {r['refused_by_carrier_429']}", ""],
        ["pause: request -> response", pause["request_to_response_s"], "s"],
        ["pause: sends after the response / the last one", f"{pause['sends_after_response']} / "
         + (f"{pause['last_send_after_response_s']:.2f} s after" if pause["sends_after_response"] else "-"),
         f"watched {pause['watched_s']:g} s"],
        ["resume -> first send", pause["resume_to_first_send_s"], "s"],
        ["recipients / duplicates / missing", f"{done['recipients']:,} / {done['duplicate_recipients']} / "
         f"{done['missing_recipients']}", f"of {r['contacts']:,}"],
        ["final status", done["status"], ""],
    ]
    return render(f"4. Bulk campaign through the local stack ({r['contacts']:,} contacts at {rate:g}/s; "
                  f"moto, not AWS)", ["measure", "value", "unit"], rows,
                  note="Send times are the carrier simulator's (date_created, ms). Sliding windows start at each "
                       "send;\nwall-clock seconds are counted as the carrier's clock has them.")


def binding_variant_table(v: dict[str, Any]) -> str:
    rows = [[number, f"{mps:g}", p["sends"], p.get("mean_rate"), p.get("sliding_1s_max")]
            for number, mps in v["pool"].items() for p in [v["per_number"].get(number, {"sends": 0})]]
    rows.append(["campaign", f"rate {v['rate_per_second']:g}", v["sends"], v["mean_rate"],
                 v["campaign"].get("sliding_1s_max")])
    return render(
        f"4b. One number at {min(v['pool'].values()):g} MPS in a pool of {len(v['pool'])} "
        f"({v['watched_s']:.0f} s, then cancelled)",
        ["sender", "MPS", "sends", "mean msg/s", "busiest 1 s"], rows,
        note=f"The preview projected {v['preview_effective_rate_per_second']:g} msg/s. When cancelled, "
             f"{v['released_when_cancelled']} texts were released and {v['attempted_when_cancelled']} sent.")


def campaign_durations_table(r: dict[str, Any]) -> str:
    return render(
        "4c. Handler durations in the local stack during the campaign benchmark (REPORT log lines)",
        ["function", "invocations", "p50 ms", "p95 ms", "max ms", "busy s", "environments"],
        [[name, d["n"], d["p50"], d["p95"], d["max"], d["total_s"], d["inits"]]
         for name, d in r["function_durations_ms"].items()], digits=1)


def campaign_aws_tables(result: dict[str, Any]) -> list[str]:
    from bench.campaign_calls import PHASES
    from bench.pricing import PRICES_DATE, USD_PER_MILLION

    messages, contacts = result["messages_sent"], result["contacts"]
    operations = render(
        f"4d. AWS requests per campaign text ({contacts} contacts imported, {messages} texts, "
        f"{result['receipts_posted']} receipts; in-process moto)",
        ["operation", "per msg", "per contact", *PHASES],
        [[label, row["per_message"], row["per_contact_imported"], *(row.get(p, 0) for p in PHASES)]
         for label, row in result["operations"].items()],
        note="per msg: dispatch, send and receipt phases over the texts sent; per contact: the import phase over the\n"
             "contacts imported. Phase columns are totals. The dispatch phase is two ticks (release all, complete).")
    rows = []
    for name in PHASES:
        p = result["phases"][name]
        rows.append([name, p["dynamodb_calls"], p["sqs_calls_app"] + p["sqs_calls_event_source"],
                     p["s3_put_calls"] + p["s3_get_calls"], p["transact_items"], p["wru_table"], p["wru_index"],
                     p["rru"], p["lambda_invocations"], p["http_api_requests"]])
    for label, m in (("per message", result["per_message"]), ("per contact", result["per_contact_imported"])):
        rows.append([label, m["dynamodb_calls"], m["sqs_calls_app"] + m["sqs_calls_event_source"],
                     m["s3_put_calls"] + m["s3_get_calls"], m["transact_items"], m["wru_table"], m["wru_index"],
                     m["rru"], m["lambda_invocations"], m["http_api_requests"]])
    sizes = "; ".join(f"{phase}: " + ", ".join(f"{n}x{items}" for items, n in counts.items())
                      for phase, counts in result["transaction_sizes"].items())
    phases = render(
        "4e. By phase: calls and DynamoDB request units",
        ["phase", "DDB calls", "SQS calls", "S3 calls", "txn items", "WRU table", "WRU index", "RRU", "Lambda",
         "HTTP"], rows, digits=2,
        note=f"Transactions (count x items): {sizes}. WRU index per message: "
             + ", ".join(f"{k} {v:.2f}" for k, v in result["wru_index_by_index_per_message"].items())
             + f".\nTexts queued again for pacing: {result['paced_requeues']}.")
    m, c = result["per_message"], result["per_contact_imported"]
    cost_m, cost_c = result["cost_per_1000_messages_usd"], result["cost_per_1000_contacts_imported_usd"]
    units = {
        "DynamoDB writes": ("WRU", lambda u: u["wru_table"] + u["wru_index"]),
        "DynamoDB reads": ("RRU", lambda u: u["rru"]),
        "SQS requests": ("requests", lambda u: u["sqs_calls_app"] + u["sqs_calls_event_source"]),
        "Lambda requests": ("invocations", lambda u: u["lambda_invocations"]),
        "API Gateway requests": ("requests", lambda u: u["http_api_requests"]),
        "S3 requests": ("requests", lambda u: u["s3_put_calls"] + u["s3_get_calls"]),
    }
    cost_rows = [[name, f"{f(m):.3f}", f"${cost_m[name]:.4f}", f"{f(c):.3f}", f"${cost_c[name]:.5f}", unit]
                 for name, (unit, f) in units.items()]
    cost_rows.append(["total", "", f"${cost_m['total']:.4f}", "", f"${cost_c['total']:.5f}", ""])
    costs = render(
        f"4f. Estimated AWS cost of a campaign (us-east-1 on-demand list prices as of {PRICES_DATE})",
        ["item", "per msg", "$ per 1,000 msgs", "per contact", "$ per 1,000 contacts", "unit"],
        cost_rows, right=(1, 2, 3, 4),
        note=f"S3: PUT-class ${USD_PER_MILLION['s3_put_request']:g} and GET-class "
             f"${USD_PER_MILLION['s3_get_request']:g} per million. Not included: Lambda duration (each 100 ms billed "
             f"per invocation adds ${result['lambda_compute_per_100ms_billed_per_1000_messages_usd']:.4f}\nper 1,000 "
             f"texts), the dispatcher's and auto-pause's ticks every minute, storage, CloudWatch, the carrier.")
    return [operations, phases, costs]


def import_tables(result: dict[str, Any]) -> str:
    reader, handler = result["reader"], result["handler"]
    reader_rows = [
        ["rows / file", f"{reader['rows']:,} / {reader['file_mb']} MB", ""],
        ["accepted / duplicates / rejected", f"{reader['accepted']:,} / {reader['duplicates']:,} / "
         f"{reader['rejected']:,}", ""],
        ["time / rows per second", f"{reader['seconds']:.1f} s / {reader['rows_per_s']:,}", "rows/s"],
        ["peak resident memory", reader["peak_rss_mb"], "MB"],
    ]
    first = render("5. Contacts import: the reader alone (parse, normalise, dedupe; fresh interpreter)",
                   ["measure", "value", "unit"], reader_rows)
    h, pc = handler, handler["per_contact"]
    handler_rows = [
        ["rows / file", f"{h['rows']:,} / {h['file_mb']} MB", ""],
        ["new contacts / duplicates / rejected", f"{h['outcome']['new_contacts']:,} / {h['outcome']['duplicates']:,}"
         f" / {h['outcome']['rejected']:,}", ""],
        ["time / rows per second (moto in-process)", f"{h['seconds']:.1f} s / {h['rows_per_s']:,}", "rows/s"],
        ["DynamoDB requests per contact", pc["dynamodb_calls"], "calls"],
        ["items written per contact (BatchWriteItem)", pc["items_written_in_batches"], "items"],
        ["keys read per contact (BatchGetItem: list, DNC)", pc["keys_read_in_batches"], "keys"],
        ["write request units per contact", pc["wru"], "WRU"],
        ["read request units per contact", pc["rru"], "RRU"],
        ["S3 requests per 1,000 contacts", 1000 * pc["s3_calls"], "requests"],
        ["AWS requests cost per 1,000 contacts", f"${h['cost_per_1000_contacts_usd']['total']:.5f}", ""],
    ]
    ops = ", ".join(f"{k} {v:,}" for k, v in h["operations"].items())
    second = render("5b. Contacts import through contacts_import (S3 -> DynamoDB, in-process moto)",
                    ["measure", "value", "unit"], handler_rows, digits=3, note=f"Requests: {ops}.")
    return first + "\n\n" + second


def reports_table(result: dict[str, Any]) -> str:
    small, large = (str(s) for s in result["sizes"])
    a, b = result["by_size"][small]["reports"], result["by_size"][large]["reports"]
    rows = [[name, a[name]["dynamodb_requests"], b[name]["dynamodb_requests"],
             ", ".join(f"{op} {n:g}" for op, n in b[name]["by_operation"].items()),
             a[name]["latency_ms_p50"], b[name]["latency_ms_p50"]] for name in a]
    return render(f"6. Reports: DynamoDB requests per call after {int(small):,} and {int(large):,} texts "
                  "(reports handler, in-process moto)",
                  ["report", f"requests @{int(small) // 1000}k", f"requests @{int(large) // 1000}k",
                   f"by operation @{int(large) // 1000}k", f"p50 ms @{int(small) // 1000}k",
                   f"p50 ms @{int(large) // 1000}k"], rows,
                  note=f"Requests the same at both sizes (the message log aside): {result['requests_flat']}. "
                       "Latencies are moto's in this process, not DynamoDB's.")


# -- running --------------------------------------------------------------------------------------
def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def quietly(run: Any) -> Any:
    """Run in-process handlers with their stdout (Powertools logs and EMF metrics) kept off the
    tables; on failure, the end of it goes to stderr."""
    handler_output = io.StringIO()
    try:
        with contextlib.redirect_stdout(handler_output):
            return run()
    except Exception:
        sys.stderr.write(handler_output.getvalue()[-5000:])
        raise


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    selected = args.only or list(BENCHMARKS)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    results = _load(args.out)
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                          "platform": platform.platform(), "processor": platform.machine(),
                          "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    results["commit"] = _git_commit()
    started = time.perf_counter()
    sections: list[str] = []

    def stamp(result: dict[str, Any]) -> dict[str, Any]:
        return {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), **result}

    def save() -> None:
        """Each benchmark's figures are kept as soon as it ends, whatever happens after."""
        args.out.write_text(json.dumps(results, indent=2, sort_keys=False, default=str) + "\n")

    if "aws" in selected:
        from bench import aws_calls

        results["aws_requests"] = stamp(quietly(lambda: aws_calls.run(leads=args.leads)))
        save()
        sections.append(aws_tables(results["aws_requests"]))
        print(sections[-1] + "\n", flush=True)
    if "cold" in selected:
        from bench import cold_start

        results["cold_start"] = stamp(cold_start.run(runs=args.runs))
        save()
        sections.append(cold_table(results["cold_start"]))
        print(sections[-1] + "\n", flush=True)
    if "pipeline" in selected:
        from bench import pipeline

        results["pipeline"] = stamp(pipeline.run(leads=args.pipeline_leads, concurrency=args.concurrency))
        save()
        sections.append(pipeline_table(results["pipeline"]))
        print(sections[-1] + "\n", flush=True)

    if "campaign" in selected:
        from bench import campaign, campaign_calls

        clock = time.perf_counter()
        local = campaign.run(contacts=args.campaign_contacts, rate=args.campaign_rate, numbers=args.campaign_numbers,
                             number_mps=args.campaign_number_mps, tick_seconds=args.campaign_tick_seconds,
                             variant_seconds=args.campaign_variant_seconds)
        calls = quietly(lambda: campaign_calls.campaign_run(contacts=args.campaign_aws_contacts))
        results["campaign"] = stamp({"local": local, "aws_requests": calls,
                                     "wall_s": round(time.perf_counter() - clock, 1)})
        save()
        sections.append(campaign_tables(results["campaign"]))
        print(sections[-1] + "\n", flush=True)
    if "import" in selected:
        from bench import campaign_calls, import_memory

        clock = time.perf_counter()
        reader = import_memory.run(args.import_rows)
        handler = quietly(lambda: campaign_calls.import_run(rows=args.import_handler_rows))
        results["import"] = stamp({"reader": reader, "handler": handler,
                                   "wall_s": round(time.perf_counter() - clock, 1)})
        save()
        sections.append(import_tables(results["import"]))
        print(sections[-1] + "\n", flush=True)

    if "reports" in selected:
        from bench import reports_calls

        results["reports"] = stamp(quietly(lambda: reports_calls.run(messages=args.reports_messages)))
        save()
        sections.append(reports_table(results["reports"]))
        print(sections[-1] + "\n", flush=True)

    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.write_text(json.dumps(results, indent=2, sort_keys=False, default=str) + "\n")
    print(f"Figures written to {args.out.relative_to(REPO_ROOT) if args.out.is_relative_to(REPO_ROOT) else args.out}"
          f" ({results['elapsed_s']} s, {os.cpu_count()} CPUs, load average "
          f"{results['machine']['load_average_at_start'][0]} at start, {os.getloadavg()[0]:.2f} at end).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
