"""The whole local stack in one process, wired by looping over `infra.spec`.

Start order: moto and the resources, the restored snapshot, the API Gateway socket (its URL is
part of the functions' environment and the carrier simulator's settings), the carrier simulator,
the environment, the demo API key, then the consumers: the API, the SQS pollers, the ticker.
Stop order is the reverse of who feeds whom: ticker and pollers (batches in progress finish),
the simulator (it calls the API back), the API, a last snapshot, moto.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from infra import spec

from . import resources
from .apigw import ApiGateway, bindings_from_spec
from .lambda_runtime import FunctionSet, TakingTurns
from .metrics import LambdaMetricsPublisher
from .pollers import SqsEventSource
from .state import (
    STACK_FILE,
    ObjectMirror,
    PeriodicSnapshots,
    Secrets,
    StateStore,
    load_or_create_secrets,
    read_json,
    restore_snapshot,
    take_snapshot,
    write_json_atomic,
)
from .ticker import Ticker, targets_from_spec

log = logging.getLogger("devstack")

REPO_ROOT = Path(__file__).resolve().parents[1]
LAYER_DIR = REPO_ROOT / "layers" / "sendline" / "python"
FUNCTIONS_DIR = REPO_ROOT / "functions"
DASHBOARD_DIR = REPO_ROOT / "dashboard" / "dist"
DEMO_API_KEY_NAME = "demo"


@dataclass
class StackOptions:
    host: str = "127.0.0.1"
    api_port: int = 8787
    carrier_port: int = 8788
    moto_port: int = 8789
    state_dir: Path = Path(".local")
    tick_seconds: float = 10
    sim_seed: int = 42
    quiet: bool = False
    snapshot_seconds: float = 30
    # How often the Lambda and SQS metrics Worker Health reads are published (AWS: every minute).
    metrics_seconds: float = 10
    quiet_hours: Path | None = None  # a rules table replacing the shipped one (tests, benchmarks)

    @property
    def log_file(self) -> Path:
        return Path(self.state_dir) / "logs" / "stack.log"


def ensure_import_paths() -> None:
    """The shared layer and the repository root, as the Lambda runtime and the tests see them."""
    for path in (str(LAYER_DIR), str(REPO_ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)


class PortInUse(RuntimeError):
    pass


def check_ports_free(options: StackOptions) -> None:
    """Fails fast, naming the port: a server that cannot bind must not leave the start hanging."""
    import socket

    for what, port in (("API", options.api_port), ("carrier simulator", options.carrier_port),
                       ("moto", options.moto_port)):
        if not port:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((options.host, port))
            except OSError:
                raise PortInUse(
                    f"port {port} ({what}) is in use. Stop what uses it, or pick free ports: "
                    "make run ARGS='--api-port 0 --carrier-port 0 --moto-port 0'"
                ) from None


class StackAlreadyRunning(RuntimeError):
    pass


class LocalStack:
    """Starts and stops every part; `functions_dir` and `dashboard_dir` can point elsewhere."""

    def __init__(
        self,
        options: StackOptions,
        *,
        functions_dir: Path = FUNCTIONS_DIR,
        dashboard_dir: Path = DASHBOARD_DIR,
    ) -> None:
        self.options = options
        self.functions_dir = Path(functions_dir)
        self.dashboard_dir = Path(dashboard_dir)
        self.secrets: Secrets | None = None
        self.moto_url = ""
        self.api_url = ""
        self.carrier_url = ""
        self._moto: Any = None
        self._api: ApiGateway | None = None
        self._simulator: Any = None
        self._pollers: list[SqsEventSource] = []
        self._ticker: Ticker | None = None
        self._lambda_metrics: LambdaMetricsPublisher | None = None
        self._snapshots: PeriodicSnapshots | None = None
        self._queues: dict[str, resources.QueueResources] = {}
        self._stopped = False

    @property
    def state_dir(self) -> Path:
        return Path(self.options.state_dir)

    @property
    def stack_file(self) -> Path:
        return self.state_dir / STACK_FILE

    def start(self) -> dict[str, Any]:
        """Starts everything; on failure stops what did start and re-raises."""
        try:
            return self._start()
        except BaseException:
            self.stop(snapshot=False)
            raise

    def _start(self) -> dict[str, Any]:
        ensure_import_paths()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._claim_state_dir()
        check_ports_free(self.options)
        self.secrets = load_or_create_secrets(self.state_dir)
        options = self.options

        self._moto = resources.MotoProcess(options.host, options.moto_port,
                                           metrics_every_s=options.metrics_seconds)
        self.moto_url = self._moto.url
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(resources.aws_environment(self.moto_url))
        _bypass_proxies_for_local_hosts()
        dynamodb = resources.aws_client("dynamodb", self.moto_url)
        sqs = resources.aws_client("sqs", self.moto_url)
        s3 = resources.aws_client("s3", self.moto_url)
        self._queues = resources.create_resources(dynamodb, sqs, table=spec.TABLE)
        log.info("moto at %s; table %s; queues %s", self.moto_url, spec.TABLE.name,
                 ", ".join(q.queue_name for q in self._queues.values()))
        self._restore(dynamodb, sqs)
        restored = ObjectMirror(self.state_dir).restore(s3, resources.bucket_name())
        resources.create_bucket(s3, spec.UPLOADS, self._queues)
        if restored:
            log.info("restored %d uploaded file(s)", restored)

        self._lambda_metrics = LambdaMetricsPublisher(resources.client_factory("cloudwatch", self.moto_url),
                                                      options.metrics_seconds)
        functions = FunctionSet.from_spec(spec.FUNCTIONS, self.functions_dir, observer=self._lambda_metrics.counts)
        for missing in functions.missing_handlers():
            log.warning("no handler module at %s; its invocations will fail", missing)
        # HTTP functions take turns: see TakingTurns for why.
        api_turns = threading.Lock()
        self._api = ApiGateway(
            bindings_from_spec({name: TakingTurns(fn, api_turns) for name, fn in functions.functions.items()}),
            host=options.host,
            port=options.api_port,
            static_dir=self.dashboard_dir,
        )
        self.api_url = self._api.url

        from devstack.carrier_sim import CarrierSimulator, SimulatorSettings

        self._simulator = CarrierSimulator(
            SimulatorSettings(
                account_sid=self.secrets.twilio_account_sid,
                auth_token=self.secrets.twilio_auth_token,
                seed=options.sim_seed,
                inbound_webhook_url=f"{self.api_url}/webhooks/twilio/inbound",
            )
        )
        self.carrier_url = self._simulator.start(options.host, port=options.carrier_port)

        os.environ.update(
            resources.function_environment(
                endpoint_url=self.moto_url,
                queues=self._queues,
                twilio_api_base=self.carrier_url,
                twilio_account_sid=self.secrets.twilio_account_sid,
                twilio_auth_token=self.secrets.twilio_auth_token,
                public_api_url=self.api_url,
                operator_token_sha256=self.secrets.operator_token_sha256,
            )
        )
        if options.quiet_hours is not None:
            os.environ["QUIET_HOURS_FILE"] = str(options.quiet_hours.resolve())
            log.warning("quiet hours from %s, not the shipped rules", options.quiet_hours)
        from sendline.services.api_keys import register_api_key

        register_api_key(self.secrets.api_key, DEMO_API_KEY_NAME)

        self._lambda_metrics.start()
        self._api.start()
        self._pollers = self._event_sources(functions)
        for poller in self._pollers:
            poller.start()
        self._ticker = Ticker(targets_from_spec(functions.functions), options.tick_seconds)
        self._ticker.start()
        self._snapshots = PeriodicSnapshots(self.save_snapshot, options.snapshot_seconds)
        self._snapshots.start()

        info = self.info()
        write_json_atomic(self.stack_file, info, private=True)
        log.info("stack up: api %s, carrier %s", self.api_url, self.carrier_url)
        return info

    def info(self) -> dict[str, Any]:
        assert self.secrets is not None
        return {
            "api_url": self.api_url,
            "admin_token": self.secrets.operator_token,
            "api_key": self.secrets.api_key,
            "carrier_url": self.carrier_url,
            "twilio_account_sid": self.secrets.twilio_account_sid,
            "twilio_auth_token": self.secrets.twilio_auth_token,
            "moto_url": self.moto_url,
            "pid": os.getpid(),
            "state_dir": str(self.state_dir.resolve()),
            "log_file": str(self.options.log_file.resolve()),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def _claim_state_dir(self) -> None:
        previous = read_json(self.stack_file)
        pid = previous.get("pid") if isinstance(previous, dict) else None
        if pid and pid != os.getpid() and _process_alive(pid):
            raise StackAlreadyRunning(
                f"a local stack (pid {pid}) is already using {self.state_dir}"
            )
        self.stack_file.unlink(missing_ok=True)

    def _restore(self, dynamodb: Any, sqs: Any) -> None:
        snapshot = StateStore(self.state_dir).load()
        if snapshot is None:
            return
        summary = restore_snapshot(snapshot, dynamodb, sqs, self._queue_urls())
        log.info(
            "restored %d item(s) and %s from %s",
            summary.items,
            ", ".join(f"{n} message(s) on {q}" for q, n in summary.messages.items()) or "no queues",
            snapshot.get("saved_at"),
        )

    def _queue_urls(self) -> dict[str, str]:
        urls: dict[str, str] = {}
        for queue in self._queues.values():
            urls[queue.queue_name] = queue.url
            urls[queue.dlq_name] = queue.dlq_url
        return urls

    def _event_sources(self, functions: FunctionSet) -> list[SqsEventSource]:
        sources = []
        for function in spec.FUNCTIONS:
            trigger = function.queue
            if trigger is None:
                continue
            queue = self._queues[trigger.queue]
            sources.append(
                SqsEventSource(
                    functions[function.name],
                    queue_url=queue.url,
                    queue_arn=queue.arn,
                    batch_size=trigger.batch_size,
                    concurrency=trigger.max_concurrency,
                    client_factory=resources.client_factory("sqs", self.moto_url),
                    batching_window_s=trigger.max_batching_window_s,
                    name=f"{function.name}<-{queue.queue_name}",
                )
            )
        return sources

    def save_snapshot(self) -> None:
        dynamodb = resources.aws_client("dynamodb", self.moto_url)
        snapshot = take_snapshot(dynamodb, spec.TABLE.name, self._queue_urls(),
                                 read_queue=self._moto.queued_messages)
        StateStore(self.state_dir).save(snapshot)
        ObjectMirror(self.state_dir).save(resources.aws_client("s3", self.moto_url), resources.bucket_name())
        log.info(
            "snapshot: %d item(s), %d message(s)",
            len(snapshot["table"]["items"]),
            sum(len(m) for m in snapshot["queues"].values()),
        )

    def stop(self, *, snapshot: bool = True) -> None:
        """Stops everything that started; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        steps = [
            ("snapshot timer", lambda: self._snapshots and self._snapshots.stop()),
            ("ticker", lambda: self._ticker and self._ticker.stop()),
            ("pollers", self._stop_pollers),
            ("carrier simulator", lambda: self._simulator and self._simulator.stop()),
            ("api", lambda: self._api and self._api.stop()),
            ("lambda metrics", lambda: self._lambda_metrics and self._lambda_metrics.stop()),
        ]
        if snapshot and self._moto is not None and self._queues:
            steps.append(("final snapshot", self.save_snapshot))
        steps.append(("moto", lambda: self._moto and self._moto.stop()))
        steps.append(("stack file", self._release_stack_file))
        for name, step in steps:
            try:
                step()
            except Exception:
                log.exception("stopping %s failed", name)
        log.info("stack stopped")

    def _stop_pollers(self) -> None:
        for poller in self._pollers:
            poller.request_stop()
        for poller in self._pollers:
            poller.stop()

    def _release_stack_file(self) -> None:
        info = read_json(self.stack_file)
        if isinstance(info, dict) and info.get("pid") == os.getpid():
            info.pop("pid")
            info["stopped_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            write_json_atomic(self.stack_file, info, private=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _bypass_proxies_for_local_hosts() -> None:
    """Calls between the parts stay on this machine even where an HTTP proxy is configured."""
    for name in ("NO_PROXY", "no_proxy"):
        hosts = [h for h in os.environ.get(name, "").split(",") if h]
        for local in ("127.0.0.1", "localhost"):
            if local not in hosts:
                hosts.append(local)
        os.environ[name] = ",".join(hosts)


# ---------------------------------------------------------------------------------------------
# Running it from the command line


class _LogFileStream(io.TextIOBase):
    """Stands in for stdout/stderr so handler output (Powertools logs, prints) goes to the log."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            return self._file.write(text)

    def flush(self) -> None:
        with self._lock:
            self._file.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._file.fileno()


def configure_logging(log_file: Path) -> tuple[TextIO, TextIO]:
    """Sends logging, stdout and stderr to `log_file`; returns the terminal's stdout and stderr."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in ("botocore", "boto3", "werkzeug", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Every moto response closes its connection, so busy pools warn about discarding them.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    terminal = (sys.stdout, sys.stderr)
    stream = _LogFileStream(log_file)
    sys.stdout = stream  # type: ignore[assignment]
    sys.stderr = stream  # type: ignore[assignment]
    return terminal


def banner(info: dict[str, Any], log_file: Path) -> str:
    rows = [
        ("API", info["api_url"]),
        ("Operator token", f"{info['admin_token']}  (Authorization: Bearer <token>)"),
        ("Demo API key", f"{info['api_key']}  (X-API-Key)"),
        ("Carrier sim", info["carrier_url"]),
        ("AWS (moto)", info["moto_url"]),
        ("Logs", str(log_file)),
    ]
    lines = ["Sendline local stack is up"]
    lines += [f"  {name:<15}{value}" for name, value in rows]
    lines.append("Ctrl-C to stop.")
    return "\n".join(lines)


def run(options: StackOptions) -> int:
    """Runs the stack until SIGINT or SIGTERM; returns the process exit status."""
    Path(options.state_dir).mkdir(parents=True, exist_ok=True)
    out, err = configure_logging(options.log_file)
    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        if stop_requested.is_set():
            print("Stopping now, without saving state.", file=err, flush=True)
            os._exit(130)
        log.info("received %s", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    stack = LocalStack(options)
    try:
        info = stack.start()
    except Exception as exc:
        log.exception("the local stack failed to start")
        print(
            f"devstack: failed to start: {type(exc).__name__}: {exc}\n"
            f"  details: {options.log_file}",
            file=err,
            flush=True,
        )
        return 1
    if not options.quiet:
        print(banner(info, options.log_file), file=out, flush=True)
    while not stop_requested.wait(0.5):
        pass
    if not options.quiet:
        print("Stopping: finishing work in progress and saving state...", file=out, flush=True)
    stack.stop()
    if not options.quiet:
        print(f"Stopped. State saved in {options.state_dir}.", file=out, flush=True)
    return 0
