"""The one description of Sendline's wiring: functions, their triggers, queues, the table.

Both the CDK stack (`infra/stack.py`) and the local stack (`devstack/`) are built by looping
over this module, so a route, queue or schedule exists in exactly one place. It imports nothing
from CDK or boto3 on purpose: the local stack and the tests read it without either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Auth = Literal["api_key", "operator", "api_key_or_operator", "twilio_signature", "dispatch"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    auth: Auth


@dataclass(frozen=True)
class Queue:
    name: str
    visibility_timeout_s: int
    max_receive_count: int
    retention_s: int = 4 * 24 * 3600
    # Alarm when the oldest message has waited longer than this (None: no such alarm).
    oldest_message_alarm_s: int | None = None


@dataclass(frozen=True)
class QueueTrigger:
    queue: str
    batch_size: int
    max_concurrency: int
    max_batching_window_s: int = 0


@dataclass(frozen=True)
class Schedule:
    expression: str  # EventBridge syntax, e.g. "rate(1 minute)"
    every_s: int  # the same period in seconds, for the local ticker


@dataclass(frozen=True)
class Function:
    name: str
    description: str
    memory_mb: int = 512
    timeout_s: int = 10
    routes: tuple[Route, ...] = ()
    queue: QueueTrigger | None = None
    schedule: Schedule | None = None
    # Environment the function needs: names of queues whose URLs it publishes to.
    publishes_to: tuple[str, ...] = ()
    needs_provider: bool = False
    # Reads and writes import files and reports in the uploads bucket.
    uses_uploads: bool = False
    # Looks recipients' phones up with the validation providers.
    needs_validation: bool = False
    # Reads how many messages wait in each dead-letter queue (the Command Center's alert).
    watches_dead_letters: bool = False
    # Operates the queues: reads every queue's and dead-letter queue's depth and oldest message
    # age, lists, inspects and redrives dead letters, and reads the other functions' error and
    # throttle metrics. Given every queue's URL (`<NAME>_QUEUE_URL`), every dead-letter queue's
    # (`<NAME>_DLQ_URL`) and the deployed names of the other functions (FUNCTION_NAMES_ENV).
    operates_queues: bool = False
    # What the function's code does with the table: "read" gets no write action at all (GetItem,
    # Query, BatchGetItem...), so only a function whose every code path only reads may say so;
    # "none" gets neither the table's name nor any access to it.
    table_access: Literal["none", "read", "read_write"] = "read_write"
    # With `uses_uploads`: "write" only stores files and hands out upload URLs (s3:PutObject);
    # "read_write" also reads them back (s3:GetObject).
    uploads_access: Literal["write", "read_write"] = "read_write"
    # Concurrency reserved for the function in the production stage (None: none reserved).
    reserved_concurrency: int | None = None


@dataclass(frozen=True)
class Index:
    name: str
    pk: str
    sk: str
    # What the index copies of each item: "ALL", or "KEYS_ONLY" (the table's and the index's keys).
    projection: Literal["ALL", "KEYS_ONLY"] = "ALL"


@dataclass(frozen=True)
class Table:
    name: str
    pk: str
    sk: str
    ttl_attribute: str
    indexes: tuple[Index, ...] = field(default_factory=tuple)


TABLE = Table(
    name="sendline",
    pk="pk",
    sk="sk",
    ttl_attribute="expires_at",
    indexes=(
        # gsi1: listings (flows newest first, a flow's messages by last change).
        Index(name="gsi1", pk="gsi1pk", sk="gsi1sk"),
        # due: sparse index of messages waiting for their send time, sharded by message.
        Index(name="due", pk="due_pk", sk="due_sk"),
        # log: every message by the UTC hour it was created, newest first (the message log).
        # Keys only: a status change writes nothing to it, and rows are read from the table.
        Index(name="log", pk="log_pk", sk="log_sk", projection="KEYS_ONLY"),
    ),
)

@dataclass(frozen=True)
class Bucket:
    name: str
    # Objects created under this prefix are announced on this queue (S3 event notifications).
    notify_prefix: str
    notify_queue: str
    # Unfinished uploads and old files are removed after this many days.
    expire_days: int = 30


SEND_WORKER_TIMEOUT_S = 30
IMPORT_TIMEOUT_S = 900

QUEUES: tuple[Queue, ...] = (
    # Visibility timeout is six times the consumer's timeout, as AWS recommends for SQS triggers.
    # A text waiting more than five minutes means the workers are stuck or far behind.
    Queue(name="sends", visibility_timeout_s=6 * SEND_WORKER_TIMEOUT_S, max_receive_count=8,
          oldest_message_alarm_s=300),
    # One message per uploaded contacts file; a file that fails three times goes to the DLQ.
    Queue(name="imports", visibility_timeout_s=6 * IMPORT_TIMEOUT_S, max_receive_count=3),
)

UPLOADS = Bucket(name="uploads", notify_prefix="imports/", notify_queue="imports")

FUNCTIONS: tuple[Function, ...] = (
    Function(
        name="lead_submit",
        description="Integrators post a lead; it is stored and its first text queued.",
        routes=(Route("POST", "/v1/leads", "api_key"),),
        publishes_to=("sends",),
    ),
    Function(
        name="legacy_api",
        description="The legacy /api.php?action=... routes integrators already call.",
        routes=(
            Route("GET", "/api.php", "api_key"),
            Route("POST", "/api.php", "api_key"),
        ),
        publishes_to=("sends",),
    ),
    Function(
        name="operator_api",
        description="Operator API: flows, leads, integrator keys, DNC list.",
        routes=(
            # Any /v1 path no other route serves: answered with the documented 404 (a misspelt
            # path gets the same error shape as everything else, not the gateway's own). Only
            # under /v1: the local stack serves the dashboard's files from the other paths.
            Route("ANY", "/v1/{proxy+}", "operator"),
            Route("POST", "/v1/flows", "operator"),
            Route("GET", "/v1/flows", "operator"),
            Route("GET", "/v1/flows/{flow_id}", "operator"),
            Route("POST", "/v1/flows/{flow_id}/pause", "operator"),
            Route("POST", "/v1/flows/{flow_id}/resume", "operator"),
            Route("GET", "/v1/flows/{flow_id}/activity", "operator"),
            Route("GET", "/v1/leads/{lead_id}", "operator"),
            Route("POST", "/v1/api-keys", "operator"),
            Route("GET", "/v1/api-keys", "operator"),
            Route("DELETE", "/v1/api-keys/{key_id}", "operator"),
            Route("POST", "/v1/dnc", "api_key_or_operator"),
            Route("GET", "/v1/dnc/{phone}", "api_key_or_operator"),
            Route("DELETE", "/v1/dnc/{phone}", "operator"),
            Route("GET", "/v1/dnc", "operator"),
            Route("POST", "/v1/dnc/imports", "operator"),
            Route("GET", "/v1/dnc/imports", "operator"),
            Route("GET", "/v1/dnc/export.csv", "operator"),
            Route("GET", "/v1/inbound", "operator"),
            Route("GET", "/v1/inbound/by-number", "operator"),
            Route("GET", "/v1/consent/{phone}", "operator"),
        ),
        publishes_to=("sends",),
        # DNC files are imported from the uploads bucket, like contact files; contacts_import
        # reads them, this function only stores them or hands out the upload URL.
        uses_uploads=True,
        uploads_access="write",
    ),
    Function(
        name="campaign_api",
        description="Operator API for bulk sending: brands, numbers, templates, lists, campaigns, quick send.",
        routes=(
            Route("POST", "/v1/brands", "operator"),
            Route("GET", "/v1/brands", "operator"),
            Route("GET", "/v1/brands/{brand_id}", "operator"),
            Route("PATCH", "/v1/brands/{brand_id}", "operator"),
            Route("DELETE", "/v1/brands/{brand_id}", "operator"),
            Route("POST", "/v1/numbers", "operator"),
            Route("GET", "/v1/numbers", "operator"),
            Route("GET", "/v1/numbers/{number}", "operator"),
            Route("PATCH", "/v1/numbers/{number}", "operator"),
            Route("DELETE", "/v1/numbers/{number}", "operator"),
            Route("POST", "/v1/templates", "operator"),
            Route("GET", "/v1/templates", "operator"),
            Route("GET", "/v1/templates/{template_id}", "operator"),
            Route("PATCH", "/v1/templates/{template_id}", "operator"),
            Route("POST", "/v1/contact-lists", "operator"),
            Route("GET", "/v1/contact-lists", "operator"),
            Route("GET", "/v1/contact-lists/{list_id}", "operator"),
            Route("GET", "/v1/contact-lists/{list_id}/contacts", "operator"),
            Route("POST", "/v1/contact-lists/{list_id}/imports", "operator"),
            Route("GET", "/v1/contact-lists/{list_id}/imports", "operator"),
            Route("GET", "/v1/imports/{import_id}", "operator"),
            Route("GET", "/v1/imports/{import_id}/report.csv", "operator"),
            Route("POST", "/v1/campaigns", "operator"),
            Route("GET", "/v1/campaigns", "api_key_or_operator"),
            Route("GET", "/v1/campaigns/{campaign_id}", "api_key_or_operator"),
            Route("PATCH", "/v1/campaigns/{campaign_id}", "operator"),
            Route("GET", "/v1/campaigns/{campaign_id}/preview", "operator"),
            Route("GET", "/v1/campaigns/{campaign_id}/messages", "operator"),
            Route("POST", "/v1/campaigns/{campaign_id}/launch", "operator"),
            Route("POST", "/v1/campaigns/{campaign_id}/pause", "operator"),
            Route("POST", "/v1/campaigns/{campaign_id}/resume", "operator"),
            Route("POST", "/v1/campaigns/{campaign_id}/cancel", "operator"),
            Route("GET", "/v1/settings", "operator"),
            Route("PATCH", "/v1/settings", "operator"),
            Route("GET", "/v1/alerts", "operator"),
            Route("POST", "/v1/alerts/{alert_id}/acknowledge", "operator"),
            Route("POST", "/v1/messages", "operator"),
            Route("POST", "/v1/messages/preview", "api_key_or_operator"),
            Route("GET", "/v1/messages/{message_id}", "operator"),
        ),
        publishes_to=("sends",),
        uses_uploads=True,
    ),
    Function(
        name="contacts_import",
        description="Streams an uploaded CSV into its contact list or onto the DNC list and writes the import report.",
        memory_mb=512,
        timeout_s=IMPORT_TIMEOUT_S,
        queue=QueueTrigger(queue="imports", batch_size=1, max_concurrency=2),
        uses_uploads=True,
    ),
    Function(
        name="campaign_dispatcher",
        description="Starts due campaigns and releases each minute's contacts to the sends queue at their pace.",
        timeout_s=60,
        schedule=Schedule(expression="rate(1 minute)", every_s=60),
        publishes_to=("sends",),
    ),
    Function(
        name="auto_pause",
        description="Pauses running campaigns whose error rate passed their threshold, and raises an alert.",
        timeout_s=30,
        schedule=Schedule(expression="rate(1 minute)", every_s=60),
    ),
    Function(
        name="reports",
        description="Command Center, analytics, P&L and balance from the counters; never scans.",
        watches_dead_letters=True,
        routes=(
            Route("GET", "/v1/stats", "api_key_or_operator"),
            Route("GET", "/v1/reports/command-center", "operator"),
            *(Route("GET", f"/v1/reports/{name}", "operator") for name in (
                "delivery-trend", "carriers", "heatmap", "creatives", "error-codes", "numbers", "volume", "pnl",
                "pnl.csv")),
            Route("GET", "/v1/reports/messages", "operator"),
            Route("GET", "/v1/reports/messages.csv", "operator"),
            Route("GET", "/v1/billing/balance", "operator"),
            Route("POST", "/v1/billing/top-ups", "operator"),
            Route("GET", "/v1/billing/top-ups", "operator"),
        ),
    ),
    Function(
        name="ops_api",
        description="Worker health (queue depths and ages, dead letters, function errors and throttles) and dead-letter tooling.",
        # A redrive moves up to a few hundred messages within API Gateway's 30 s limit.
        timeout_s=29,
        operates_queues=True,
        # Queues and metrics only: no code path of this function reads or writes the table.
        table_access="none",
        routes=(
            Route("GET", "/v1/ops/worker-health", "operator"),
            Route("GET", "/v1/ops/dead-letters", "operator"),
            Route("GET", "/v1/ops/dead-letters/{queue}", "operator"),
            Route("POST", "/v1/ops/dead-letters/{queue}/redrive", "operator"),
        ),
    ),
    Function(
        name="dlr_webhook",
        description="Carrier status callbacks and inbound texts, signature-checked.",
        routes=(
            Route("POST", "/webhooks/twilio/status", "twilio_signature"),
            Route("POST", "/webhooks/twilio/inbound", "twilio_signature"),
        ),
        # A brand's keyword can forward the sender as a lead, whose first text is queued.
        publishes_to=("sends",),
        needs_provider=True,
    ),
    Function(
        name="send_worker",
        description="Sends one queued message through the carrier, at most once.",
        timeout_s=SEND_WORKER_TIMEOUT_S,
        queue=QueueTrigger(queue="sends", batch_size=10, max_concurrency=5),
        # As many as the queue trigger may run, kept free for the sender whatever else is busy.
        reserved_concurrency=5,
        publishes_to=("sends",),
        needs_provider=True,
        needs_validation=True,
    ),
    Function(
        name="drip_scheduler",
        description="Finds messages whose send time has come and queues them.",
        timeout_s=60,
        schedule=Schedule(expression="rate(1 minute)", every_s=60),
        publishes_to=("sends",),
    ),
)


def function(name: str) -> Function:
    return next(f for f in FUNCTIONS if f.name == name)


def queue(name: str) -> Queue:
    return next(q for q in QUEUES if q.name == name)


def queue_url_env(name: str) -> str:
    """Environment variable holding a queue's URL, e.g. SENDS_QUEUE_URL."""
    return f"{name.upper()}_QUEUE_URL"


# JSON object: each other function's name in this spec -> its deployed name (for its metrics).
FUNCTION_NAMES_ENV = "FUNCTION_NAMES"


def dlq_url_env(name: str) -> str:
    """Environment variable holding a queue's dead-letter queue URL, e.g. SENDS_DLQ_URL."""
    return f"{name.upper()}_DLQ_URL"
