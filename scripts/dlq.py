"""`python -m scripts.dlq`: the dead-letter queues from a terminal: list, show, redrive.

  python -m scripts.dlq list                      each dead-letter queue and how many messages wait in it
  python -m scripts.dlq show sends [--limit 10]   its messages, left where they are: ids, receive count,
                                                  times, the queue they came from, bodies with phones masked
  python -m scripts.dlq redrive sends [--max N]   moves N (default: every one) back to the sends queue

Against the local stack named by `<state-dir>/stack.json` while it runs; otherwise against AWS,
with the queues the environment names as the deployed ops_api function has them
(`SENDS_QUEUE_URL`, `SENDS_DLQ_URL`, `IMPORTS_QUEUE_URL`, `IMPORTS_DLQ_URL`) and the usual AWS
credentials and region. `--json` prints what the operator API would answer instead of a table.
docs/operations.md explains each figure and why a redrive is safe.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


class NoQueues(RuntimeError):
    pass


def _running_local_stack(state_dir: Path) -> dict[str, Any] | None:
    stack = state_dir / "stack.json"
    if not stack.exists():
        return None
    info = json.loads(stack.read_text())
    pid = info.get("pid")
    if not pid:
        return None  # stopped: its file stays, without a pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return info


def _use_local_stack(info: dict[str, Any]) -> None:
    """The environment the ops_api function has in the local stack: moto, every queue's URL."""
    from devstack import resources
    from infra import spec

    os.environ.update(resources.aws_environment(info["moto_url"]))
    sqs = resources.aws_client("sqs", info["moto_url"])
    for queue in spec.QUEUES:
        os.environ[spec.queue_url_env(queue.name)] = sqs.get_queue_url(QueueName=resources.queue_name(queue.name))["QueueUrl"]
        os.environ[spec.dlq_url_env(queue.name)] = sqs.get_queue_url(QueueName=resources.dlq_name(queue.name))["QueueUrl"]


def _where(state_dir: Path) -> str:
    info = _running_local_stack(state_dir)
    if info is not None:
        _use_local_stack(info)
        return f"the local stack ({info['moto_url']})"
    if not any(key.endswith("_DLQ_URL") and value for key, value in os.environ.items()):
        raise NoQueues(f"no local stack is running with state in {state_dir} (make run), and the environment "
                       "names no dead-letter queue (SENDS_DLQ_URL, IMPORTS_DLQ_URL)")
    return "AWS"


def print_list(found: dict[str, Any]) -> None:
    for row in found["dead_letters"]:
        line = f"{row['queue']:<10} {row['dlq_name']:<36} {row['messages']:>6} message(s)"
        if row["in_flight"]:
            line += f"  ({row['in_flight']} being inspected or re-driven)"
        print(line)


def print_messages(shown: dict[str, Any]) -> None:
    print(f"{shown['dlq_name']}: {shown['messages_in_queue']} message(s), showing {shown['shown']}")
    for m in shown["messages"]:
        print(f"- {m['sqs_message_id']}  message {m['message_id'] or '-'}  from {m['source_queue']}  "
              f"received {m['receive_count']} time(s)")
        print(f"  sent {m['sent_at']}  first received {m['first_received_at'] or '-'}")
        print(f"  body {json.dumps(m['body'], ensure_ascii=False)}")


def main(argv: list[str] | None = None) -> int:
    # The options every command takes, before or after its name (`--json list`, `list --json`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS,
                        help="the local stack's state folder (default: .local)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON, as the operator API answers")
    parser = argparse.ArgumentParser(prog="python -m scripts.dlq", description=__doc__.split("\n\n")[0],
                                     parents=[common])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", parents=[common], help="each dead-letter queue and its count")
    show = commands.add_parser("show", parents=[common], help="a dead-letter queue's messages, left in place")
    show.add_argument("queue", help="the queue the dead letters belong to: sends, imports")
    show.add_argument("--limit", type=int, default=10, help="at most this many messages (1 to 100)")
    redrive = commands.add_parser("redrive", parents=[common], help="move dead letters back to their queue")
    redrive.add_argument("queue", help="the queue the dead letters belong to: sends, imports")
    redrive.add_argument("--max", type=int, default=None, help="at most this many (default: every one)")
    args = parser.parse_args(argv)
    args.state_dir = getattr(args, "state_dir", REPO_ROOT / ".local")
    args.json = getattr(args, "json", False)
    if args.command == "show" and not 1 <= args.limit <= 100:
        parser.error("--limit must be from 1 to 100")
    if args.command == "redrive" and args.max is not None and args.max < 1:
        parser.error("--max must be at least 1")

    sys.path.insert(0, str(REPO_ROOT / "layers" / "sendline" / "python"))
    try:
        where = _where(args.state_dir)
    except NoQueues as exc:
        print(f"dlq: {exc}", file=sys.stderr)
        return 2

    from sendline import runtime
    from sendline.errors import NotFound
    from sendline.services import dead_letters

    queues = runtime.work_queues()
    try:
        if args.command == "list":
            result = dead_letters.list_dead_letters(queues)
            show_result = print_list
        elif args.command == "show":
            result = dead_letters.inspect_dead_letters(queues, args.queue, args.limit)
            show_result = print_messages
        else:
            from scripts.demo import Progress

            bar: list[Progress] = []

            def progress(moved: int, target: int) -> None:
                if not bar:
                    bar.append(Progress(f"redrive {args.queue}", target))
                if moved < target:  # the last line is finish()'s
                    bar[0].update(moved)

            result = dead_letters.redrive_dead_letters(queues, args.queue, args.max or sys.maxsize,
                                                       progress=progress)
            if bar:
                bar[0].finish(result["moved"])

            def show_result(moved: dict[str, Any]) -> None:
                print(f"moved {moved['moved']} message(s) from the {moved['queue']} dead-letter queue to {moved['to']}; "
                      f"{moved['remaining']} left" + (f"; {moved['refused']} refused by SQS" if moved["refused"] else "")
                      + (f"; {moved['not_deleted']} copied but not deleted" if moved["not_deleted"] else ""))
    except NotFound as exc:
        print(f"dlq: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(f"# {where}", file=sys.stderr)
        show_result(result)
    return 1 if args.command == "redrive" and (result["refused"] or result["not_deleted"]) else 0


if __name__ == "__main__":
    sys.exit(main())
