"""Property-based fuzzing of every input surface, on both backends.

The profile keeps `make test` fast and deterministic: a modest number of examples per property,
no per-example deadline (moto and SQLite timings vary on a loaded machine) and a fixed seed.
``STEPLINE_FUZZ_EXAMPLES=2000`` raises every property to that many examples for a long run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.conftest import BACKENDS, open_backend
from tests.fuzz.harness import World, examples

settings.register_profile(
    "stepline-fuzz",
    max_examples=examples(30),
    deadline=None,
    derandomize=True,
    # Derandomized runs replay the same examples anyway; no .hypothesis directory in the tree.
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
settings.load_profile("stepline-fuzz")


def pytest_collection_modifyitems(config, items):
    # A long run takes as long as it takes: no per-test timeout for it (pyproject's is 120 s).
    if not os.environ.get("STEPLINE_FUZZ_EXAMPLES"):
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.timeout(0))


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, tmp_path_factory):
    """One engine and API per backend for the whole module: hypothesis runs many examples per
    test, and each example isolates itself by moving the clock (see ``World.tick``)."""
    from stepline.engine.clock import ManualClock

    clock = ManualClock()
    with open_backend(request.param, tmp_path_factory.mktemp(f"fuzz-{request.param}"), clock) as backend:
        yield World(request.param, backend, clock)
