"""Execution environments: one invocation per handler copy at a time; Lambda's context, errors."""

from __future__ import annotations

import sys
import textwrap
import threading
from pathlib import Path

import pytest

from devstack.lambda_runtime import LambdaFunction, concurrency_for
from infra import spec


def write_handler(folder: Path, source: str, name: str = "handler.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def test_context_carries_what_the_python_runtime_provides(tmp_path: Path) -> None:
    handler = write_handler(
        tmp_path,
        """
        def handler(event, context):
            return {
                "function_name": context.function_name,
                "function_version": context.function_version,
                "invoked_function_arn": context.invoked_function_arn,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "aws_request_id": context.aws_request_id,
                "log_group_name": context.log_group_name,
                "log_stream_name": context.log_stream_name,
                "remaining": context.get_remaining_time_in_millis(),
                "event": event,
            }
        """,
    )
    function = LambdaFunction("lead_submit", handler, timeout_s=10, memory_mb=256)

    result = function.invoke({"hello": "world"})

    assert not result.failed
    payload = result.payload
    assert payload["function_name"] == "sendline-lead_submit"
    assert payload["function_version"] == "$LATEST"
    assert payload["invoked_function_arn"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:sendline-lead_submit"
    )
    assert payload["memory_limit_in_mb"] == 256
    assert payload["aws_request_id"] == result.request_id
    assert payload["log_group_name"] == "/aws/lambda/sendline-lead_submit"
    assert "[$LATEST]" in payload["log_stream_name"]
    assert 9000 < payload["remaining"] <= 10000
    assert payload["event"] == {"hello": "world"}


def test_a_handler_copy_never_serves_two_invocations_at_once(tmp_path: Path) -> None:
    # Given a handler that notices when its module is entered twice concurrently
    handler = write_handler(
        tmp_path,
        """
        import threading, time
        BUSY = False
        SERVED = 0
        LOCK = threading.Lock()

        def handler(event, context):
            global BUSY, SERVED
            with LOCK:
                if BUSY:
                    raise RuntimeError("environment shared between invocations")
                BUSY = True
            time.sleep(0.05)
            SERVED += 1
            BUSY = False
            return {"module": __name__, "served": SERVED}
        """,
    )
    function = LambdaFunction("worker", handler, concurrency=3)
    results = []

    # When twelve invocations arrive at once
    def call() -> None:
        results.append(function.invoke({}))

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then none failed, at most three copies exist, each under its own module name
    assert [r.error_message for r in results if r.failed] == []
    environments = function.environments
    assert len(environments) == 3
    names = {e.module.__name__ for e in environments}
    assert len(names) == len(environments)
    assert all(n.startswith("sendline_fn_worker_") for n in names)
    assert sum(e.invocations for e in environments) == 12
    assert sum(e.module.SERVED for e in environments) == 12


def test_module_globals_persist_between_invocations_of_a_copy(tmp_path: Path) -> None:
    handler = write_handler(
        tmp_path,
        """
        CALLS = []
        def handler(event, context):
            CALLS.append(event["n"])
            return list(CALLS)
        """,
    )
    function = LambdaFunction("counter", handler)

    function.invoke({"n": 1})
    second = function.invoke({"n": 2})

    assert second.payload == [1, 2]


def test_sibling_modules_are_private_to_each_copy(tmp_path: Path) -> None:
    # Given two functions whose folders both hold a top-level module named `rules`
    for name, value in (("alpha", "A"), ("beta", "B")):
        write_handler(tmp_path / name, f"VALUE = {value!r}\n", name="rules.py")
        write_handler(
            tmp_path / name,
            """
            import rules
            def handler(event, context):
                return rules.VALUE
            """,
        )
    alpha = LambdaFunction("alpha", tmp_path / "alpha" / "handler.py")
    beta = LambdaFunction("beta", tmp_path / "beta" / "handler.py")

    # Then each imports its own, and neither stays importable by that bare name
    assert alpha.invoke({}).payload == "A"
    assert beta.invoke({}).payload == "B"
    assert "rules" not in sys.modules
    assert str(tmp_path / "alpha") not in sys.path


@pytest.mark.parametrize(
    ("source", "timeout_s", "error_type"),
    [
        ("import sendline.nothing_here\n", 10, "Runtime.ImportModuleError"),
        ("def handler(event, context):\n    raise KeyError('flow_id')\n", 10, "KeyError"),
        ("import datetime\ndef handler(e, c):\n    return datetime.date.today()\n", 10,
         "Runtime.MarshalError"),
        ("import time\ndef handler(e, c):\n    time.sleep(0.3)\n    return 1\n", 0.1,
         "Sandbox.Timedout"),
        ("handler = 'not callable'\n", 10, "Runtime.ImportModuleError"),
    ],
)
def test_failures_are_reported_as_lambda_reports_them(
    tmp_path: Path, source: str, timeout_s: float, error_type: str
) -> None:
    function = LambdaFunction("broken", write_handler(tmp_path, source), timeout_s=timeout_s)

    result = function.invoke({})

    assert result.failed
    assert result.error_type == error_type
    assert result.payload is None


def test_a_missing_handler_fails_each_invocation_until_it_appears(tmp_path: Path) -> None:
    function = LambdaFunction("later", tmp_path / "handler.py")

    assert function.invoke({}).error_type == "Runtime.ImportModuleError"

    write_handler(tmp_path, "def handler(e, c):\n    return 'ready'\n")
    assert function.invoke({}).payload == "ready"


def test_concurrency_follows_the_trigger() -> None:
    assert concurrency_for(spec.function("lead_submit")) == 4
    assert concurrency_for(spec.function("send_worker")) == spec.function(
        "send_worker"
    ).queue.max_concurrency
    assert concurrency_for(spec.function("drip_scheduler")) == 1
