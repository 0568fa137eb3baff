"""The deps layer: what it ships, and that what it ships runs on Lambda's arm64 python3.12.

`test_the_deps_layer_is_built_for_lambda_arm64` fetches wheels from the package registry the
first time (into build/deps-layer, what `make synth` uses too) and reuses them while the pins do
not change.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from infra import layer_build
from infra.layer_build import (
    DEFAULT_LAYER_DIR,
    LAMBDA_UNZIPPED_LIMIT,
    build_deps_layer,
    canonical,
    layer_pins,
    megabytes,
    runtime_roots,
    tree_size,
    wheel_platforms,
)
from infra.stack import SHARED_LAYER_DIR

EM_AARCH64 = 183
ELF_MAGIC = b"\x7fELF"
# A wheel's platform tag that runs on Lambda's arm64 Amazon Linux 2023 (glibc 2.34).
LAMBDA_ARM64_TAG = re.compile(r"^(manylinux2014_aarch64|manylinux_2_(\d+)_aarch64)$")


def test_runtime_packages_run_to_the_next_heading_past_explanatory_comments(tmp_path):
    # Given a requirements.in whose runtime section has a comment explaining one package
    requirements = tmp_path / "requirements.in"
    requirements.write_text(
        "# runtime (shipped to Lambda)\n"
        "aws-lambda-powertools[tracer]\n"
        "Pydantic\n"
        "# Operators' tokens, verified in the functions (RS256 needs cryptography)\n"
        "pyjwt[crypto]\n"
        "# infrastructure\n"
        "aws-cdk-lib\n"
        "# local stack and tests\n"
        "pytest\n"
    )

    # When its runtime packages are read
    roots = runtime_roots(requirements)

    # Then the package after the comment is one, and nothing after the next heading is
    assert roots == ["aws-lambda-powertools", "pydantic", "pyjwt"]


def test_the_layer_ships_the_runtime_closure_without_what_lambda_or_powertools_provide():
    names = {canonical(pin.split("==")[0]) for pin in layer_pins()}

    # What the functions import, and what that needs
    assert {"pydantic", "pydantic-core", "httpx", "phonenumbers", "holidays", "pyjwt", "cryptography",
            "cffi"} <= names
    # The Lambda runtime's own boto3 and everything only it needs
    assert names.isdisjoint({"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil"})
    # AWS's Powertools layer (with its extras: the X-Ray SDK and wrapt)
    assert names.isdisjoint({"aws-lambda-powertools", "aws-xray-sdk", "wrapt"})
    # Nothing for infrastructure or tests
    assert names.isdisjoint({"aws-cdk-lib", "constructs", "cdk-nag", "cfn-lint", "moto", "pytest", "twilio"})


def test_wheels_are_asked_for_every_glibc_lambda_python312_accepts():
    platforms = wheel_platforms("aarch64")
    assert platforms[:3] == ["manylinux_2_34_aarch64", "manylinux_2_33_aarch64", "manylinux_2_32_aarch64"]
    assert platforms[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert len(platforms) == 34 - 17 + 1 + 1
    assert layer_build.MACHINES["arm64"] == "aarch64"


def elf_machine(path: Path) -> int | None:
    """The ELF e_machine of a shared object (None if the file is no ELF file)."""
    with path.open("rb") as file:
        header = file.read(20)
    if len(header) < 20 or header[:4] != ELF_MAGIC:
        return None
    byte_order = "<" if header[5] == 1 else ">"
    (machine,) = struct.unpack(f"{byte_order}H", header[18:20])
    return machine


def wheel_tags(python_dir: Path) -> dict[str, list[str]]:
    """Each installed distribution's WHEEL tags."""
    tags = {}
    for wheel in sorted(python_dir.glob("*.dist-info/WHEEL")):
        tags[wheel.parent.name] = [line.split(":", 1)[1].strip() for line in wheel.read_text().splitlines()
                                   if line.startswith("Tag:")]
    return tags


def runs_on_lambda_arm64(tag: str) -> bool:
    _, abi, platform = tag.split("-")
    if platform == "any":
        return abi == "none"
    match = LAMBDA_ARM64_TAG.match(platform)
    return bool(match) and (match.group(2) is None or int(match.group(2)) <= 34)


@pytest.mark.timeout(900)
def test_the_deps_layer_is_built_for_lambda_arm64():
    # Given the layer built from the lock file (or reused, the pins unchanged)
    layer = build_deps_layer(DEFAULT_LAYER_DIR, architecture="arm64")
    python_dir = layer / "python"
    shared = tree_size(SHARED_LAYER_DIR)
    deps = tree_size(layer)
    print(f"\nlayers unzipped: shared {megabytes(shared)} + deps {megabytes(deps)} = {megabytes(shared + deps)} "
          f"(limit {megabytes(LAMBDA_UNZIPPED_LIMIT)}, the Powertools layer not counted)")

    # Then every compiled library in it is for 64-bit ARM
    shared_objects = sorted(p for p in python_dir.rglob("*.so*") if p.is_file())
    assert shared_objects, "no compiled library at all: pydantic-core and cryptography ship some"
    assert {str(p.relative_to(python_dir)): elf_machine(p) for p in shared_objects} == {
        str(p.relative_to(python_dir)): EM_AARCH64 for p in shared_objects}

    # And every wheel installed is for Lambda's arm64 glibc or pure Python
    tags = wheel_tags(python_dir)
    assert len(tags) == len(layer_pins())
    assert {name: [t for t in found if not runs_on_lambda_arm64(t)] for name, found in tags.items()} == {
        name: [] for name in tags}

    # And it holds exactly the pinned versions, Powertools and boto3 left to their own layers
    installed = dict(name.removesuffix(".dist-info").rsplit("-", 1) for name in tags)
    installed = {canonical(name): version for name, version in installed.items()}
    assert installed == {canonical(n): v for n, v in (pin.split("==") for pin in layer_pins())}
    assert not (python_dir / "aws_lambda_powertools").exists()
    assert not (python_dir / "boto3").exists()

    # And with our shared layer it stays under Lambda's unzipped limit
    assert shared + deps < LAMBDA_UNZIPPED_LIMIT, megabytes(shared + deps)


@pytest.mark.timeout(900)
def test_an_unchanged_layer_is_reused_not_rebuilt(monkeypatch):
    layer = build_deps_layer(DEFAULT_LAYER_DIR, architecture="arm64")
    calls = []
    monkeypatch.setattr(layer_build.subprocess, "run", lambda *args, **kwargs: calls.append(args))

    assert build_deps_layer(DEFAULT_LAYER_DIR, architecture="arm64") == layer
    assert calls == []
