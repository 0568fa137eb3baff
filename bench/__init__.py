"""Sendline benchmarks: AWS requests and cost per message, cold-start imports, local throughput.

`python -m bench` (or `make bench`) runs all three, prints one table per benchmark and writes
the same figures to `bench/results.json`; `docs/performance.md` explains and keeps them.

Importing this package puts the shared layer (`layers/sendline/python`) and the repository root
on `sys.path`, as the Lambda runtime and the tests see them.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LAYER_DIR = REPO_ROOT / "layers" / "sendline" / "python"
FUNCTIONS_DIR = REPO_ROOT / "functions"
RESULTS_FILE = Path(__file__).resolve().parent / "results.json"

for _path in (str(LAYER_DIR), str(REPO_ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
