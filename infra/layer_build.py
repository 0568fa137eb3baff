"""Builds the third-party dependencies Lambda layer from the pins in requirements.lock.

The runtime packages are the ones under the "# runtime" heading of requirements.in; their
versions, and those of everything they pull in, come from requirements.lock, so the layer ships
exactly what the tests ran against. What the Lambda Python runtime already provides (boto3 and
everything only it needs) is left out, and so is aws-lambda-powertools, which the functions get
from AWS's own Powertools layer (with its extras, e.g. aws-xray-sdk for the tracer).

Wheels are fetched for the Lambda platform, not the build machine's: pydantic-core and
cryptography are compiled, and a wheel for the wrong CPU fails at import time on the first cold
start.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS_IN = REPO_ROOT / "requirements.in"
REQUIREMENTS_LOCK = REPO_ROOT / "requirements.lock"
DEFAULT_LAYER_DIR = REPO_ROOT / "build" / "deps-layer"

LAMBDA_PYTHON_VERSION = "3.12"
# The python3.12 runtime runs on Amazon Linux 2023, whose glibc is 2.34: a wheel built for that
# glibc or any older one runs there. pip matches manylinux tags literally (it does not widen
# manylinux_2_34 to the older ones), so every accepted tag is listed; some packages (e.g.
# cryptography) publish only manylinux_2_28 / manylinux_2_34 wheels for aarch64.
LAMBDA_GLIBC = (2, 34)
OLDEST_MANYLINUX_GLIBC = (2, 17)  # manylinux2014


def wheel_platforms(machine: str) -> list[str]:
    """pip `--platform` values for a Lambda CPU (`aarch64` or `x86_64`), newest glibc first."""
    major, newest = LAMBDA_GLIBC
    _, oldest = OLDEST_MANYLINUX_GLIBC
    tags = [f"manylinux_{major}_{minor}_{machine}" for minor in range(newest, oldest - 1, -1)]
    return [*tags, f"manylinux2014_{machine}"]


# Lambda architecture name (aws_lambda.Architecture.name) -> the CPU its wheels are built for.
MACHINES = {
    "arm64": "aarch64",
    "x86_64": "x86_64",
}
# Shipped by the Lambda Python runtime itself; a second copy in a layer would only shadow it.
PROVIDED_BY_RUNTIME = ("boto3",)
# Shipped by AWS's Powertools layer, which every function also gets (infra.stack). Only the
# package itself is left out: what other runtime packages also need (typing-extensions,
# pydantic...) stays in this layer at the locked version, which wins because this layer is
# applied after the Powertools one.
PROVIDED_BY_POWERTOOLS_LAYER = ("aws-lambda-powertools",)

RUNTIME_HEADING = "# runtime"
# The headings that end the runtime section; other comments inside it only explain a line.
OTHER_HEADINGS = ("# infrastructure", "# local stack")
# A wheel download that times out is retried; the whole build is given this long per attempt.
PIP_TIMEOUT_S = 120
PIP_RETRIES = 5

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_VIA_ONE = re.compile(r"^\s+#\s+via\s+(\S.*)$")
_VIA_MANY = re.compile(r"^\s+#\s+via\s*$")
_VIA_ITEM = re.compile(r"^\s+#\s{3,}(\S.*)$")
_REQUIREMENT_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    """PEP 503 name, so `typing_extensions` and `Typing-Extensions` are the same package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_roots(requirements_in: Path = REQUIREMENTS_IN) -> list[str]:
    """Package names listed under the "# runtime" heading of requirements.in, up to the next
    heading (OTHER_HEADINGS); a comment explaining a runtime package does not end the section."""
    roots: list[str] = []
    in_runtime = False
    for raw in requirements_in.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#"):
            lowered = line.lower()
            if lowered.startswith(RUNTIME_HEADING):
                in_runtime = True
            elif lowered.startswith(OTHER_HEADINGS):
                in_runtime = False
            continue
        if in_runtime and line:
            match = _REQUIREMENT_NAME.match(line)
            if match:
                roots.append(canonical(match.group(1)))
    if not roots:
        raise ValueError(f"{requirements_in}: no packages under a {RUNTIME_HEADING!r} heading")
    return roots


def parse_lock(lock: Path = REQUIREMENTS_LOCK) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Returns (pinned version by package, the packages that require it) from pip-compile output."""
    pins: dict[str, str] = {}
    required_by: dict[str, set[str]] = {}
    current: str | None = None
    in_via_list = False
    for line in lock.read_text().splitlines():
        pin = _PIN.match(line)
        if pin:
            current = canonical(pin.group(1))
            pins[current] = pin.group(2)
            required_by[current] = set()
            in_via_list = False
            continue
        if current is None:
            continue
        via_one = _VIA_ONE.match(line)
        if via_one:
            required_by[current].add(via_one.group(1).strip())
            in_via_list = False
            continue
        if _VIA_MANY.match(line):
            in_via_list = True
            continue
        item = _VIA_ITEM.match(line) if in_via_list else None
        if item:
            required_by[current].add(item.group(1).strip())
            continue
        in_via_list = False
    for parents in required_by.values():
        parents_canonical = {canonical(p) for p in parents if not p.startswith("-r ")}
        parents.clear()
        parents.update(parents_canonical)
    return pins, required_by


def closure(roots: set[str], required_by: dict[str, set[str]]) -> set[str]:
    """Every package reachable from `roots` by following the lock's "via" edges forward."""
    reached = set(roots)
    changed = True
    while changed:
        changed = False
        for package, parents in required_by.items():
            if package not in reached and parents & reached:
                reached.add(package)
                changed = True
    return reached


def layer_pins(
    requirements_in: Path = REQUIREMENTS_IN, lock: Path = REQUIREMENTS_LOCK
) -> list[str]:
    """`name==version` for every package the layer ships, sorted by name."""
    pins, required_by = parse_lock(lock)
    roots = set(runtime_roots(requirements_in))
    missing = sorted(roots - pins.keys())
    if missing:
        raise ValueError(f"{lock}: runtime packages without a pin: {', '.join(missing)}")
    provided = closure({canonical(p) for p in PROVIDED_BY_RUNTIME}, required_by)
    from_powertools_layer = {canonical(p) for p in PROVIDED_BY_POWERTOOLS_LAYER}
    shipped = closure(roots - provided - from_powertools_layer, required_by) - provided
    return [f"{name}=={pins[name]}" for name in sorted(shipped)]


def pinned_version(package: str, lock: Path = REQUIREMENTS_LOCK) -> str:
    """The version requirements.lock pins for `package`."""
    pins, _ = parse_lock(lock)
    return pins[canonical(package)]


def _fingerprint(pins: list[str], platforms: list[str]) -> str:
    payload = json.dumps({"pins": pins, "platforms": platforms, "python": LAMBDA_PYTHON_VERSION})
    return hashlib.sha256(payload.encode()).hexdigest()


def _stamp_path(target: Path) -> Path:
    # Beside the folder, not in it: everything inside the folder is zipped into the layer.
    return target.with_name(target.name + ".stamp")


def build_deps_layer(target: Path = DEFAULT_LAYER_DIR, architecture: str = "arm64") -> Path:
    """Installs the pinned runtime packages into `target/python` unless they are already there.

    A folder built from other pins or for another platform is rebuilt; a failed build leaves
    no folder behind, so a half-built layer is never mistaken for a finished one.
    """
    target = Path(target)
    platforms = wheel_platforms(MACHINES[architecture])
    pins = layer_pins()
    fingerprint = _fingerprint(pins, platforms)
    stamp = _stamp_path(target)
    if (target / "python").is_dir() and stamp.is_file() and stamp.read_text() == fingerprint:
        return target

    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        sys.executable, "-m", "pip", "install",
        "--target", str(staging / "python"),
        *(option for platform in platforms for option in ("--platform", platform)),
        "--python-version", LAMBDA_PYTHON_VERSION,
        "--implementation", "cp",
        "--only-binary=:all:",
        # The pins already are the whole closure; resolving again would pull in botocore.
        "--no-deps",
        # Byte code compiled here would be for this interpreter, not Lambda's 3.12.
        "--no-compile",
        "--disable-pip-version-check",
        "--timeout", str(PIP_TIMEOUT_S),
        "--retries", str(PIP_RETRIES),
        "--quiet",
        *pins,
    ]  # fmt: skip
    try:
        subprocess.run(command, check=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(staging / "python" / "bin", ignore_errors=True)

    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(target)
    stamp.write_text(fingerprint)
    return target


def tree_size(folder: Path) -> int:
    """Bytes of every file under `folder`, as Lambda counts a layer once unzipped; byte code
    caches are left out, as the stack's assets leave them out."""
    return sum(path.stat().st_size for path in Path(folder).rglob("*")
               if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc")


def megabytes(size: int) -> str:
    """Sizes as AWS states Lambda's limits: 250 MB there is 250 x 1024 x 1024 bytes."""
    return f"{size / (1024 * 1024):.1f} MB"


# Lambda's limit on a function and all its layers, unzipped.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


if __name__ == "__main__":
    for pin in layer_pins():
        print(pin)
