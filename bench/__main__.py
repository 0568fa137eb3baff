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

BENCHMARKS = ("aws", "cold", "pipeline")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", choices=BENCHMARKS, action="append",
                        help="run only this benchmark (repeatable); the others keep their last results")
    parser.add_argument("--leads", type=int, default=50, help="leads through the handlers against moto")
    parser.add_argument("--runs", type=int, default=3, help="imports per function and variant")
    parser.add_argument("--pipeline-leads", type=int, default=200, help="leads posted to the local stack")
    parser.add_argument("--concurrency", type=int, default=10, help="requests in flight against the local stack")
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
             f"{result['largest_item_bytes']} bytes).\nWRU index: writes to the GSIs (projection ALL), by index per "
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

    if "aws" in selected:
        from bench import aws_calls

        # The handlers print their Powertools logs and metrics (EMF) to stdout; keep them off the table.
        handler_output = io.StringIO()
        try:
            with contextlib.redirect_stdout(handler_output):
                results["aws_requests"] = stamp(aws_calls.run(leads=args.leads))
        except Exception:
            sys.stderr.write(handler_output.getvalue()[-5000:])
            raise
        sections.append(aws_tables(results["aws_requests"]))
        print(sections[-1] + "\n", flush=True)
    if "cold" in selected:
        from bench import cold_start

        results["cold_start"] = stamp(cold_start.run(runs=args.runs))
        sections.append(cold_table(results["cold_start"]))
        print(sections[-1] + "\n", flush=True)
    if "pipeline" in selected:
        from bench import pipeline

        results["pipeline"] = stamp(pipeline.run(leads=args.pipeline_leads, concurrency=args.concurrency))
        sections.append(pipeline_table(results["pipeline"]))
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
