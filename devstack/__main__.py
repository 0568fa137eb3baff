"""`python -m devstack`: the whole platform on this machine (see `devstack.stack`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devstack.stack import StackOptions, run


def parse_args(argv: list[str] | None = None) -> StackOptions:
    defaults = StackOptions()
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="Run Sendline locally: moto as AWS, an API Gateway emulator, SQS pollers, "
        "the schedules and the carrier simulator. Ports set to 0 pick a free port.",
    )
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--api-port", type=int, default=defaults.api_port)
    parser.add_argument("--carrier-port", type=int, default=defaults.carrier_port)
    parser.add_argument("--moto-port", type=int, default=defaults.moto_port)
    parser.add_argument("--state-dir", type=Path, default=defaults.state_dir)
    parser.add_argument(
        "--tick-seconds",
        type=float,
        default=defaults.tick_seconds,
        help="run every schedule this often (the deployed rate is in infra/spec.py)",
    )
    parser.add_argument("--sim-seed", type=int, default=defaults.sim_seed)
    parser.add_argument(
        "--snapshot-seconds",
        type=float,
        default=defaults.snapshot_seconds,
        help="save DynamoDB items and queued messages this often, and on shutdown",
    )
    parser.add_argument(
        "--quiet-hours",
        type=Path,
        default=None,
        help="a quiet-hours rules table to use instead of the shipped one (the tests and benchmarks "
        "pass devstack/quiet_hours_any_time.json so that they send at any hour)",
    )
    parser.add_argument(
        "--metrics-seconds",
        type=float,
        default=defaults.metrics_seconds,
        help="publish the functions' and queues' CloudWatch metrics (Worker Health) this often",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing when started")
    args = parser.parse_args(argv)
    if args.tick_seconds <= 0 or args.snapshot_seconds <= 0 or args.metrics_seconds <= 0:
        parser.error("--tick-seconds, --snapshot-seconds and --metrics-seconds must be positive")
    return StackOptions(
        host=args.host,
        api_port=args.api_port,
        carrier_port=args.carrier_port,
        moto_port=args.moto_port,
        quiet_hours=args.quiet_hours,
        state_dir=args.state_dir,
        tick_seconds=args.tick_seconds,
        sim_seed=args.sim_seed,
        quiet=args.quiet,
        snapshot_seconds=args.snapshot_seconds,
        metrics_seconds=args.metrics_seconds,
    )


if __name__ == "__main__":
    sys.exit(run(parse_args()))
