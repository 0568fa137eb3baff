"""Benchmark 3: throughput and latency of the local pipeline, over HTTP.

Starts the local stack (`python -m devstack`, free ports, its own state folder, a 2-second
ticker) as a subprocess, lets the carrier simulator accept 1,000 messages a second per sender
with callbacks 0.05-0.2 s apart, creates a flow without drips and one integrator key per 250
leads (the per-key limit is 300 a minute), posts the leads with `concurrency` requests in flight,
waits for the receipts, then reads every lead once with the operator token.

Everything runs on this machine: moto stands in for DynamoDB and SQS (in-process, DynamoDB
requests serialised), the functions run in threads of one Python process, and the load
generator shares the CPUs. The figures say how the pieces behave relative to each other, not
what AWS would do.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import REPO_ROOT
from bench.aws_calls import fictional_phone
from bench.stats import per, summarize

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20
KEYS_EVERY = 250


def _epoch(iso_text: str | None) -> float | None:
    return datetime.fromisoformat(iso_text.replace("Z", "+00:00")).timestamp() if iso_text else None


def start_stack(state_dir: Path, tick_seconds: float = 2,
                extra_args: Sequence[str] = ()) -> tuple[subprocess.Popen[bytes], dict[str, Any], float]:
    command = [sys.executable, "-m", "devstack", "--api-port", "0", "--carrier-port", "0", "--moto-port", "0",
               "--state-dir", str(state_dir), "--tick-seconds", str(tick_seconds), "--quiet",
               # Benchmarks run at any hour; quiet hours would hold their texts at night.
               "--quiet-hours", "devstack/quiet_hours_any_time.json", *extra_args]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    started = time.monotonic()
    with open(state_dir / "process.out", "wb") as output:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=environment, stdout=output,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    stack_file = state_dir / "stack.json"
    while time.monotonic() - started < START_TIMEOUT_S:
        if process.poll() is not None:
            break
        if stack_file.exists():
            try:
                info = json.loads(stack_file.read_text())
            except ValueError:
                info = {}
            if info.get("pid") == process.pid:
                return process, info, time.monotonic() - started
        time.sleep(0.05)
    stop_stack(process)
    output = (state_dir / "process.out").read_text(errors="replace")[-3000:]
    raise RuntimeError(f"the local stack did not start within {START_TIMEOUT_S} s:\n{output}")


def stop_stack(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run(leads: int = 200, concurrency: int = 10, settle_timeout_s: float = 90) -> dict[str, Any]:
    import httpx

    state_dir = Path(tempfile.mkdtemp(prefix="sendline-bench-stack-"))
    process = None
    try:
        process, stack, startup_s = start_stack(state_dir)
        operator = {"Authorization": f"Bearer {stack['admin_token']}"}
        httpx.post(f"{stack['carrier_url']}/_sim/config", timeout=10,
                   json={"sender_mps": 1000, "callback_delay_s": [0.05, 0.2]}).raise_for_status()
        limits = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2)
        with httpx.Client(base_url=stack["api_url"], timeout=30, limits=limits) as client:
            flow = client.post("/v1/flows", headers=operator, json={
                "name": "Bench throughput", "from_number": "+12125550100", "call_number": "+18885550123",
                "initial_message": "Hi {first_name}, your quote is ready. Call {call_number}. Reply STOP to opt out.",
                "drips": []})
            flow.raise_for_status()
            flow_id = flow.json()["flow_id"]
            keys = []
            for i in range(math.ceil(leads / KEYS_EVERY)):
                created = client.post("/v1/api-keys", headers=operator, json={"name": f"bench {i}"})
                created.raise_for_status()
                keys.append(created.json()["api_key"])

            submissions: list[dict[str, Any]] = [{} for _ in range(leads)]

            def submit(n: int) -> None:
                record = submissions[n]
                record["wall_start"] = time.time()
                started = time.perf_counter()
                response = client.post("/v1/leads", headers={"X-API-Key": keys[n // KEYS_EVERY]}, json={
                    "flow_id": flow_id, "phone": fictional_phone(n), "first_name": f"Lead{n}", "source": "bench"})
                record["latency_ms"] = (time.perf_counter() - started) * 1000
                record["wall_end"] = time.time()
                record["status"] = response.status_code
                if response.status_code == 200:
                    record["lead_id"] = response.json()["lead_id"]

            submit_started = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(submit, range(leads)))
            submit_s = time.perf_counter() - submit_started
            accepted = [s for s in submissions if s.get("lead_id")]

            settled, settle_wait_s = _wait_for_receipts(client, operator, len(accepted), settle_timeout_s)
            views = _read_leads(client, operator, [s["lead_id"] for s in accepted], concurrency)
        sim_stats = httpx.get(f"{stack['carrier_url']}/_sim/stats", timeout=10).json()
    finally:
        if process is not None:
            stop_stack(process)
        log_text = _read(state_dir / "logs" / "stack.log")
        shutil.rmtree(state_dir, ignore_errors=True)

    summary = summarise(submissions, accepted, views, submit_s=submit_s, startup_s=startup_s,
                        settled=settled, settle_wait_s=settle_wait_s, concurrency=concurrency, sim_stats=sim_stats)
    summary["function_durations_ms"] = function_durations(log_text)
    return summary


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


_REPORT = re.compile(r"sendline-(\w+) REPORT RequestId: \S+ Duration: ([\d.]+) ms")
_INIT = re.compile(r"sendline-(\w+) INIT module=\S+ Init Duration: ([\d.]+) ms")


def function_durations(log_text: str) -> dict[str, dict[str, Any]]:
    """Handler durations per function from the stack's REPORT log lines (whole run)."""
    durations: dict[str, list[float]] = {}
    inits: dict[str, list[float]] = {}
    for line in log_text.splitlines():
        if match := _REPORT.search(line):
            durations.setdefault(match.group(1), []).append(float(match.group(2)))
        elif match := _INIT.search(line):
            inits.setdefault(match.group(1), []).append(float(match.group(2)))
    return {name: {**summarize(values, (50, 95)), "total_s": sum(values) / 1000, "inits": len(inits.get(name, [])),
                   "init_ms_max": max(inits[name]) if inits.get(name) else None}
            for name, values in sorted(durations.items())}


def _wait_for_receipts(client: Any, operator: dict[str, str], accepted: int, timeout_s: float) -> tuple[bool, float]:
    """Until every accepted lead's text is sent and no receipt is pending, or nothing has moved
    for 5 s after all were sent (a carrier may never send a final receipt)."""
    started = time.perf_counter()
    last, unchanged_since = None, time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        stats = client.get("/v1/stats", headers=operator).json()
        done = stats["total_sent"] + stats["failed"] + stats["unknown"] + stats["skipped"]
        if done >= accepted and stats["pending_dlr"] == 0:
            return True, time.perf_counter() - started
        snapshot = (done, stats["pending_dlr"], stats["delivered"], stats["undelivered"])
        if snapshot != last:
            last, unchanged_since = snapshot, time.perf_counter()
        elif done >= accepted and time.perf_counter() - unchanged_since > 5:
            return True, time.perf_counter() - started
        time.sleep(0.25)
    return False, time.perf_counter() - started


def _read_leads(client: Any, operator: dict[str, str], lead_ids: list[str], concurrency: int) -> list[dict[str, Any]]:
    lock = threading.Lock()
    views: list[dict[str, Any]] = []

    def read(lead_id: str) -> None:
        response = client.get(f"/v1/leads/{lead_id}", headers=operator)
        response.raise_for_status()
        with lock:
            views.append(response.json())

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(read, lead_ids))
    return views


def summarise(submissions: list[dict[str, Any]], accepted: list[dict[str, Any]], views: list[dict[str, Any]], *,
              submit_s: float, startup_s: float, settled: bool, settle_wait_s: float, concurrency: int,
              sim_stats: dict[str, Any]) -> dict[str, Any]:
    started_at = {s["lead_id"]: s["wall_start"] for s in accepted}
    first_start = min(s["wall_start"] for s in submissions)
    to_sent, to_delivered, sent_to_delivered, finals, statuses = [], [], [], [], {}
    for view in views:
        message = view["messages"][0]
        statuses[message["status"]] = statuses.get(message["status"], 0) + 1
        submitted = started_at[view["lead_id"]]
        sent, delivered = _epoch(message.get("sent_at")), _epoch(message.get("delivered_at"))
        final = delivered or _epoch(message.get("failed_at"))
        if sent:
            to_sent.append(sent - submitted)
        if delivered:
            to_delivered.append(delivered - submitted)
            if sent:
                sent_to_delivered.append(delivered - sent)
        if final:
            finals.append(final)
    latencies = [s["latency_ms"] for s in submissions if "latency_ms" in s]
    last_sent = max((_epoch(v["messages"][0].get("sent_at")) or 0 for v in views), default=0)
    return {
        "leads": len(submissions),
        "concurrency": concurrency,
        "accepted": len(accepted),
        "rejected_by_status": _count(s.get("status") for s in submissions if not s.get("lead_id")),
        "stack_startup_s": startup_s,
        "submit_window_s": submit_s,
        "leads_per_s_accepted": per(len(accepted), submit_s),
        "submit_latency_ms": summarize(latencies),
        "submit_to_sent_s": summarize(to_sent, (50, 95)),
        "sent_to_delivered_s": summarize(sent_to_delivered, (50, 95)),
        "submit_to_delivered_s": summarize(to_delivered, (50, 95)),
        "messages_sent": len(to_sent),
        "messages_delivered": len(to_delivered),
        "messages_per_s_sent": per(len(to_sent), last_sent - first_start) if last_sent else None,
        "messages_per_s_end_to_end": per(len(finals), max(finals) - first_start) if finals else None,
        "first_text_status": statuses,
        "receipts_settled": settled,
        "settle_wait_s": settle_wait_s,
        "carrier": {k: sim_stats.get(k) for k in ("messages", "by_status", "rate_limited", "callbacks")},
    }


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return counts
