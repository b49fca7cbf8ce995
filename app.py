#!/usr/bin/env python3
"""`npx aws-cdk synth` / `npx aws-cdk deploy`: the Stepline stack (infra/). See docs/deploy.md.

Configuration comes from context (`-c stepline:apiMemoryMb=1024`) or the environment
(`STEPLINE_CDK_API_MEMORY_MB=1024`); infra/config.py lists every setting.
"""

from infra.app import build_app

app, _stack = build_app()
app.synth()
