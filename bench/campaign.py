"""Benchmark 4: a bulk campaign through the local stack, and the AWS requests a campaign text makes.

**Local run** (`run`). Starts the local stack as benchmark 3 does (its own state folder, free
ports, a short ticker, no periodic snapshots), lets the carrier simulator take 1,000 messages a
second per sender with callbacks 0.05-0.2 s apart, then, through the HTTP API with the operator
token: creates a brand and a pool of sending numbers (each with an MPS), a contact list, imports
a generated CSV (POST text/csv; the import runs in `contacts_import` from the upload's S3 event),
creates a campaign with a 00:00-24:00 send window and `rate_per_second`, and launches it with a
start time in the past. The dispatcher's next tick starts it.

Measured from the simulator's own record of each message it accepted (`GET /_sim/messages`:
`date_created` to the millisecond, sender, recipient): sends per one-second window (sliding and
aligned to the wall-clock second, for the campaign and for each sending number against its MPS),
the mean rate over the steady part; a pause after about a third of the contacts (the time the
API's answer came back, then 20 s of watching the simulator) and a resume; then whether every
contact got exactly one text and the campaign reached `completed`.

A second, shorter campaign (the "binding number" variant) runs on the same stack with one
sending number of the pool at 1 message a second: what the campaign's pace becomes when one
number's MPS, not the campaign's rate, is the limit.

**AWS requests** (`aws_requests`): as benchmark 1 does for leads, the campaign path runs through
the real handlers in-process against moto, every boto3 call counted by `bench.meter.Meter`:
setup (brand, numbers, list, campaign and launch via `campaign_api`), the import (the CSV posted to
`campaign_api`, the upload's notification to `contacts_import`), the dispatcher's tick
(`campaign_dispatcher`), the sends (`send_worker`, carrier answered by respx) and a signed `sent`
and `delivered` status callback per text (`dlr_webhook`).

Everything local runs on this machine (moto for DynamoDB, SQS and S3; the functions in threads
of one process); the timings say how the pieces behave relative to each other, not what AWS does.
"""

from __future__ import annotations

import bisect
import math
import os
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.import_memory import national_number
from bench.stats import per

PAUSE_WAIT_S = 20
POLL_S = 0.25
# The stack's periodic snapshot scans the whole table (tens of thousands of items here) while
# everything else waits for moto: once an hour is never, for a run of minutes.
STACK_ARGS = ("--snapshot-seconds", "3600")
# The simulator holds each sending number to its own MPS, as a carrier does (a token bucket
# with a second's worth of burst): each of its 429s is a text the platform sent too fast.
SIM_CONFIG = {"sender_mps": None, "callback_delay_s": [0.05, 0.2]}
CREATIVE = "Hi {first_name}, your December offer is ready. Call {call_number}."


# -- contacts ---------------------------------------------------------------------------------
def contact_phone(index: int) -> str:
    """The index-th distinct valid US mobile-format number, E.164 (see bench.import_memory)."""
    area, exchange, line = national_number(index)
    return f"+1{area}{exchange}{line}"


def contacts_csv(count: int, first: int = 0) -> str:
    """A contact list as operators upload it (national format phones)."""
    lines = ["First Name,Last Name,Phone"]
    for index in range(first, first + count):
        area, exchange, line = national_number(index)
        lines.append(f"Pat{index},Bench,({area}) {exchange}-{line}")
    return "\r\n".join(lines) + "\r\n"


def sender_numbers(count: int, area: str = "212") -> list[str]:
    return [f"+1{area}555{900 + i:04d}" for i in range(count)]


# -- analysis (pure) --------------------------------------------------------------------------
def epoch(iso_text: str) -> float:
    return datetime.fromisoformat(iso_text.replace("Z", "+00:00")).timestamp()


def sliding_max(times: Sequence[float], width: float = 1.0) -> tuple[int, float | None]:
    """The most sends in any window [t, t + width) and where the busiest window starts."""
    ordered = sorted(times)
    best, start, low = 0, None, 0
    for high, moment in enumerate(ordered):
        while moment - ordered[low] >= width:
            low += 1
        if high - low + 1 > best:
            best, start = high - low + 1, ordered[low]
    return best, start


def aligned_counts(times: Iterable[float]) -> Counter[int]:
    """Sends per wall-clock second."""
    return Counter(int(t) for t in times)


def windows_over(times: Sequence[float], limit: float, width: float = 1.0) -> int:
    """How many sends were the (limit+1)-th or later within the width before them."""
    ordered = sorted(times)
    over, low = 0, 0
    for high, moment in enumerate(ordered):
        while moment - ordered[low] >= width:
            low += 1
        if high - low + 1 > limit:
            over += 1
    return over


def rate_profile(times: Sequence[float], limit: float) -> dict[str, Any]:
    """Sliding and aligned one-second figures of a series of send times against a limit."""
    if not times:
        return {"sends": 0}
    peak, peak_at = sliding_max(times)
    aligned = aligned_counts(times)
    cap = max(1, math.ceil(limit - 1e-9))
    return {
        "sends": len(times),
        "limit_per_s": limit,
        "sliding_1s_max": peak,
        "sliding_1s_max_at": datetime.fromtimestamp(peak_at, UTC).isoformat(timespec="milliseconds")
        if peak_at else None,
        "sliding_1s_excess": max(0.0, peak - limit),
        "sends_above_limit_in_sliding_1s": windows_over(times, limit),
        "aligned_1s_max": max(aligned.values()),
        "aligned_seconds_above_cap": sum(1 for n in aligned.values() if n > cap),
        "aligned_seconds": len(aligned),
    }


def mean_rate(times: Sequence[float], spans: Iterable[tuple[float, float]]) -> float | None:
    """Sends per second over the given spans of time (each [start, end))."""
    ordered = sorted(times)
    sends = seconds = 0.0
    for start, end in spans:
        if end <= start:
            continue
        sends += bisect.bisect_left(ordered, end) - bisect.bisect_left(ordered, start)
        seconds += end - start
    return per(sends, seconds)


def series(times: Sequence[float], origin: float, step: float = 10.0) -> list[int]:
    """Sends in each `step` seconds from `origin` (for plotting; in results.json only)."""
    if not times:
        return []
    buckets = Counter(int((t - origin) // step) for t in times)
    return [buckets.get(i, 0) for i in range(max(buckets) + 1)]


def outbound(messages: Iterable[dict[str, Any]], senders: Iterable[str]) -> list[dict[str, Any]]:
    chosen = set(senders)
    return [m for m in messages if m.get("direction") == "outbound-api" and m.get("from") in chosen]


def platform_sends(moto_url: str, campaign_id: str) -> list[dict[str, Any]]:
    """The campaign's texts as the platform recorded them (its own `sent_at`: the turn the worker
    reserved and waited for), read from the stack's DynamoDB through the campaign's listing index."""
    import boto3

    from devstack.resources import aws_environment
    from infra import spec

    environment = aws_environment(moto_url)
    client = boto3.client("dynamodb", endpoint_url=moto_url, region_name=environment["AWS_REGION"],
                          aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"])
    sends, start = [], None
    while True:
        page = client.query(TableName=spec.TABLE.name, IndexName="gsi1",
                            KeyConditionExpression="gsi1pk = :pk", ExpressionAttributeValues={
                                ":pk": {"S": f"CAMPMSG#{campaign_id}"}},
                            **({"ExclusiveStartKey": start} if start else {}))
        for item in page["Items"]:
            if "sent_at" in item:
                sends.append({"sent_at": epoch(item["sent_at"]["S"]), "from": item["from_number"]["S"],
                              "sid": item.get("provider_sid", {}).get("S")})
        start = page.get("LastEvaluatedKey")
        if not start:
            return sends


def carrier_lag(platform: list[dict[str, Any]], carrier: list[dict[str, Any]]) -> dict[str, Any]:
    """How much later the carrier stamped each text than the platform's turn for it (ms)."""
    stamped = {m["sid"]: epoch(m["date_created"]) for m in carrier if m.get("sid")}
    lags = sorted(1000 * (stamped[p["sid"]] - p["sent_at"]) for p in platform if p.get("sid") in stamped)
    if not lags:
        return {"texts": 0}
    return {"texts": len(lags), "p50": round(lags[len(lags) // 2], 1), "p95": round(lags[int(len(lags) * 0.95)], 1),
            "max": round(lags[-1], 1), "min": round(lags[0], 1)}


# -- the local stack --------------------------------------------------------------------------
class Api:
    """The operator's side of the HTTP API, with the time each answer came back."""

    def __init__(self, client: Any, token: str):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, expected: int | tuple[int, ...] = (200, 201, 202), **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        response = self.client.request(method, path, headers=headers, **kwargs)
        if response.status_code not in ((expected,) if isinstance(expected, int) else expected):
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()


def _setup_campaign(api: Api, *, name: str, numbers: dict[str, float], contacts: int, first_contact: int,
                    rate: float) -> dict[str, Any]:
    """A brand with its pool, a list imported from CSV, and a draft campaign; returns the ids and
    the import's figures."""
    brand = api.call("POST", "/v1/brands", json={"name": name, "call_number": "8885550123"})
    for number, mps in numbers.items():
        api.call("POST", "/v1/numbers", json={"number": number, "brand_id": brand["brand_id"], "mps": mps})
    contact_list = api.call("POST", "/v1/contact-lists", json={"name": f"{name} list"})
    body = contacts_csv(contacts, first_contact).encode()
    started = time.perf_counter()
    upload = api.call("POST", f"/v1/contact-lists/{contact_list['list_id']}/imports?filename=bench.csv",
                      content=body, headers={"Content-Type": "text/csv"})
    while True:
        report = api.call("GET", f"/v1/imports/{upload['import_id']}")
        if report["status"] in ("completed", "failed"):
            break
        if time.perf_counter() - started > 300:
            raise RuntimeError(f"the import did not finish in 300 s: {report}")
        time.sleep(0.5)
    import_s = time.perf_counter() - started
    if report["status"] != "completed" or report["new_contacts"] != contacts:
        raise RuntimeError(f"the import went wrong: {report}")
    campaign = api.call("POST", "/v1/campaigns", json={
        "name": name, "brand_id": brand["brand_id"], "list_id": contact_list["list_id"],
        "rate_per_second": rate, "send_window": {"start": "00:00", "end": "24:00"},
        "creatives": [{"body": CREATIVE, "weight": 1}]})
    return {"brand_id": brand["brand_id"], "list_id": contact_list["list_id"],
            "campaign_id": campaign["campaign_id"],
            "import": {"rows": contacts, "bytes": len(body), "seconds": import_s,
                       "rows_per_s": per(contacts, import_s),
                       **{k: report.get(k) for k in ("accepted", "rejected", "duplicates", "new_contacts")}}}


def _sim(carrier_url: str, path: str, **kwargs: Any) -> Any:
    import httpx

    method = "POST" if "json" in kwargs else "GET"
    response = httpx.request(method, f"{carrier_url}{path}", timeout=60, **kwargs)
    response.raise_for_status()
    return response.json()


_load_samples: list[float] = []  # the machine's 1-minute load average, once a minute during the run
_load_sampled_at = [0.0]


def _sample_load() -> None:
    if time.monotonic() - _load_sampled_at[0] >= 60:
        _load_samples.append(round(os.getloadavg()[0], 2))
        _load_sampled_at[0] = time.monotonic()


def _sent_count(carrier_url: str) -> int:
    _sample_load()
    return int(_sim(carrier_url, "/_sim/stats")["messages"])


def run(contacts: int = 10_000, rate: float = 20.0, numbers: int = 10, number_mps: float = 4.0,
        tick_seconds: float = 5, pause_fraction: float = 1 / 3, pause_wait_s: float = PAUSE_WAIT_S,
        variant_seconds: float = 60, variant_numbers: int = 4, variant_binding_mps: float = 1.0,
        completion_timeout_s: float | None = None) -> dict[str, Any]:
    import httpx

    from bench.pipeline import function_durations, start_stack, stop_stack

    if completion_timeout_s is None:
        completion_timeout_s = 3 * contacts / rate + 180
    _load_samples.clear()
    _load_sampled_at[0] = time.monotonic()
    load_at_start = round(os.getloadavg()[0], 2)
    state_dir = Path(tempfile.mkdtemp(prefix="sendline-bench-campaign-"))
    process = None
    started = time.perf_counter()
    try:
        process, stack, startup_s = start_stack(state_dir, tick_seconds, STACK_ARGS)
        carrier = stack["carrier_url"]
        pool = dict.fromkeys(sender_numbers(numbers), number_mps)
        variant_senders = sender_numbers(variant_numbers, area="312")
        variant_pool = {variant_senders[0]: variant_binding_mps, **dict.fromkeys(variant_senders[1:], number_mps)}
        _sim(carrier, "/_sim/config", json={**SIM_CONFIG, "sender_mps_by_number": {**pool, **variant_pool}})
        with httpx.Client(base_url=stack["api_url"], timeout=60) as client:
            api = Api(client, stack["admin_token"])
            main = _main_campaign(api, carrier, stack["moto_url"], contacts=contacts, rate=rate, pool=pool, pause_fraction=pause_fraction,
                                  pause_wait_s=pause_wait_s, completion_timeout_s=completion_timeout_s)
            variant = None
            if variant_seconds > 0:
                variant = _binding_variant(api, carrier, rate=rate, pool=variant_pool, seconds=variant_seconds,
                                           first_contact=contacts)
            sim_stats = _sim(carrier, "/_sim/stats")
    finally:
        if process is not None:
            stop_stack(process)
        log_text = _read(state_dir / "logs" / "stack.log")
        shutil.rmtree(state_dir, ignore_errors=True)
    return {
        **main,
        "load_average_1min": {"at_start": load_at_start, "during": _load_samples, "at_end": round(os.getloadavg()[0], 2)},
        "binding_number_variant": variant,
        "stack_startup_s": startup_s,
        "tick_seconds": tick_seconds,
        "simulator": {k: sim_stats.get(k) for k in ("messages", "by_status", "rate_limited", "callbacks")},
        "function_durations_ms": function_durations(log_text),
        "wall_s": round(time.perf_counter() - started, 1),
    }


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _main_campaign(api: Api, carrier: str, moto_url: str, *, contacts: int, rate: float, pool: dict[str, float],
                   pause_fraction: float, pause_wait_s: float, completion_timeout_s: float) -> dict[str, Any]:
    refused_before = _sim(carrier, "/_sim/stats")["rate_limited"]
    made = _setup_campaign(api, name="Bench campaign", numbers=pool, contacts=contacts, first_contact=0, rate=rate)
    campaign_id = made["campaign_id"]
    preview = api.call("GET", f"/v1/campaigns/{campaign_id}/preview")["projected"]
    launched_at = time.time()
    api.call("POST", f"/v1/campaigns/{campaign_id}/launch", json={"start_at": "2020-01-01T00:00:00Z"})

    # Pause once about a third of the contacts have had their text.
    pause_at = max(1, int(contacts * pause_fraction))
    deadline = time.monotonic() + completion_timeout_s
    while _sent_count(carrier) < pause_at:
        if time.monotonic() > deadline:
            raise RuntimeError("the campaign did not reach the pause point in time")
        time.sleep(POLL_S)
    pause_requested = time.time()
    api.call("POST", f"/v1/campaigns/{campaign_id}/pause")
    pause_acknowledged = time.time()
    time.sleep(pause_wait_s)
    during_pause = outbound(_sim(carrier, "/_sim/messages")["messages"], pool)
    paused_view = api.call("GET", f"/v1/campaigns/{campaign_id}")
    resume_requested = time.time()
    api.call("POST", f"/v1/campaigns/{campaign_id}/resume")

    status, completed_at = None, None
    while time.monotonic() < deadline:
        view = api.call("GET", f"/v1/campaigns/{campaign_id}")
        status = view["status"]
        if status == "completed":
            completed_at = time.time()
            break
        if status not in ("running", "scheduled"):
            raise RuntimeError(f"the campaign became {status}: {view}")
        _sample_load()
        time.sleep(2)
    time.sleep(3)  # the last receipts
    final_view = api.call("GET", f"/v1/campaigns/{campaign_id}")
    messages = outbound(_sim(carrier, "/_sim/messages")["messages"], pool)
    refused = _sim(carrier, "/_sim/stats")["rate_limited"] - refused_before
    platform = platform_sends(moto_url, campaign_id)
    return summarise_main(messages, platform=platform, refused_by_carrier=refused, pool=pool, rate=rate, contacts=contacts, launched_at=launched_at,
                          pause_requested=pause_requested, pause_acknowledged=pause_acknowledged,
                          pause_wait_s=pause_wait_s, during_pause=during_pause, paused_view=paused_view,
                          resume_requested=resume_requested, completed_at=completed_at, final_view=final_view,
                          made=made, preview=preview)


def summarise_main(messages: list[dict[str, Any]], *, platform: list[dict[str, Any]], refused_by_carrier: int, pool: dict[str, float],
                   rate: float, contacts: int, launched_at: float, pause_requested: float,
                   pause_acknowledged: float, pause_wait_s: float, during_pause: list[dict[str, Any]],
                   paused_view: dict[str, Any], resume_requested: float, completed_at: float | None,
                   final_view: dict[str, Any], made: dict[str, Any], preview: dict[str, Any]) -> dict[str, Any]:
    times = sorted(epoch(m["date_created"]) for m in messages)
    first, last = times[0], times[-1]
    before = [t for t in times if t < resume_requested]
    after_resume = [t for t in times if t >= resume_requested]
    paused_times = sorted(epoch(m["date_created"]) for m in during_pause)
    last_before_resume = max(t for t in paused_times) if paused_times else None
    after_pause = [t for t in paused_times if t > pause_acknowledged]
    recipients = Counter(m["to"] for m in messages)
    expected = {contact_phone(i) for i in range(contacts)}
    by_number: dict[str, list[float]] = defaultdict(list)
    for m in messages:
        by_number[m["from"]].append(epoch(m["date_created"]))
    # Steady: from 10 s after the first send to the pause, and from 10 s after the first send
    # after the resume to 10 s before the last send (the last minute's plan may be partial).
    resumed_first = after_resume[0] if after_resume else None
    steady_spans = [(first + 10, pause_acknowledged)]
    if resumed_first:
        steady_spans.append((resumed_first + 10, last - 10))
    progress = final_view.get("progress", {})
    return {
        "contacts": contacts,
        "rate_per_second": rate,
        "numbers": len(pool),
        "number_mps": sorted(set(pool.values())),
        "pool_mps": sum(pool.values()),
        "preview_projection": preview,
        "import": made["import"],
        "sends": len(times),
        "launch_to_first_send_s": first - launched_at,
        "first_to_last_send_s": last - first,
        "launch_to_completed_s": (completed_at - launched_at) if completed_at else None,
        "sending_seconds_excluding_pause": (last - first) - ((resumed_first or resume_requested) - pause_acknowledged),
        "campaign": rate_profile(times, rate),
        "per_number": {number: rate_profile(sorted(ts), pool[number]) for number, ts in sorted(by_number.items())},
        "platform": {
            "campaign": rate_profile(sorted(p["sent_at"] for p in platform), rate),
            "numbers_sliding_1s_excess_max": max(
                (rate_profile(sorted(p["sent_at"] for p in platform if p["from"] == n), mps)["sliding_1s_excess"]
                 for n, mps in pool.items() if any(p["from"] == n for p in platform)), default=0.0),
            "carrier_lag_ms": carrier_lag(platform, messages),
        },
        "worst_number": _worst(by_number, pool),
        "numbers_seconds_above_mps": sum(rate_profile(sorted(ts), pool[n])["aligned_seconds_above_cap"]
                                         for n, ts in by_number.items()),
        "refused_by_carrier_429": refused_by_carrier,
        "mean_rate_steady": mean_rate(times, steady_spans),
        "mean_rate_before_pause": mean_rate(times, [(first + 10, pause_acknowledged)]),
        "mean_rate_after_resume": mean_rate(times, steady_spans[1:]) if resumed_first else None,
        "mean_rate_overall_excluding_pause": per(len(times), (last - first) - ((resumed_first or resume_requested)
                                                                                - pause_acknowledged)),
        "steady_spans_s": [round(b - a, 1) for a, b in steady_spans],
        "pause": {
            "sent_before_pause_request": sum(1 for t in times if t < pause_requested),
            "request_to_response_s": pause_acknowledged - pause_requested,
            "watched_s": pause_wait_s,
            "sends_after_response": len(after_pause),
            "last_send_after_response_s": (last_before_resume - pause_acknowledged) if last_before_resume else None,
            "waiting_while_paused": paused_view.get("progress", {}).get("waiting"),
            "status_while_paused": paused_view.get("status"),
            "resume_to_first_send_s": (resumed_first - resume_requested) if resumed_first else None,
        },
        "completion": {
            "status": final_view.get("status"),
            "recipients": len(recipients),
            "duplicate_recipients": sum(1 for n in recipients.values() if n > 1),
            "extra_texts": sum(n - 1 for n in recipients.values() if n > 1),
            "missing_recipients": len(expected - set(recipients)),
            "unexpected_recipients": len(set(recipients) - expected),
            "sent_before_resume": len(before),
            "sent_after_resume": len(after_resume),
            "progress": {k: progress.get(k) for k in ("total_contacts", "messages", "attempted", "sent", "delivered",
                                                      "undelivered", "failed", "skipped", "waiting", "done")},
        },
        "sends_per_10s": series(times, first),
    }


def _worst(by_number: dict[str, list[float]], pool: dict[str, float]) -> dict[str, Any] | None:
    if not by_number:
        return None
    number = max(by_number, key=lambda n: sliding_max(by_number[n])[0] - pool[n])
    peak, _ = sliding_max(by_number[number])
    counts = [len(ts) for ts in by_number.values()]
    return {"number": number, "mps": pool[number], "sliding_1s_max": peak,
            "sliding_1s_excess": max(0.0, peak - pool[number]),
            "sends_per_number_min": min(counts), "sends_per_number_max": max(counts)}


def _binding_variant(api: Api, carrier: str, *, rate: float, pool: dict[str, float], seconds: float,
                     first_contact: int) -> dict[str, Any]:
    """A pool whose first number is slower than the others: run for `seconds` after the first
    send, then cancel, and compare the pace with the campaign's rate and each number's MPS."""
    refused_before = _sim(carrier, "/_sim/stats")["rate_limited"]
    contacts = int(rate * (seconds + 60)) + 60
    made = _setup_campaign(api, name="Bench binding number", numbers=pool, contacts=contacts,
                           first_contact=first_contact, rate=rate)
    campaign_id = made["campaign_id"]
    preview = api.call("GET", f"/v1/campaigns/{campaign_id}/preview")["projected"]
    baseline = _sent_count(carrier)
    launched_at = time.time()
    api.call("POST", f"/v1/campaigns/{campaign_id}/launch", json={"start_at": "2020-01-01T00:00:00Z"})
    deadline = time.monotonic() + 120
    while _sent_count(carrier) == baseline:
        if time.monotonic() > deadline:
            raise RuntimeError("the variant campaign sent nothing in 120 s")
        time.sleep(POLL_S)
    first_seen = time.time()
    time.sleep(seconds)
    view = api.call("GET", f"/v1/campaigns/{campaign_id}")
    api.call("POST", f"/v1/campaigns/{campaign_id}/cancel")
    cancelled_at = time.time()
    time.sleep(3)
    messages = outbound(_sim(carrier, "/_sim/messages")["messages"], pool)
    times = sorted(epoch(m["date_created"]) for m in messages)
    window = [t for t in times if t <= cancelled_at]
    by_number: dict[str, list[float]] = defaultdict(list)
    for m in messages:
        by_number[m["from"]].append(epoch(m["date_created"]))
    first = times[0] if times else first_seen
    end = min(cancelled_at, times[-1]) if times else cancelled_at
    progress = view.get("progress", {})
    refused = _sim(carrier, "/_sim/stats")["rate_limited"] - refused_before
    return {
        "contacts_in_list": contacts,
        "rate_per_second": rate,
        "pool": pool,
        "preview_effective_rate_per_second": preview.get("effective_rate_per_second"),
        "preview_duration_minutes": preview.get("duration_minutes"),
        "launch_to_first_send_s": first - launched_at,
        "watched_s": cancelled_at - first,
        "sends": len(window),
        "mean_rate": mean_rate(window, [(first + 10, end)]),
        "campaign": rate_profile(window, rate),
        "per_number": {n: {**rate_profile(sorted(ts), pool[n]),
                           "mean_rate": mean_rate(ts, [(first + 10, end)])}
                       for n, ts in sorted(by_number.items())},
        "refused_by_carrier_429": refused,
        "released_when_cancelled": progress.get("messages"),
        "attempted_when_cancelled": progress.get("attempted"),
        "backlog_when_cancelled": (progress.get("messages") or 0) - (progress.get("attempted") or 0)
        - (progress.get("skipped") or 0) - (progress.get("waiting") or 0),
        "sends_per_10s": series(times, first),
    }
