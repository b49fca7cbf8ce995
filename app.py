#!/usr/bin/env python3
"""`npx --yes aws-cdk synth` / `npx --yes aws-cdk deploy`: the Stepline stack (infra/). See
docs/deploy.md.

Configuration comes from context (`-c stepline:apiMemoryMb=1024`) or the environment
(`STEPLINE_CDK_API_MEMORY_MB=1024`); infra/config.py lists every setting.

Run by the CDK CLI, it writes where the CLI says (CDK_OUTDIR); run by hand (`.venv/bin/python
app.py`), it writes to cdk.out/. Either way it ends by saying where the template is.
"""

import os
import sys
from pathlib import Path

from infra.app import build_app

app, stack = build_app(outdir=None if os.environ.get("CDK_OUTDIR") else "cdk.out")
assembly = app.synth()
template = Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path)
try:
    shown = template.relative_to(Path.cwd())
except ValueError:
    shown = template
# stderr: the CLI keeps its own stdout for the template it prints.
print(f"synthesized stack {stack.stack_name}: the CloudFormation template is {shown}", file=sys.stderr)
