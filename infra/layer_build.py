"""Builds the third-party dependencies Lambda layer from the pins in requirements.lock.

The runtime packages are the ones under the "# runtime" heading of requirements.in; their
versions, and those of everything they pull in, come from requirements.lock, so the layer ships
exactly what the tests ran against. What the Lambda Python runtime already provides (boto3 and
everything only it needs) is left out.

Wheels are fetched for the Lambda platform, not the build machine's: pydantic-core and wrapt are
compiled, and a wheel for the wrong CPU fails at import time on the first cold start.
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
# Lambda architecture name (aws_lambda.Architecture.name) -> the wheel platform it runs.
WHEEL_PLATFORMS = {
    "arm64": "manylinux2014_aarch64",
    "x86_64": "manylinux2014_x86_64",
}
# Shipped by the Lambda Python runtime itself; a second copy in a layer would only shadow it.
PROVIDED_BY_RUNTIME = ("boto3",)

RUNTIME_HEADING = "# runtime"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_VIA_ONE = re.compile(r"^\s+#\s+via\s+(\S.*)$")
_VIA_MANY = re.compile(r"^\s+#\s+via\s*$")
_VIA_ITEM = re.compile(r"^\s+#\s{3,}(\S.*)$")
_REQUIREMENT_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    """PEP 503 name, so `typing_extensions` and `Typing-Extensions` are the same package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_roots(requirements_in: Path = REQUIREMENTS_IN) -> list[str]:
    """Package names listed under the "# runtime" heading of requirements.in."""
    roots: list[str] = []
    in_runtime = False
    for raw in requirements_in.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#"):
            in_runtime = line.lower().startswith(RUNTIME_HEADING)
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
    shipped = closure(roots - provided, required_by) - provided
    return [f"{name}=={pins[name]}" for name in sorted(shipped)]


def _fingerprint(pins: list[str], platform: str) -> str:
    payload = json.dumps({"pins": pins, "platform": platform, "python": LAMBDA_PYTHON_VERSION})
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
    platform = WHEEL_PLATFORMS[architecture]
    pins = layer_pins()
    fingerprint = _fingerprint(pins, platform)
    stamp = _stamp_path(target)
    if (target / "python").is_dir() and stamp.is_file() and stamp.read_text() == fingerprint:
        return target

    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        sys.executable, "-m", "pip", "install",
        "--target", str(staging / "python"),
        "--platform", platform,
        "--python-version", LAMBDA_PYTHON_VERSION,
        "--implementation", "cp",
        "--only-binary=:all:",
        # The pins already are the whole closure; resolving again would pull in botocore.
        "--no-deps",
        # Byte code compiled here would be for this interpreter, not Lambda's 3.12.
        "--no-compile",
        "--disable-pip-version-check",
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


if __name__ == "__main__":
    for pin in layer_pins():
        print(pin)
