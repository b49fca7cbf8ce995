"""The fixed-seed slice of the chaos suite that runs with every `make test` (`make chaos` runs
1,000 runs per backend), and the executor stopped at each of its writes in turn."""

from __future__ import annotations

import pytest

from tests.chaos.harness import SHAPES, run_chaos, run_crash_points

SLICE_SEED = 20261123
SLICE_RUNS = {"sqlite": 36, "moto": 24}


def _assert_clean(report) -> None:
    assert report.violations == [], "\n".join(report.violations[:20])
    assert set(report.runs_by_status) == {"Completed"}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", ["sqlite", "moto"])
def test_mixed_workflows_under_random_faults(backend, tmp_path):
    report = run_chaos(backend, tmp_path, SLICE_RUNS[backend], SLICE_SEED)
    _assert_clean(report)
    # Every run of every shape came out, plus one child per invoke.
    assert sum(report.runs_by_status.values()) + sum(report.vanishing.values()) >= SLICE_RUNS[backend]
    assert sum(report.vanishing.values()) >= 1
    # The faults really happened, of each family: app answers, port writes, queue deliveries.
    faults = report.faults
    assert sum(v for k, v in faults.items() if k.startswith("app_")) > 0, faults
    assert faults["write_fails"] + faults["write_lost"] > 0, faults
    assert faults["duplicate"] + faults["late"] > 0, faults
    if backend == "moto":
        assert sum(v for k, v in faults.items() if k.startswith("aws_")) > 0, faults
    else:
        assert report.timer_samples > 0
    # Some step bodies ran more than once (lost answers), and each extra run was accounted for.
    assert report.executions > report.steps


@pytest.mark.timeout(300)
def test_executor_stopped_at_each_of_its_writes(tmp_path):
    report = run_crash_points("sqlite", tmp_path, SHAPES)
    _assert_clean(report)
    crashes = report.faults["crash_before_write"] + report.faults["crash_after_write"]
    assert crashes >= 2 * len(SHAPES), report.faults
