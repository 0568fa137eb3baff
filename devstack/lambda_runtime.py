"""Lambda execution environments, in-process.

A deployed function runs in execution environments: each one imports the handler module once
(the init phase), then serves one invocation at a time, keeping module globals (a Powertools
resolver `app`, cached clients) between invocations. Here an environment is a private copy of
`functions/<name>/handler.py` loaded under its own module name; a function owns a pool of up to
`concurrency` copies, created on first need like a cold start.

What a copy shares with the others is what one Python process cannot separate: the `sendline`
package and third-party modules are imported once. Sibling modules of the handler
(`functions/<name>/*.py`, imported as top-level modules because the function folder is the code
root on AWS) are imported afresh for every copy.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import logging
import queue
import secrets
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from infra import spec

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
FUNCTION_PREFIX = "sendline-"
# Lambda scales an HTTP-triggered function on demand; four environments are plenty for one
# machine and still exercise the module-globals-per-environment behaviour.
API_CONCURRENCY = 4

log = logging.getLogger("devstack.lambda")


def deployed_name(function_name: str) -> str:
    return f"{FUNCTION_PREFIX}{function_name}"


def function_arn(function_name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{deployed_name(function_name)}"


def concurrency_for(function: spec.Function) -> int:
    """How many execution environments a spec function gets locally."""
    candidates = [1] if function.schedule else []
    if function.routes:
        candidates.append(API_CONCURRENCY)
    if function.queue:
        candidates.append(function.queue.max_concurrency)
    return max(candidates or [1])


class LambdaContext:
    """The `context` argument the Python runtime passes to a handler."""

    def __init__(
        self,
        *,
        function_name: str,
        memory_limit_in_mb: int,
        timeout_s: float,
        log_stream_name: str,
        aws_request_id: str | None = None,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"
        )
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = log_stream_name
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class ExecutionEnvironment:
    """One loaded copy of a handler module and the log stream it writes to."""

    module: ModuleType
    handler: Callable[[Any, Any], Any]
    log_stream_name: str
    invocations: int = 0


@dataclass(frozen=True)
class InvocationResult:
    request_id: str
    duration_ms: float
    payload: Any = None
    # Set when the invocation failed the way Lambda reports it: init error, unhandled
    # exception, timeout, or a return value that is not JSON.
    error_type: str | None = None
    error_message: str | None = None

    @property
    def failed(self) -> bool:
        return self.error_type is not None


# Told of every invocation: the deployed function name, whether it failed as Lambda counts an
# error, and whether it found every environment busy (Lambda would have throttled it).
InvocationObserver = Callable[[str, bool, bool], None]


class Invoker(Protocol):
    """Anything that runs an event synchronously: a `LambdaFunction`, or a fake in tests."""

    def invoke(self, event: Any) -> InvocationResult: ...


class InitError(Exception):
    """The handler module could not be imported (Lambda's Runtime.ImportModuleError)."""


# Copies are loaded one at a time: loading briefly puts the function folder on sys.path.
_init_lock = threading.Lock()


def load_handler_copy(
    handler_path: Path, module_name: str, handler_attr: str = "handler"
) -> tuple[ModuleType, Callable[[Any, Any], Any]]:
    """Imports `handler_path` as a new module named `module_name` and returns it with its entry."""
    handler_path = Path(handler_path).resolve()
    code_root = handler_path.parent
    if not handler_path.is_file():
        raise InitError(f"no handler module at {handler_path}")
    with _init_lock:
        module_spec = importlib.util.spec_from_file_location(module_name, handler_path)
        if module_spec is None or module_spec.loader is None:
            raise InitError(f"cannot load {handler_path}")
        module = importlib.util.module_from_spec(module_spec)
        before = set(sys.modules)
        sys.path.insert(0, str(code_root))
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException as exc:
            sys.modules.pop(module_name, None)
            if isinstance(exc, (Exception, SystemExit)):
                raise InitError(f"{type(exc).__name__}: {exc}") from exc
            raise
        finally:
            sys.path.remove(str(code_root))
            _forget_sibling_modules(code_root, before, keep=module_name)
    entry = getattr(module, handler_attr, None)
    if not callable(entry):
        sys.modules.pop(module_name, None)
        raise InitError(f"{handler_path} has no callable {handler_attr!r}")
    return module, entry


def _forget_sibling_modules(code_root: Path, before: set[str], keep: str) -> None:
    """Drops modules just imported from the function folder so the next copy imports its own."""
    for name in set(sys.modules) - before:
        if name == keep:
            continue
        origin = getattr(sys.modules[name], "__file__", None)
        if origin and Path(origin).resolve().is_relative_to(code_root):
            del sys.modules[name]


class LambdaFunction:
    """A function and its pool of execution environments; `invoke` is a synchronous Invoke."""

    def __init__(
        self,
        name: str,
        handler_path: Path,
        *,
        concurrency: int = 1,
        timeout_s: float = 10,
        memory_mb: int = 512,
        handler_attr: str = "handler",
        observer: InvocationObserver | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.name = name
        self.deployed_name = deployed_name(name)
        self.arn = function_arn(name)
        self.handler_path = Path(handler_path)
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.handler_attr = handler_attr
        self.observer = observer
        self._idle: queue.LifoQueue[ExecutionEnvironment] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(concurrency)
        self._environments: list[ExecutionEnvironment] = []
        self._lock = threading.Lock()
        self._copy_numbers = itertools.count()

    @classmethod
    def from_spec(
        cls, function: spec.Function, functions_dir: Path, observer: InvocationObserver | None = None
    ) -> LambdaFunction:
        return cls(
            function.name,
            Path(functions_dir) / function.name / "handler.py",
            concurrency=concurrency_for(function),
            timeout_s=function.timeout_s,
            memory_mb=function.memory_mb,
            observer=observer,
        )

    @property
    def environments(self) -> list[ExecutionEnvironment]:
        """The environments created so far (at most `concurrency`)."""
        with self._lock:
            return list(self._environments)

    def invoke(self, event: Any) -> InvocationResult:
        """Runs the handler in a free environment, waiting for one if all are busy (where
        Lambda would throttle: the observer hears of it as a throttle)."""
        throttled = not self._slots.acquire(blocking=False)
        if throttled:
            self._slots.acquire()
        try:
            result = self._invoke_in_slot(event)
        finally:
            self._slots.release()
        if self.observer is not None:
            self.observer(self.deployed_name, result.failed, throttled)
        return result

    def _invoke_in_slot(self, event: Any) -> InvocationResult:
        try:
            environment = self._idle.get_nowait()
        except queue.Empty:
            environment = None
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        if environment is None:
            try:
                environment = self._cold_start()
            except InitError as exc:
                duration = (time.monotonic() - started) * 1000
                log.error(
                    "%s init failed (RequestId: %s): %s", self.deployed_name, request_id, exc
                )
                return InvocationResult(
                    request_id, duration, None, "Runtime.ImportModuleError", str(exc)
                )
        try:
            return self._run(environment, event, request_id)
        finally:
            self._idle.put(environment)

    def _cold_start(self) -> ExecutionEnvironment:
        module_name = f"sendline_fn_{self.name}_{next(self._copy_numbers)}"
        while module_name in sys.modules:
            module_name = f"sendline_fn_{self.name}_{next(self._copy_numbers)}"
        started = time.monotonic()
        module, entry = load_handler_copy(self.handler_path, module_name, self.handler_attr)
        environment = ExecutionEnvironment(
            module=module,
            handler=entry,
            log_stream_name=(
                f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{secrets.token_hex(16)}"
            ),
        )
        with self._lock:
            self._environments.append(environment)
        log.info(
            "%s INIT module=%s Init Duration: %.2f ms",
            self.deployed_name,
            module_name,
            (time.monotonic() - started) * 1000,
        )
        return environment

    def _run(
        self, environment: ExecutionEnvironment, event: Any, request_id: str
    ) -> InvocationResult:
        context = LambdaContext(
            function_name=self.deployed_name,
            memory_limit_in_mb=self.memory_mb,
            timeout_s=self.timeout_s,
            log_stream_name=environment.log_stream_name,
            aws_request_id=request_id,
        )
        environment.invocations += 1
        log.info("%s START RequestId: %s Version: $LATEST", self.deployed_name, request_id)
        started = time.monotonic()
        error_type = error_message = None
        payload = None
        try:
            returned = environment.handler(event, context)
        except (Exception, SystemExit) as exc:
            error_type, error_message = type(exc).__name__, str(exc)
            self._log_exception(request_id, exc)
        else:
            try:
                # Lambda hands the caller the JSON serialisation of the return value.
                payload = json.loads(json.dumps(returned))
            except (TypeError, ValueError) as exc:
                error_type = "Runtime.MarshalError"
                error_message = f"Unable to marshal response: {exc}"
                log.error("%s RequestId: %s %s", self.deployed_name, request_id, error_message)
        duration = (time.monotonic() - started) * 1000
        if duration > self.timeout_s * 1000 and error_type is None:
            # The handler cannot be stopped in-process, but its caller sees what Lambda reports.
            error_type = "Sandbox.Timedout"
            error_message = f"Task timed out after {self.timeout_s:.2f} seconds"
            payload = None
            log.error("%s RequestId: %s %s", self.deployed_name, request_id, error_message)
        log.info("%s END RequestId: %s", self.deployed_name, request_id)
        log.info(
            "%s REPORT RequestId: %s Duration: %.2f ms Memory Size: %d MB",
            self.deployed_name,
            request_id,
            duration,
            self.memory_mb,
        )
        return InvocationResult(request_id, duration, payload, error_type, error_message)

    def _log_exception(self, request_id: str, exc: BaseException) -> None:
        log.error(
            "%s RequestId: %s [ERROR] %s: %s\n%s",
            self.deployed_name,
            request_id,
            type(exc).__name__,
            exc,
            "".join(traceback.format_exception(exc)).rstrip(),
        )


class TakingTurns:
    """Runs an invoker's events one at a time with every other invoker sharing `lock`.

    Powertools' event resolver keeps the request being handled on a class attribute
    (`BaseRouter.current_event`), shared by every resolver in the process. On AWS each
    execution environment is its own process handling one event at a time; here they are
    threads of one process, so the HTTP functions must take turns or read each other's requests.
    """

    def __init__(self, invoker: Invoker, lock: threading.Lock) -> None:
        self._invoker = invoker
        self._lock = lock

    def invoke(self, event: Any) -> InvocationResult:
        with self._lock:
            return self._invoker.invoke(event)


@dataclass
class FunctionSet:
    """Every spec function, keyed by spec name."""

    functions: dict[str, LambdaFunction] = field(default_factory=dict)

    @classmethod
    def from_spec(
        cls,
        functions: tuple[spec.Function, ...],
        functions_dir: Path,
        observer: InvocationObserver | None = None,
    ) -> FunctionSet:
        return cls(
            {f.name: LambdaFunction.from_spec(f, functions_dir, observer) for f in functions}
        )

    def __getitem__(self, name: str) -> LambdaFunction:
        return self.functions[name]

    def missing_handlers(self) -> list[Path]:
        return [f.handler_path for f in self.functions.values() if not f.handler_path.is_file()]
