"""What the local stack keeps in its state folder across restarts.

- `secrets.json`: the operator token, the demo API key and the carrier account credentials,
  generated once and then reused, so a restarted stack accepts the same tokens.
- `snapshot.json`: every DynamoDB item and every message still on a queue (dead-letter queues
  included), written atomically on clean shutdown and periodically while running, restored on
  start before anything consumes the queues.
- `stack.json`: how to reach the running stack (written by `devstack.stack`).

Items are kept in the DynamoDB wire format (`{"N": "1.50"}`), so every type comes back exactly;
binary values are base64 in the file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .lambda_runtime import ACCOUNT_ID, REGION

log = logging.getLogger("devstack.state")

SECRETS_FILE = "secrets.json"
SNAPSHOT_FILE = "snapshot.json"
STACK_FILE = "stack.json"
SNAPSHOT_FORMAT = 1
# SQS refuses a DelaySeconds above 15 minutes.
MAX_DELAY_S = 900


# ---------------------------------------------------------------------------------------------
# Files


def write_json_atomic(path: Path, data: Any, *, private: bool = False) -> None:
    """Writes `data` so a reader (or a crash) never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o600 if private else 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


# ---------------------------------------------------------------------------------------------
# Secrets


@dataclass(frozen=True)
class Secrets:
    operator_token: str
    api_key: str
    twilio_account_sid: str
    twilio_auth_token: str

    @property
    def operator_token_sha256(self) -> str:
        return hashlib.sha256(self.operator_token.encode()).hexdigest()

    @classmethod
    def generate(cls) -> Secrets:
        return cls(
            operator_token=f"sl_op_{secrets.token_urlsafe(32)}",
            api_key=f"sl_demo_{secrets.token_urlsafe(24)}",
            twilio_account_sid=f"AC{secrets.token_hex(16)}",
            twilio_auth_token=secrets.token_hex(16),
        )


def load_or_create_secrets(state_dir: Path) -> Secrets:
    path = Path(state_dir) / SECRETS_FILE
    stored = read_json(path)
    if stored is not None:
        return Secrets(**{name: stored[name] for name in Secrets.__dataclass_fields__})
    created = Secrets.generate()
    write_json_atomic(path, asdict(created), private=True)
    return created


# ---------------------------------------------------------------------------------------------
# DynamoDB items in the wire format, made JSON-safe


def _encode_value(value: Mapping[str, Any]) -> dict[str, Any]:
    (kind, inner), = value.items()
    if kind == "B":
        return {"B": base64.b64encode(inner).decode("ascii")}
    if kind == "BS":
        return {"BS": [base64.b64encode(v).decode("ascii") for v in inner]}
    if kind == "M":
        return {"M": encode_item(inner)}
    if kind == "L":
        return {"L": [_encode_value(v) for v in inner]}
    return {kind: inner}


def _decode_value(value: Mapping[str, Any]) -> dict[str, Any]:
    (kind, inner), = value.items()
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(v) for v in inner]}
    if kind == "M":
        return {"M": decode_item(inner)}
    if kind == "L":
        return {"L": [_decode_value(v) for v in inner]}
    return {kind: inner}


def encode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _encode_value(value) for name, value in item.items()}


def decode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _decode_value(value) for name, value in item.items()}


def scan_items(dynamodb: Any, table_name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=table_name, ConsistentRead=True
    ):
        items.extend(page.get("Items", []))
    return items


def put_items(dynamodb: Any, table_name: str, items: Iterable[Mapping[str, Any]]) -> int:
    pending = [{"PutRequest": {"Item": dict(item)}} for item in items]
    written = len(pending)
    while pending:
        chunk, pending = pending[:25], pending[25:]
        for attempt in range(10):
            unprocessed = dynamodb.batch_write_item(RequestItems={table_name: chunk}).get(
                "UnprocessedItems", {}
            )
            chunk = unprocessed.get(table_name, [])
            if not chunk:
                break
            time.sleep(0.05 * (attempt + 1))
        else:
            raise RuntimeError(f"could not restore {len(chunk)} item(s) into {table_name}")
    return written


# ---------------------------------------------------------------------------------------------
# Queued messages


def queued_messages(
    queue_name: str, *, account_id: str = ACCOUNT_ID, region: str = REGION
) -> list[dict[str, Any]]:
    """Every message on a queue of the in-process moto server, in flight or not.

    The SQS API cannot read a queue without receiving (which counts towards the redrive and
    hides the message from consumers), so the snapshot reads moto's backend directly.
    """
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[account_id][region].queues.get(queue_name)
    if queue is None:
        return []
    now_ms = time.time() * 1000
    saved = []
    for message in list(queue._messages):
        attributes: dict[str, dict[str, str]] = {}
        for name, attribute in (message.message_attributes or {}).items():
            entry = {"DataType": attribute["DataType"]}
            if attribute.get("StringValue") is not None:
                entry["StringValue"] = attribute["StringValue"]
            if attribute.get("BinaryValue") is not None:
                binary = attribute["BinaryValue"]
                if isinstance(binary, str):
                    binary = base64.b64decode(binary)
                entry["BinaryValue"] = base64.b64encode(binary).decode("ascii")
            attributes[name] = entry
        saved.append(
            {
                "message_id": message.id,
                "body": message.body,
                "attributes": attributes,
                "sent_timestamp": message.sent_timestamp,
                "receive_count": message.approximate_receive_count,
                "delay_s": max(0, int((message.delayed_until - now_ms + 999) // 1000)),
            }
        )
    return saved


def send_messages(sqs: Any, queue_url: str, messages: Iterable[Mapping[str, Any]]) -> int:
    sent = 0
    for message in messages:
        attributes = {}
        for name, attribute in message.get("attributes", {}).items():
            entry: dict[str, Any] = {"DataType": attribute["DataType"]}
            if "StringValue" in attribute:
                entry["StringValue"] = attribute["StringValue"]
            if "BinaryValue" in attribute:
                entry["BinaryValue"] = base64.b64decode(attribute["BinaryValue"])
            attributes[name] = entry
        request: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": message["body"]}
        if attributes:
            request["MessageAttributes"] = attributes
        delay = min(MAX_DELAY_S, int(message.get("delay_s") or 0))
        if delay:
            request["DelaySeconds"] = delay
        sqs.send_message(**request)
        sent += 1
    return sent


# ---------------------------------------------------------------------------------------------
# Snapshots


def take_snapshot(
    dynamodb: Any,
    table_name: str,
    queue_names: Iterable[str],
    *,
    read_queue: Callable[[str], list[dict[str, Any]]] = queued_messages,
) -> dict[str, Any]:
    return {
        "format": SNAPSHOT_FORMAT,
        "saved_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "table": {
            "name": table_name,
            "items": [encode_item(item) for item in scan_items(dynamodb, table_name)],
        },
        "queues": {name: read_queue(name) for name in queue_names},
    }


@dataclass(frozen=True)
class RestoreSummary:
    items: int
    messages: dict[str, int]


def restore_snapshot(
    snapshot: Mapping[str, Any], dynamodb: Any, sqs: Any, queue_urls: Mapping[str, str]
) -> RestoreSummary:
    """Puts a snapshot's items and messages back; `queue_urls` maps queue names to URLs."""
    if snapshot.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"unknown snapshot format {snapshot.get('format')!r}")
    table = snapshot["table"]
    items = put_items(dynamodb, table["name"], (decode_item(i) for i in table["items"]))
    messages: dict[str, int] = {}
    for name, queued in snapshot.get("queues", {}).items():
        url = queue_urls.get(name)
        if url is None:
            if queued:
                log.warning("snapshot holds %d message(s) for unknown queue %s", len(queued), name)
            continue
        messages[name] = send_messages(sqs, url, queued)
    return RestoreSummary(items, messages)


class StateStore:
    """The snapshot file of one state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / SNAPSHOT_FILE

    def save(self, snapshot: Mapping[str, Any]) -> None:
        write_json_atomic(self.path, snapshot)

    def load(self) -> dict[str, Any] | None:
        return read_json(self.path)


class PeriodicSnapshots:
    """Calls `save` every `every_s` seconds on its own thread until stopped."""

    def __init__(self, save: Callable[[], None], every_s: float = 30) -> None:
        self._save = save
        self.every_s = every_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="snapshots", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(self.every_s):
            try:
                self._save()
            except Exception:
                log.exception("periodic snapshot failed")


class ObjectMirror:
    """The uploads bucket's files, kept in the state folder so import reports (and files not
    yet imported) survive a restart. Files are copied once; a file already mirrored with the
    same size is not copied again."""

    def __init__(self, state_dir: Path) -> None:
        self.root = Path(state_dir) / "uploads"

    def save(self, s3: Any, bucket: str) -> int:
        copied = 0
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            for entry in page.get("Contents", []):
                path = self.root / entry["Key"]
                if path.exists() and path.stat().st_size == entry["Size"]:
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_name(path.name + ".part")
                s3.download_file(bucket, entry["Key"], str(partial))
                os.replace(partial, path)
                copied += 1
        return copied

    def restore(self, s3: Any, bucket: str) -> int:
        """Put the mirrored files back. Call before the bucket's notifications are set up, so
        restoring a file does not look like a new upload."""
        if not self.root.is_dir():
            return 0
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)
        restored = 0
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.endswith(".part"):
                s3.upload_file(str(path), bucket, path.relative_to(self.root).as_posix())
                restored += 1
        return restored
