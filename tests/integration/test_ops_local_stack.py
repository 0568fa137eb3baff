"""Worker Health and the dead-letter tooling on the local stack: the figures come from what its
invoker and its moto publish, read by the same ops_api code as on AWS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack import resources
from devstack.pollers import LONG_POLL_SECONDS
from tests.polling import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
POISON = '{"to": "+12125550142", "body": "Hi Ann, your quote"}'




@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A local stack of its own, publishing its metrics every second."""
    command = [sys.executable, "-m", "devstack", "--api-port", "0", "--carrier-port", "0", "--moto-port", "0",
               "--state-dir", str(tmp_path), "--tick-seconds", "60", "--metrics-seconds", "1",
               "--quiet-hours", "devstack/quiet_hours_any_time.json", "--quiet"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with open(tmp_path / "process.out", "wb") as output:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    try:
        def started() -> dict[str, Any] | None:
            assert process.poll() is None, (tmp_path / "process.out").read_text()
            path = tmp_path / "stack.json"
            info = json.loads(path.read_text()) if path.exists() else {}
            return info if info.get("pid") == process.pid else None

        yield {**wait_for(started, 60, what="the stack starts"), "state_dir": tmp_path}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def dlq_cli(stack: dict[str, Any], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "scripts.dlq", "--state-dir", str(stack["state_dir"]), *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
                          env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_worker_health_counts_the_send_worker_and_the_dead_letters_of_the_local_stack(stack):
    api = httpx.Client(base_url=stack["api_url"], timeout=15,
                       headers={"Authorization": f"Bearer {stack['admin_token']}"})

    def health() -> dict[str, Any]:
        found = api.get("/v1/ops/worker-health")
        assert found.status_code == 200, found.text
        body = found.json()
        return {"queues": {q["name"]: q for q in body["queues"]}, "functions": {f["name"]: f for f in body["functions"]}}

    # Given a lead whose first text was sent
    flow = api.post("/v1/flows", json={"name": "Ops", "from_number": "+12125550100", "call_number": "+18885550123",
                                       "initial_message": "Hi {first_name}, call {call_number}."}).json()
    lead = api.post("/v1/leads", headers={"X-API-Key": stack["api_key"]},
                    json={"flow_id": flow["flow_id"], "phone": "+13125550142", "first_name": "Ann"}).json()
    wait_for(lambda: api.get(f"/v1/leads/{lead['lead_id']}").json()["messages"][0]["status"] != "queued",
             what="the text leaves the queue")

    # Then Worker Health counts the worker's one invocation, and the lead API's
    wait_for(lambda: health()["functions"]["send_worker"]["invocations"], what="send_worker's metrics")
    figures = health()["functions"]
    assert figures["send_worker"] == {"name": "send_worker", "function_name": "sendline-send_worker",
                                      "invocations": 1, "errors": 0, "throttles": 0, "error_rate": 0.0,
                                      "status": "ok"}
    assert (figures["lead_submit"]["invocations"], figures["lead_submit"]["errors"]) == (1, 0)

    # Given the sends queue redelivering after 1 s and giving up after one receive
    sqs = resources.aws_client("sqs", stack["moto_url"])
    sends = sqs.get_queue_url(QueueName="sendline-sends")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName="sendline-sends-dlq")["QueueUrl"],
                                       AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=sends, Attributes={
        "VisibilityTimeout": "1", "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})})
    # A receive takes the queue's visibility timeout when it starts: the pollers' long polls
    # under way (LONG_POLL_SECONDS) must end first.
    time.sleep(LONG_POLL_SECONDS + 0.5)

    # When a message the worker cannot read arrives
    sqs.send_message(QueueUrl=sends, MessageBody=POISON)

    # Then it lands in the dead-letter queue, and Worker Health shows it and the worker's second run
    wait_for(lambda: health()["queues"]["sends"]["dead_letters"], what="the poison message is dead-lettered")
    wait_for(lambda: health()["functions"]["send_worker"]["invocations"] == 2, what="the second invocation's metrics")
    found = health()
    assert found["queues"]["sends"] == {"name": "sends", "queue_name": "sendline-sends", "visible": 0, "in_flight": 0,
                                        "delayed": 0, "oldest_age_s": None, "dead_letters": 1, "status": "dead_letters"}
    # A record the batch reports as failed is not a Lambda error.
    assert (found["functions"]["send_worker"]["errors"], found["functions"]["send_worker"]["status"]) == (0, "ok")

    # And the CLI lists it and shows it masked, as the operator API does
    assert dlq_cli(stack, "list") == ("imports    sendline-imports-dlq                      0 message(s)\n"
                                      "sends      sendline-sends-dlq                        1 message(s)\n")
    shown = json.loads(dlq_cli(stack, "show", "sends", "--json"))  # options go before or after the command
    assert [(m["message_id"], m["source_queue"], m["body"]) for m in shown["messages"]] == [
        (None, "sendline-sends", {"to": "+1212***0142", "body": "[18 characters hidden]"})]
    inspected = api.get("/v1/ops/dead-letters/sends").json()["messages"]
    assert [(m["body"], m["receive_count"]) for m in inspected] == [(shown["messages"][0]["body"], 3)]
