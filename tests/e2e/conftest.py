"""The local stack as a separate process, driven over HTTP the way integrators and carriers do.

`stack` starts `python -m devstack` once per test session on free ports with its own state
folder and a 2-second ticker; `api` is an HTTP client for its API Gateway.
"""

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

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20
TICK_SECONDS = 2


def _tail(path: Path, lines: int = 80) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} was not written)"


def _wait_for_stack_file(process: subprocess.Popen[bytes], state_dir: Path) -> dict[str, Any]:
    stack_file = state_dir / "stack.json"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if stack_file.exists():
            info = json.loads(stack_file.read_text())
            if info.get("pid") == process.pid:
                return info
        time.sleep(0.1)
    exited = process.poll()
    if exited is None:
        process.kill()
        process.wait()
    reason = (
        f"exited with status {exited}" if exited is not None
        else f"wrote no stack.json within {START_TIMEOUT_S} s"
    )
    pytest.fail(
        f"the local stack {reason}\n"
        f"--- output ---\n{_tail(state_dir / 'process.out')}\n"
        f"--- {state_dir / 'logs' / 'stack.log'} ---\n{_tail(state_dir / 'logs' / 'stack.log')}",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state_dir = tmp_path_factory.mktemp("devstack")
    command = [
        sys.executable, "-m", "devstack",
        "--api-port", "0", "--carrier-port", "0", "--moto-port", "0",
        "--state-dir", str(state_dir),
        "--tick-seconds", str(TICK_SECONDS),
        # Quiet hours have their own tests; these run at any hour and must send.
        "--quiet-hours", "devstack/quiet_hours_any_time.json",
        "--quiet",
    ]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with open(state_dir / "process.out", "wb") as output:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        info = _wait_for_stack_file(process, state_dir)
        yield {**info, "state_dir": state_dir}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def api(stack: dict[str, Any]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack["api_url"], timeout=15) as client:
        yield client
