"""What the deployed Lambdas import: the engine, the API and the AWS adapters, never the dev
server (``stepline.dev``), whose threads and local files have no place in a Lambda."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _imported_after(module: str) -> list[str]:
    # A fresh interpreter: this test process has imported everything already.
    probe = (
        "import importlib, json, sys; "
        f"importlib.import_module({module!r}); "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('stepline'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("handler", ["stepline.handlers.api", "stepline.handlers.executor"])
def test_a_lambda_handler_does_not_import_the_dev_server(handler):
    imported = _imported_after(handler)
    assert handler in imported  # the probe saw the import it made
    assert [m for m in imported if m == "stepline.dev" or m.startswith("stepline.dev.")] == []
