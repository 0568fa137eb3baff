"""The AWS side of the local stack: moto in server mode and the resources the spec names."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from infra import spec

from .lambda_runtime import REGION, deployed_name

log = logging.getLogger("devstack.resources")

TABLE_NAME = spec.TABLE.name
RESOURCE_PREFIX = "sendline-"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
DLQ_RETENTION_S = 14 * 24 * 3600


def queue_name(name: str) -> str:
    return f"{RESOURCE_PREFIX}{name}"


def dlq_name(name: str) -> str:
    return f"{RESOURCE_PREFIX}{name}-dlq"


def aws_client(service: str, endpoint_url: str) -> Any:
    """A client for the local endpoint; its own session, so it is safe to create on any thread."""
    session = boto3.session.Session(
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    return session.client(
        service,
        endpoint_url=endpoint_url,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}),
    )


def client_factory(service: str, endpoint_url: str) -> Callable[[], Any]:
    return lambda: aws_client(service, endpoint_url)


# ---------------------------------------------------------------------------------------------
# moto


class _SerializedDynamoDb:
    """WSGI middleware running DynamoDB requests one at a time.

    moto evaluates a condition expression and writes the item in separate steps, and applies
    `ADD` to counters as read-modify-write, without a lock; DynamoDB does each atomically. The
    platform's invariants (at most one send, each status transition counted once) depend on
    that atomicity, so the local stack must provide it. It also makes the item-level rollback
    of `_item_level_transactions` safe.
    """

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            response = self.app(environ, start_response)
            try:
                return list(response)
            finally:
                if hasattr(response, "close"):
                    response.close()


def _item_level_transactions() -> None:
    """Makes moto's TransactWriteItems back up the items it touches instead of whole tables.

    moto deep-copies every table a transaction names before applying it, to roll back on a
    failed condition. That is O(table size) per write: with a few thousand items each status
    transition takes seconds and memory balloons. Backing up only the touched items gives the
    same all-or-nothing result, provided no other DynamoDB request runs meanwhile, which
    `_SerializedDynamoDb` guarantees.
    """
    import copy

    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models.dynamo_type import DynamoType

    backend = dynamodb_models.DynamoDBBackend
    original = backend.transact_write_items
    if getattr(original, "backs_up_items", False):
        return

    class TablesAreNotCopied:
        """Stands in for the `copy` module inside moto's DynamoDB models during a transaction."""

        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            if isinstance(value, dynamodb_models.Table):
                return value
            return copy.deepcopy(value, memo)

    def touched_items(self: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        backups = []
        for entry in transact_items:
            try:
                (op,) = entry.values()
                table = self.get_table(op["TableName"])
                attributes = op["Item"] if "Item" in op else op["Key"]
                hash_key = DynamoType(attributes[table.hash_key_attr])
                range_key = (
                    DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
                )
                current = table.get_item(hash_key, range_key)
            except Exception:
                continue  # moto itself rejects the malformed operation
            backups.append((table, hash_key, range_key, copy.deepcopy(current)))
        return backups

    def restore(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
        if range_key is None:
            if item is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = item
        elif item is None:
            table.items.get(hash_key, {}).pop(range_key, None)
        else:
            table.items[hash_key][range_key] = item

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backups = touched_items(self, transact_items)
        dynamodb_models.copy = TablesAreNotCopied()  # type: ignore[assignment]
        try:
            return original(self, transact_items)
        except Exception:
            for backup in reversed(backups):
                restore(*backup)
            raise
        finally:
            dynamodb_models.copy = copy  # type: ignore[assignment]

    transact_write_items.backs_up_items = True  # type: ignore[attr-defined]
    backend.transact_write_items = transact_write_items


def _partition_queries() -> None:
    """Makes moto's base-table Query read one partition, as DynamoDB does.

    moto answers a Query on the table by sorting every item of the table, so each read of a
    lead grew slower with the table (the demo's 600 leads made reads take tens of ms).
    Requests are serialised (see _SerializedDynamoDb), so swapping the item source is safe.
    """
    from moto.dynamodb.models.table import Table

    original = Table.query
    if getattr(original, "reads_one_partition", False):
        return

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        partition = list(self.items.get(hash_key, {}).values())
        self.all_items = lambda: partition
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    query.reads_one_partition = True  # type: ignore[attr-defined]
    Table.query = query


def _partition_index_queries() -> None:
    """Makes moto's Query on a global secondary index read one index partition, as DynamoDB does.

    moto answers an index Query by sorting the whole table and testing every item, so a
    campaign's reads (its waiting texts, the live campaigns, a listing page) grew slower with
    every contact and message stored: at a few thousand contacts they took a third of moto's
    time, and a 10,000-contact campaign ground to a halt. Here each table remembers, per index
    and partition value, the primary keys of the items that entered that partition. Every write
    path (PutItem, UpdateItem, their batch and transactional forms, a restore) ends in
    `Table.put_item` or `DynamoDBBackend.update_item`, which register the item's index keys
    afterwards; an item that later left the partition or was deleted is dropped when a query
    finds it there no more. Requests are serialised (see _SerializedDynamoDb).
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original_query = Table.query
    if getattr(original_query, "reads_one_index_partition", False):
        return

    def index_hash_attributes(table: Any) -> dict[str, str]:
        names = getattr(table, "_index_hash_attributes", None)
        if names is None:
            names = {}
            for index in table.global_indexes or []:
                hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
                if len(hashes) == 1:
                    names[index.name] = hashes[0]
            table._index_hash_attributes = names
        return names

    def members(table: Any) -> dict[str, dict[Any, dict[tuple[Any, Any], None]]]:
        found = getattr(table, "_index_members", None)
        if found is None:
            found = table._index_members = {}
        return found

    def register(table: Any, item: Any) -> None:
        if item is None:
            return
        for index_name, attribute in index_hash_attributes(table).items():
            value = item.attrs.get(attribute)
            if value is not None:
                partition = members(table).setdefault(index_name, {}).setdefault(value, {})
                partition[(item.hash_key, item.range_key)] = None

    def stored(table: Any, hash_key: Any, range_key: Any) -> Any:
        if table.range_key_attr:
            return table.items.get(hash_key, {}).get(range_key)
        return table.items.get(hash_key)

    def partition_items(table: Any, index_name: str, value: Any) -> list[Any]:
        attribute = index_hash_attributes(table)[index_name]
        partition = members(table).get(index_name, {}).get(value, {})
        items, gone = [], []
        for key in partition:
            item = stored(table, *key)
            current = item.attrs.get(attribute) if item is not None else None
            if current is not None and current == value:
                items.append(item)
            else:
                gone.append(key)
        for key in gone:
            del partition[key]
        return items

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        attribute = index_hash_attributes(self).get(index_name) if index_name else None
        if attribute is None:
            return original_query(self, hash_key, *args, **kwargs)
        conditions = dict(kwargs.get("hash_key_conditions") or [])
        value = conditions.get(attribute, hash_key)
        if value is None or set(conditions) - {attribute}:
            return original_query(self, hash_key, *args, **kwargs)
        candidates = partition_items(self, index_name, value)
        self.all_items = lambda: candidates
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    original_put = Table.put_item

    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = original_put(self, *args, **kwargs)
        register(self, item)
        return item

    original_update = DynamoDBBackend.update_item

    def update_item(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        item = original_update(self, table_name, *args, **kwargs)
        register(self.get_table(table_name), item)
        return item

    query.reads_one_index_partition = True  # type: ignore[attr-defined]
    Table.query = query
    Table.put_item = put_item
    DynamoDBBackend.update_item = update_item


def _cached_module_list() -> None:
    """moto lists its own package folder on every request to find a backend; once is enough."""
    import moto.backends
    import moto.moto_server.werkzeug_app as werkzeug_app

    modules = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules
    if hasattr(werkzeug_app, "list_of_moto_modules"):
        werkzeug_app.list_of_moto_modules = lambda: modules


def _cheap_sqs_receives() -> None:
    """Makes moto's ReceiveMessage cost one pass over the queue, not one pass per message.

    For every message it hands out, moto reads the queue's retention period through
    GetQueueAttributes, which counts every visible, delayed and in-flight message; and each
    message's visibility test converts the time through naive datetimes. A campaign keeps a
    minute of delayed sends in the queue, so each receive cost hundreds of passes over it.
    """
    from moto.sqs import models as sqs_models

    backend = sqs_models.SQSBackend
    if getattr(backend.is_message_valid_based_on_retention_period, "reads_the_attribute", False):
        return

    def within_retention(self: Any, queue_name: str, message: Any) -> bool:
        retention = float(self.get_queue(queue_name).message_retention_period)
        return retention + message.sent_timestamp / 1000 > time.time()

    within_retention.reads_the_attribute = True  # type: ignore[attr-defined]
    backend.is_message_valid_based_on_retention_period = within_retention
    sqs_models.Message.visible = property(lambda self: time.time() * 1000.0 > self.visible_at)
    sqs_models.Message.delayed = property(lambda self: time.time() * 1000.0 < self.delayed_until)


def _metric_data_by_namespace() -> None:
    """Makes moto's GetMetricData answer a query that names dimensions from its own namespace.

    moto drops the namespace from such a query, so AWS/Lambda `Errors` of a function would add
    up with any other namespace's `Errors` of the same dimension. Each namespace's queries are
    answered on their own here, from that namespace's datapoints; math expressions, which may
    read across namespaces, are left as moto answers them.
    """
    from moto.cloudwatch.models import CloudWatchBackend

    original = CloudWatchBackend.get_metric_data
    if getattr(original, "reads_one_namespace", False):
        return
    original_all = CloudWatchBackend.get_all_metrics
    reading = threading.local()

    def get_all_metrics(self: Any) -> Any:
        found = original_all(self)
        namespace = getattr(reading, "namespace", None)
        return found if namespace is None else [m for m in found if m.namespace == namespace]

    def get_metric_data(self: Any, queries: list[dict[str, Any]], start_time: Any, end_time: Any,
                        scan_by: str = "TimestampAscending") -> Any:
        if any("MetricStat" not in q for q in queries):
            return original(self, queries, start_time, end_time, scan_by)
        answered: dict[str, Any] = {}
        for namespace in sorted({q["MetricStat"]["Metric"]["Namespace"] for q in queries}):
            mine = [q for q in queries if q["MetricStat"]["Metric"]["Namespace"] == namespace]
            reading.namespace = namespace
            try:
                answered.update((r["id"], r) for r in original(self, mine, start_time, end_time, scan_by))
            finally:
                reading.namespace = None
        return [answered[q["Id"]] for q in queries if q["Id"] in answered]

    get_metric_data.reads_one_namespace = True  # type: ignore[attr-defined]
    CloudWatchBackend.get_all_metrics = get_all_metrics
    CloudWatchBackend.get_metric_data = get_metric_data


_tuned = False


def tune_moto() -> None:
    """moto as the local stack and the tests use it: each DynamoDB transaction backs up only
    the items it touches, a Query reads one partition of the table or of an index, and SQS
    receives cost one pass over the queue; and GetMetricData keeps to each query's namespace.
    Idempotent (each patch wraps the one before it, so they go on once); changes no result but
    the namespace fix, otherwise only the cost."""
    global _tuned
    if _tuned:
        return
    _tuned = True
    _item_level_transactions()
    _partition_queries()
    _partition_index_queries()
    _cached_module_list()
    _cheap_sqs_receives()
    _metric_data_by_namespace()


def start_moto(host: str = "127.0.0.1", port: int = 0,
               wrap: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None) -> tuple[Any, str]:
    """Starts moto's threaded server in this process; returns it and its URL. `wrap` adds
    WSGI middleware in front of moto."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    # werkzeug logs every request at INFO.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    tune_moto()

    class Server(ThreadedMotoServer):
        # ThreadedMotoServer's own entry point, with the app wrapped.
        def _server_entry(self) -> None:
            app: Callable[..., Any] = _SerializedDynamoDb(DomainDispatcherApplication(create_backend_app))
            if wrap is not None:
                app = wrap(app)
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    server = Server(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    url_host = "127.0.0.1" if bound_host in ("", "0.0.0.0", "::") else bound_host
    return server, f"http://{url_host}:{bound_port}"



QUEUED_PATH = "/_devstack/queued/"


class _QueuedMessagesRoute:
    """WSGI middleware answering `GET /_devstack/queued/<queue name>` with every message on the
    queue, in flight or not (what the state snapshot keeps), read from moto's backend: the SQS
    API cannot read a queue without receiving from it."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(QUEUED_PATH):
            return self.app(environ, start_response)
        from .state import queued_messages

        body = json.dumps(queued_messages(path[len(QUEUED_PATH):])).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _serve_moto_in_child(host: str, port: int, ready: Any, parent_pid: int,
                         metrics_every_s: float | None = None) -> None:
    """The moto process: serves until its parent stops it, or dies with the parent; publishes
    the queues' metrics every `metrics_every_s` seconds as SQS does (devstack/metrics.py)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us last

    def exit_with_parent() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=exit_with_parent, name="moto-parent-watch", daemon=True).start()
    try:
        _, url = start_moto(host, port, wrap=_QueuedMessagesRoute)
    except BaseException as exc:  # noqa: BLE001 - the parent reports it
        ready.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    if metrics_every_s:
        from .metrics import Every, publish_queue_ages

        Every(publish_queue_ages, metrics_every_s, "sqs-metrics").start()
    ready.send(("ready", url))
    threading.Event().wait()


class MotoProcess:
    """moto's server in a process of its own.

    The functions, the pollers and the API emulator share one interpreter; moto in the same
    one took most of its time (every AWS call is parsed and answered in Python on both ends).
    In its own process the AWS side has the second core to itself."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, start_timeout_s: float = 60,
                 metrics_every_s: float | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self._process = context.Process(target=_serve_moto_in_child,
                                        args=(host, port, theirs, os.getpid(), metrics_every_s),
                                        name="moto", daemon=True)
        self._process.start()
        if not ours.poll(start_timeout_s):
            self.stop()
            raise RuntimeError(f"moto did not start within {start_timeout_s:g} s")
        kind, value = ours.recv()
        if kind != "ready":
            self.stop()
            raise RuntimeError(f"moto did not start: {value}")
        self.url: str = value

    def queued_messages(self, queue_name: str) -> list[dict[str, Any]]:
        import urllib.request

        with urllib.request.urlopen(f"{self.url}{QUEUED_PATH}{queue_name}", timeout=60) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)


# ---------------------------------------------------------------------------------------------
# Resources from the spec


@dataclass(frozen=True)
class QueueResources:
    name: str  # the spec name, e.g. "sends"
    url: str
    arn: str
    dlq_url: str
    dlq_arn: str

    @property
    def queue_name(self) -> str:
        return queue_name(self.name)

    @property
    def dlq_name(self) -> str:
        return dlq_name(self.name)


def create_table(dynamodb: Any, table: spec.Table = spec.TABLE) -> str:
    """Creates the table (idempotent): pk/sk, every GSI with its projection, TTL."""
    name = table.name
    key_attributes = {table.pk, table.sk}
    for index in table.indexes:
        key_attributes.update((index.pk, index.sk))
    try:
        dynamodb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": a, "AttributeType": "S"} for a in sorted(key_attributes)
            ],
            KeySchema=[
                {"AttributeName": table.pk, "KeyType": "HASH"},
                {"AttributeName": table.sk, "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": index.name,
                    "KeySchema": [
                        {"AttributeName": index.pk, "KeyType": "HASH"},
                        {"AttributeName": index.sk, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": index.projection},
                }
                for index in table.indexes
            ],
        )
    except dynamodb.exceptions.ResourceInUseException:
        return name
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1})
    dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
    )
    return name


def create_queue(sqs: Any, queue: spec.Queue) -> QueueResources:
    """Creates `sendline-<name>` and its DLQ with the spec's redrive and visibility (idempotent)."""
    dlq_url = sqs.create_queue(
        QueueName=dlq_name(queue.name),
        Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_S)},
    )["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq_url)
    url = sqs.create_queue(
        QueueName=queue_name(queue.name),
        Attributes={
            "VisibilityTimeout": str(queue.visibility_timeout_s),
            "MessageRetentionPeriod": str(queue.retention_s),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.max_receive_count}
            ),
        },
    )["QueueUrl"]
    return QueueResources(queue.name, url, _queue_arn(sqs, url), dlq_url, dlq_arn)


def _queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


def bucket_name(bucket: spec.Bucket = spec.UPLOADS) -> str:
    return f"sendline-{bucket.name}"


def create_bucket(s3: Any, bucket: spec.Bucket, queues: dict[str, QueueResources]) -> str:
    """The uploads bucket, announcing new objects under its prefix on its queue, as on AWS."""
    name = bucket_name(bucket)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if name not in existing:
        s3.create_bucket(Bucket=name)
    s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration={"QueueConfigurations": [{
        "QueueArn": queues[bucket.notify_queue].arn,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": bucket.notify_prefix}]}},
    }]})
    return name


def create_resources(
    dynamodb: Any,
    sqs: Any,
    s3: Any | None = None,
    *,
    table: spec.Table = spec.TABLE,
    queues: Iterable[spec.Queue] = spec.QUEUES,
) -> dict[str, QueueResources]:
    """The table, every queue and (given an S3 client) the uploads bucket in the spec;
    returns the queues by spec name."""
    create_table(dynamodb, table)
    created = {q.name: create_queue(sqs, q) for q in queues}
    if s3 is not None:
        create_bucket(s3, spec.UPLOADS, created)
    return created


# ---------------------------------------------------------------------------------------------
# Environment


def aws_environment(endpoint_url: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        **DUMMY_CREDENTIALS,
    }


def function_environment(
    *,
    endpoint_url: str,
    queues: dict[str, QueueResources],
    twilio_api_base: str,
    twilio_account_sid: str,
    twilio_auth_token: str,
    public_api_url: str,
    operator_token_sha256: str,
    phone_intel_api_key: str = "sim-lookup-key",
    table_name: str = TABLE_NAME,
) -> dict[str, str]:
    """Everything `docs/contracts.md` says a handler reads, plus Powertools settings."""
    environment = aws_environment(endpoint_url)
    environment.update(
        {
            "TABLE_NAME": table_name,
            "UPLOADS_BUCKET": bucket_name(),
            "PHONE_INTEL_API_BASE": twilio_api_base,
            "PHONE_INTEL_API_KEY": phone_intel_api_key,
            "TWILIO_LOOKUP_API_BASE": twilio_api_base,
            "TWILIO_API_BASE": twilio_api_base,
            "TWILIO_ACCOUNT_SID": twilio_account_sid,
            "TWILIO_AUTH_TOKEN": twilio_auth_token,
            "PUBLIC_API_URL": public_api_url,
            "OPERATOR_TOKEN_SHA256": operator_token_sha256,
            "POWERTOOLS_SERVICE_NAME": "sendline",
            "POWERTOOLS_METRICS_NAMESPACE": "Sendline",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_DEV": "false",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )
    for name, queue in queues.items():
        environment[spec.queue_url_env(name)] = queue.url
        environment[spec.dlq_url_env(name)] = queue.dlq_url
    # For the functions that operate the queues (Worker Health reads the others' metrics).
    environment[spec.FUNCTION_NAMES_ENV] = json.dumps(
        {f.name: deployed_name(f.name) for f in spec.FUNCTIONS if not f.operates_queues}, sort_keys=True
    )
    return environment
