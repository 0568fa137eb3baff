"""Run as a script in a fresh interpreter: imports one handler module the way the Lambda Python
runtime does (function folder and layer on sys.path, `import handler`) and prints, as JSON, how
long the import took, how many modules it loaded, the process's peak resident memory after the
import, and how long building the boto3 clients then takes (what the first invocation adds).

Usage: python -I bench/import_probe.py <function dir> <layer dir> [<allowed top-level names>]

With a comma-separated list of allowed top-level module names, any other third-party top-level
import fails as it would where that package is not installed (a deployed function sees only the
Lambda runtime and its layers, not this machine's development packages).
"""

import time

_STARTED = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402


class _OnlyDeployedPackages:
    """A meta path finder refusing top-level modules a deployed function would not have."""

    def __init__(self, allowed: set[str]):
        self.allowed = allowed | set(sys.stdlib_module_names)

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001, ANN201
        if "." in name or name in self.allowed or name.startswith("_sysconfigdata"):
            return None
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def _local_modules(folder: str) -> set[str]:
    names = set()
    for entry in os.listdir(folder):
        if entry.endswith(".py"):
            names.add(entry[:-3])
        elif os.path.isdir(os.path.join(folder, entry)) and entry.isidentifier():
            names.add(entry)
    return names


def _peak_rss_kb() -> int:
    """This process's peak resident memory: VmHWM (getrusage's ru_maxrss survives exec, so a probe
    started from a large parent would report the parent's peak)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    function_dir, layer_dir = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 3 and sys.argv[3]:
        allowed = set(sys.argv[3].split(",")) | _local_modules(function_dir) | _local_modules(layer_dir)
        sys.meta_path.insert(0, _OnlyDeployedPackages(allowed))
    sys.path[:0] = [function_dir, layer_dir]
    before = len(sys.modules)
    started = time.perf_counter()
    # __import__, not importlib.import_module, so that -X importtime reports the handler itself.
    __import__("handler")
    import_ms = (time.perf_counter() - started) * 1000
    modules_loaded = len(sys.modules) - before
    peak_rss_kb = _peak_rss_kb()
    # The first invocation then builds the boto3 clients (no network call is made here).
    clients_started = time.perf_counter()
    from sendline.adapters import aws

    aws.dynamodb()
    aws.sqs()
    clients_ms = (time.perf_counter() - clients_started) * 1000
    print(json.dumps({"import_ms": import_ms, "modules_loaded": modules_loaded, "peak_rss_mb": peak_rss_kb / 1024,
                      "clients_ms": clients_ms, "probe_overhead_ms": (started - _STARTED) * 1000}))


main()
