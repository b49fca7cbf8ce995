"""The CEL library loaded without its command-line interface (stepline.protocol.cel_library).

``import cel`` would import the package's REPL and prompt_toolkit with it; these tests fail if
that comes back, and check that the compiled module we load is the library itself: the same
programs, the same errors, and one module shared with code that imports ``cel`` the usual way.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stepline.protocol import cel_library

REPO = Path(__file__).resolve().parents[2]
CLI_MODULES = ("cel.cli", "prompt_toolkit", "typer", "rich", "pygments")


def run_fresh(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object last."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_compiling_and_evaluating_loads_the_extension_and_not_the_cli():
    result = run_fresh(
        f"""
        import json, sys
        from stepline.protocol import cel_library as cel
        before = "cel.cel" in sys.modules
        program = cel.compile("event.data.total > 10 && event.name.startsWith('shop/')")
        value = program.execute({{"event": {{"name": "shop/order", "data": {{"total": 12}}}}}})
        cli = sorted(m for m in sys.modules if m.split(".")[0] in {CLI_MODULES!r} or m in {CLI_MODULES!r})
        print(json.dumps({{"before": before, "value": value, "cli": cli, "package": "cel" in sys.modules}}))
        """
    )
    assert result == {"before": False, "value": True, "cli": [], "package": False}


def test_a_later_import_of_the_package_shares_the_loaded_extension():
    result = run_fresh(
        """
        import json
        from stepline.protocol import cel_library
        program = cel_library.compile("1 + 1")
        import cel  # a user's own code, the usual way: its __init__ runs now (CLI and all)
        print(json.dumps({"same": cel.compile is cel_library.compile and type(program) is cel.Program,
                          "value": cel.compile("2 * 3").execute({})}))
        """
    )
    assert result == {"same": True, "value": 6}


def test_when_the_package_was_imported_first_its_extension_is_used():
    result = run_fresh(
        """
        import json
        import cel
        from stepline.protocol import cel_library
        print(json.dumps({"same": cel_library.extension() is cel.cel}))
        """
    )
    assert result == {"same": True}


def test_bad_expressions_fail_as_the_library_fails():
    with pytest.raises(ValueError):
        cel_library.compile("event.data.(")
    assert cel_library.compile("[1, 2, 3].exists(x, x > 2)").execute({}) is True


def test_names_the_extension_does_not_have_are_attribute_errors():
    with pytest.raises(AttributeError):
        cel_library.no_such_function  # noqa: B018
