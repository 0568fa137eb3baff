"""Benchmark 2: cold-start import time of each function's handler module.

Each measurement is a fresh interpreter (`python -I bench/import_probe.py`) with the function
folder and the shared layer on sys.path, as in a Lambda execution environment, and the
environment the deployed function gets (infra/stack.py, placeholder values) plus the variables
the Lambda runtime sets. `LAMBDA_TASK_ROOT` is set, so Powertools' Tracer is active and patches
libraries for X-Ray at import, as when deployed (tracing is ACTIVE). Only the packages a deployed
function has can be imported: the deps layer (infra.layer_build.layer_pins), the boto3 the
runtime provides, AWS's Powertools layer and the standard library; this machine's development packages are refused.

Two variants, each `runs` times (median reported):
- cached: bytecode exists for everything (one unmeasured run per function first writes it, to a
  private tree given with -X pycache_prefix, so nothing is written beside the sources);
- no bytecode: the standard library and boto3 have bytecode, but the deps layer, the shared
  layer and the function do not and cannot write any, which is how they are deployed
  (the deps layer is installed with --no-compile, the assets exclude __pycache__ and *.pyc, and
  /opt and /var/task are read-only).
One more cached run under `-X importtime` gives the self time by top-level package. The
interpreter's own start-up is not included in any figure.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import FUNCTIONS_DIR, LAYER_DIR
from bench.stats import median

PROBE = Path(__file__).resolve().parent / "import_probe.py"
# What a function gets besides our two layers: the Lambda runtime's boto3 and AWS's Powertools
# layer (infra.layer_build leaves both out of the deps layer).
RUNTIME_PROVIDED_ROOTS = {"boto3", "aws-lambda-powertools"}


LAMBDA_RUNTIME_ENVIRONMENT = {
    "LANG": "C.UTF-8",
    "TZ": ":UTC",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
}


def _placeholder(value: Any, variable: str) -> str:
    """A template value as the function would see it: literal strings as they are; references
    (a queue's URL, a secret's ARN...) resolved to a placeholder of the same kind."""
    if isinstance(value, str):
        return value
    if variable.endswith("_QUEUE_URL") or variable.endswith("_DLQ_URL"):
        return f"https://sqs.us-east-1.amazonaws.com/123456789012/sendline-dev-{variable.lower()}"
    if variable.endswith("_ARN"):
        return f"arn:aws:secretsmanager:us-east-1:123456789012:secret:sendline-dev-{variable.lower()}"
    if variable == "COGNITO_ISSUER":
        return "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc123"
    if variable.endswith("_URL"):
        return "https://abc123.execute-api.us-east-1.amazonaws.com"
    if variable == "OPERATOR_TOKEN_SHA256":
        return "0" * 64
    return f"sendline-dev-{variable.lower().replace('_', '-')}"


def deployed_environments() -> dict[str, dict[str, str]]:
    """Each function's environment as the synthesized dev stack sets it (references replaced by
    placeholders), plus what the Lambda runtime sets."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from infra import spec
    from infra.app import synthesize

    with tempfile.TemporaryDirectory(prefix="sendline-bench-synth-") as tmp:
        deps = Path(tmp) / "deps-layer"
        (deps / "python").mkdir(parents=True)
        stack, assembly = synthesize(context={}, outdir=Path(tmp) / "cdk.out", deps_layer_dir=deps,
                                     dashboard_dir=None, checks=False)
        resources = assembly.get_stack_by_name(stack.stack_name).template["Resources"]
    environments = {}
    for function in spec.FUNCTIONS:
        logical_id = stack.get_logical_id(stack.functions[function.name].node.default_child)
        properties = resources[logical_id]["Properties"]
        variables = properties.get("Environment", {}).get("Variables", {})
        environments[function.name] = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **LAMBDA_RUNTIME_ENVIRONMENT,
            "AWS_LAMBDA_FUNCTION_NAME": properties["FunctionName"],
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(properties["MemorySize"]),
            "LAMBDA_TASK_ROOT": str(FUNCTIONS_DIR / function.name),
            **{name: _placeholder(value, name) for name, value in variables.items()},
        }
    return environments


def _top_level(distribution: str) -> set[str]:
    names = set()
    for file in importlib.metadata.distribution(distribution).files or []:
        first = Path(str(file)).parts[0]
        if first.endswith((".dist-info", ".data", "-stubs")) or first in ("..", "__pycache__", "bin"):
            continue
        names.add(first[:-3] if first.endswith(".py") else first)
    return names


def deployed_packages() -> tuple[set[str], set[str]]:
    """Top-level module names of (the deps layer, what the runtime provides) as installed here."""
    from infra.layer_build import closure, layer_pins, parse_lock

    _, required_by = parse_lock()
    layer = set().union(*(_top_level(pin.split("==")[0]) for pin in layer_pins()))
    runtime = set().union(*(_top_level(name) for name in closure(RUNTIME_PROVIDED_ROOTS, required_by)))
    return layer, runtime


def probe(name: str, environment: dict[str, str], allowed: str, *, importtime: bool = False,
          pycache: Path | None = None, write_bytecode: bool = True) -> tuple[dict[str, Any], str]:
    flags = ["-I"]
    if importtime:
        flags += ["-X", "importtime"]
    if pycache is not None:
        flags += ["-X", f"pycache_prefix={pycache}"]
    if not write_bytecode:
        flags.append("-B")
    command = [sys.executable, *flags, str(PROBE), str(FUNCTIONS_DIR / name), str(LAYER_DIR), allowed]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"importing {name}'s handler failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def parse_importtime(stderr: str, root: str = "handler") -> list[tuple[str, int, int, int]]:
    """(name, depth, self_us, cumulative_us) of the lines of `root`'s import, root included."""
    parsed = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        head, cumulative, name = line.split("|")
        raw = name[1:]  # one space after the bar, then two per nesting level
        depth = (len(raw) - len(raw.lstrip(" "))) // 2
        parsed.append((raw.strip(), depth, int(head.split(":")[1]), int(cumulative)))
    end = next((i for i, row in enumerate(parsed) if row[0] == root and row[1] == 0), None)
    if end is None:
        return []
    start = max((i for i in range(end) if parsed[i][1] == 0), default=-1) + 1
    return parsed[start:end + 1]


def time_by_package(rows: list[tuple[str, int, int, int]], local: set[str]) -> dict[str, float]:
    """Self time (ms) summed by top-level package; the standard library, and the function with
    its shared layer, each as one group."""
    stdlib = set(sys.stdlib_module_names)
    groups: dict[str, float] = defaultdict(float)
    for name, _, self_us, _ in rows:
        top = name.split(".")[0]
        group = "(stdlib)" if top in stdlib else "(sendline)" if top in local else top
        groups[group] += self_us / 1000
    return dict(sorted(groups.items(), key=lambda kv: -kv[1]))


def _stdlib_and_runtime_only(cache: Path, runtime_packages: set[str]) -> None:
    """Deletes from a pycache_prefix tree every cache but the standard library's and the
    runtime-provided packages'."""
    base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix, "installed_base": sys.base_prefix,
            "installed_platbase": sys.base_exec_prefix}
    keep = {Path(sysconfig.get_path(k, vars=base)).resolve() for k in ("stdlib", "platstdlib")}
    purelib = Path(sysconfig.get_paths()["purelib"]).resolve()
    keep |= {purelib / name for name in runtime_packages} | {purelib / f"{name}.py" for name in runtime_packages}
    for compiled in list(cache.rglob("*.pyc")):
        # cache/<source folder>/<module>.cpython-3XX.pyc mirrors /<source folder>/<module>.py
        source = Path("/") / compiled.parent.relative_to(cache) / (compiled.name.split(".")[0] + ".py")
        if not any(source.is_relative_to(k) for k in keep):
            compiled.unlink()


def run(runs: int = 3) -> dict[str, Any]:
    from infra import spec

    layer_packages, runtime_packages = deployed_packages()
    allowed = ",".join(sorted(layer_packages | runtime_packages))
    local = {p.name for p in FUNCTIONS_DIR.iterdir()} | {p.name for p in LAYER_DIR.iterdir()}
    local |= {p.stem for d in FUNCTIONS_DIR.iterdir() if d.is_dir() for p in d.glob("*.py")}
    results: dict[str, Any] = {}
    environments = deployed_environments()
    with tempfile.TemporaryDirectory(prefix="sendline-bench-pycache-") as tmp:
        # Bytecode goes to a private tree (-X pycache_prefix), never beside the sources.
        cached_tree, bare_tree = Path(tmp) / "cached", Path(tmp) / "no-bytecode"
        for function in spec.FUNCTIONS:  # unmeasured: writes every module's bytecode
            probe(function.name, environments[function.name], allowed, pycache=cached_tree)
        shutil.copytree(cached_tree, bare_tree)
        _stdlib_and_runtime_only(bare_tree, runtime_packages)
        for function in spec.FUNCTIONS:
            environment = environments[function.name]
            cached = [probe(function.name, environment, allowed, pycache=cached_tree, write_bytecode=False)[0]
                      for _ in range(runs)]
            _, stderr = probe(function.name, environment, allowed, importtime=True, pycache=cached_tree,
                              write_bytecode=False)
            packages = time_by_package(parse_importtime(stderr), local)
            uncached = [probe(function.name, environment, allowed, pycache=bare_tree, write_bytecode=False)[0]
                        for _ in range(runs)]

            imports = [s["import_ms"] for s in cached]
            results[function.name] = {
                "import_ms_median": median(imports),
                "import_ms_min": min(imports),
                "import_ms_max": max(imports),
                "import_ms_runs": imports,
                "no_bytecode_import_ms_median": median([s["import_ms"] for s in uncached]),
                "no_bytecode_import_ms_runs": [s["import_ms"] for s in uncached],
                "clients_ms_median": median([s["clients_ms"] for s in cached]),
                "modules_loaded": cached[0]["modules_loaded"],
                "peak_rss_mb_median": median([s["peak_rss_mb"] for s in cached]),
                "memory_mb": function.memory_mb,
                "importtime_self_ms_by_package": {k: round(v, 1) for k, v in packages.items()},
            }
    return {"runs": runs, "python": sys.version.split()[0], "allowed_packages": sorted(allowed.split(",")),
            "functions": results}
