"""CDK entry point: `python -m infra.app` from the repo root (cdk.json's app, `make synth`).

Context (`-c key=value`, here or on the cdk command line):
- `stage`: `dev` (the default) or `prod`; the stack is `Sendline-<stage>`.
- `corsOrigins`: more origins, comma-separated, that the API and the uploads bucket accept
  besides the dashboard's (e.g. `http://localhost:5173` while developing the dashboard).
- `alarmEmail`: an address subscribed to the alarm topic.
- `powertoolsLayerVersion`: the public Powertools layer version to use instead of the one
  infra.stack.POWERTOOLS_LAYER_VERSIONS gives for the pinned release.

Every synth runs cdk-nag's AWS Solutions checks (infra.nag) and fails on a finding nobody
accepted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import cx_api

from infra import nag
from infra.layer_build import (
    DEFAULT_LAYER_DIR,
    LAMBDA_UNZIPPED_LIMIT,
    REPO_ROOT,
    build_deps_layer,
    megabytes,
    tree_size,
)
from infra.stack import ARCHITECTURE, SHARED_LAYER_DIR, STAGES, SendlineStack

DEFAULT_STAGE = "dev"
CDK_JSON = REPO_ROOT / "cdk.json"
# The dashboard's built files (its own build writes them); deployed when there.
DASHBOARD_DIST = REPO_ROOT / "dashboard" / "dist"
# The cdk CLI passes its output folder in CDK_OUTDIR; run on its own, the app writes where
# cdk.json's "output" points, instead of CDK's default of a throwaway temp folder.
DEFAULT_OUTDIR = REPO_ROOT / "cdk.out"


def stack_name(stage: str) -> str:
    return f"Sendline-{stage}"


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context (feature flags). The cdk CLI passes it to the app itself; reading it
    here too makes `python -m infra.app` and the tests synthesize the same template."""
    return dict(json.loads(CDK_JSON.read_text()).get("context", {}))


def create_app(*, outdir: str | Path | None = None, context: Mapping[str, Any] | None = None,
               checks: bool = True) -> cdk.App:
    """An app with cdk.json's context plus `context`, and (with `checks`) cdk-nag registered,
    so its synth fails on an unaccepted finding."""
    app = cdk.App(outdir=str(outdir) if outdir else None, context={**cdk_json_context(), **(context or {})})
    if checks:
        cdk.Validations.of(app).add_plugins(nag.checks())
    return app


def _context_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [item.strip().rstrip("/") for item in value.split(",") if item.strip()]
    return [str(item).rstrip("/") for item in value]


def stage_of(app: cdk.App) -> str:
    stage = app.node.try_get_context("stage") or DEFAULT_STAGE
    if stage not in STAGES:
        raise ValueError(f"context stage={stage!r}: use one of {', '.join(STAGES)}")
    return stage


def build_stack(app: cdk.App, *, deps_layer_dir: str | Path, dashboard_dir: str | Path | None,
                env: cdk.Environment | None = None, **kwargs: Any) -> SendlineStack:
    """The stack for the app's `stage` context, configured from the rest of its context."""
    stage = stage_of(app)
    layer_version = app.node.try_get_context("powertoolsLayerVersion")
    return SendlineStack(
        app,
        stack_name(stage),
        stage=stage,
        deps_layer_dir=deps_layer_dir,
        dashboard_dir=dashboard_dir,
        extra_origins=_context_list(app.node.try_get_context("corsOrigins")),
        alarm_email=app.node.try_get_context("alarmEmail") or None,
        powertools_layer_version=int(layer_version) if layer_version else None,
        env=env,
        description=f"Sendline SMS platform ({stage})",
        **kwargs,
    )


def synthesize(*, context: Mapping[str, Any], outdir: str | Path, deps_layer_dir: str | Path,
               dashboard_dir: str | Path | None, env: cdk.Environment | None = None,
               checks: bool = True) -> tuple[SendlineStack, cx_api.CloudAssembly]:
    """What `make synth` does once the deps layer is built: the stack for `context`, written to
    `outdir`, after cdk-nag's checks (which raise on an unaccepted finding)."""
    app = create_app(outdir=outdir, context=context, checks=checks)
    stack = build_stack(app, deps_layer_dir=deps_layer_dir, dashboard_dir=dashboard_dir, env=env)
    return stack, app.synth()


def layer_sizes(deps_layer_dir: Path) -> str:
    """The unzipped size of our two layers against Lambda's limit (the Powertools layer is
    AWS's and counts on top)."""
    shared = tree_size(SHARED_LAYER_DIR)
    deps = tree_size(deps_layer_dir)
    return (f"layers unzipped: shared {megabytes(shared)} + deps {megabytes(deps)} = "
            f"{megabytes(shared + deps)} (Lambda's limit for a function and its layers: "
            f"{megabytes(LAMBDA_UNZIPPED_LIMIT)}, the Powertools layer not counted)")


def _parse_context(argv: list[str]) -> dict[str, str]:
    parser = argparse.ArgumentParser(prog="python -m infra.app", description=__doc__.split("\n")[0])
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE",
                        help="context value, as for `cdk synth -c` (stage=prod, corsOrigins=..., alarmEmail=...)")
    args = parser.parse_args(argv)
    context = {}
    for item in args.context:
        key, _, value = item.partition("=")
        if not key or not _:
            parser.error(f"context {item!r} is not KEY=VALUE")
        context[key] = value
    return context


def main(argv: list[str] | None = None) -> None:
    context = _parse_context(sys.argv[1:] if argv is None else argv)
    deps_layer_dir = build_deps_layer(DEFAULT_LAYER_DIR, architecture=ARCHITECTURE.name)
    print(layer_sizes(deps_layer_dir), file=sys.stderr)
    dashboard_dir = DASHBOARD_DIST if (DASHBOARD_DIST / "index.html").is_file() else None
    if dashboard_dir is None:
        shown = DASHBOARD_DIST.relative_to(REPO_ROOT) if DASHBOARD_DIST.is_relative_to(REPO_ROOT) else DASHBOARD_DIST
        print(f"note: {shown}/index.html is not there (build the dashboard first); only the "
              "dashboard's config.json is deployed.", file=sys.stderr)
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEFAULT_REGION")
    env = cdk.Environment(account=account, region=region) if account or region else None
    outdir = os.environ.get("CDK_OUTDIR", str(DEFAULT_OUTDIR))
    stack, _ = synthesize(context=context, outdir=outdir, deps_layer_dir=deps_layer_dir,
                          dashboard_dir=dashboard_dir, env=env)
    print(f"synthesized {stack.stack_name} into {outdir}", file=sys.stderr)


if __name__ == "__main__":
    main()
