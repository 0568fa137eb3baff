"""CDK entry point: `python -m infra.app` from the repo root (cdk.json's app, `make synth`)."""

from __future__ import annotations

import os

import aws_cdk as cdk

from infra.layer_build import DEFAULT_LAYER_DIR, REPO_ROOT, build_deps_layer
from infra.stack import ARCHITECTURE, SendlineStack

STACK_NAME = "Sendline"
# The cdk CLI passes its output folder in CDK_OUTDIR; run on its own, the app writes where
# cdk.json's "output" points, instead of CDK's default of a throwaway temp folder.
DEFAULT_OUTDIR = REPO_ROOT / "cdk.out"


def main() -> None:
    deps_layer_dir = build_deps_layer(DEFAULT_LAYER_DIR, architecture=ARCHITECTURE.name)
    app = cdk.App(outdir=os.environ.get("CDK_OUTDIR", str(DEFAULT_OUTDIR)))
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEFAULT_REGION")
    env = cdk.Environment(account=account, region=region) if account or region else None
    SendlineStack(app, STACK_NAME, deps_layer_dir=deps_layer_dir, env=env)
    app.synth()


if __name__ == "__main__":
    main()
