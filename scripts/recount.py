"""`python -m scripts.recount`: work every report counter out again from the records and compare.

`python -m scripts.recount [--state-dir .local] [--rebuild]`

Against the local stack named by `<state-dir>/stack.json` when it is running; otherwise against
the AWS account and table the environment names (`TABLE_NAME`, the usual AWS credentials and
region). Prints each counter that differs (scope, bucket, counter, kept, recounted) and exits 1
when any does. `--rebuild` then writes the recounted figures in place of the kept ones: run it
while nothing is sending (services/recount.py says why). It scans the whole table: a job for an
operator, never a request path.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _use_local_stack(state_dir: Path) -> bool:
    stack = state_dir / "stack.json"
    if not stack.exists():
        return False
    info = json.loads(stack.read_text())
    from devstack import resources
    from infra import spec

    os.environ.update(resources.aws_environment(info["moto_url"]))
    os.environ.setdefault("TABLE_NAME", spec.TABLE.name)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.recount", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".local")
    parser.add_argument("--rebuild", action="store_true", help="write the recounted figures over the kept ones")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO_ROOT / "layers" / "sendline" / "python"))
    where = "the local stack" if _use_local_stack(args.state_dir) else f"table {os.environ.get('TABLE_NAME')!r}"

    from sendline import runtime
    from sendline.services.recount import differences, rebuild, recount, stored

    records = runtime.records()
    recounted = recount(records)
    found = differences(recounted, stored(records))
    print(f"{where}: {len(recounted)} counter buckets recounted, {len(found)} differences")
    for d in found:
        print(f"  {d.scope} {d.bucket} {d.counter}: kept {d.stored}, recounted {d.recounted}")
    if found and args.rebuild:
        print(f"rebuilt: {rebuild(records, recounted)} counter items written")
        return 0
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
