"""The storage ports: narrow protocols that together make the whole store, implemented in full by
both families, and engine services that each take only the ports they use."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import stepline.engine
from stepline.engine import stores
from stepline.engine.ports import Backend, DeadLetters, Timers, WorkQueue

NARROW = [
    stores.EventStore,
    stores.AppStore,
    stores.RunStore,
    stores.WaiterStore,
    stores.SignalStore,
    stores.FlowStateStore,
    stores.KeyClaims,
    stores.SlotStore,
    stores.RunEraser,
]
# Backend's typed view of its store for each port.
VIEWS = {
    "events": stores.EventStore,
    "apps": stores.AppStore,
    "runs": stores.RunStore,
    "waiters": stores.WaiterStore,
    "signals": stores.SignalStore,
    "flow_state": stores.FlowStateStore,
    "key_claims": stores.KeyClaims,
    "slots": stores.SlotStore,
    "eraser": stores.RunEraser,
}


def _methods(port: type) -> set[str]:
    return {name for name, value in vars(port).items() if inspect.isfunction(value) and not name.startswith("_")}


def test_each_store_method_belongs_to_exactly_one_narrow_port():
    owners: dict[str, list[str]] = {}
    for port in NARROW:
        for name in _methods(port):
            owners.setdefault(name, []).append(port.__name__)
    assert {name: ports for name, ports in owners.items() if len(ports) > 1} == {}
    assert _methods(stores.Store) == set()  # the whole store declares nothing of its own
    assert set(stores.Store.__mro__) >= set(NARROW)


def test_both_families_implement_every_port(backend):
    for port in NARROW:
        assert isinstance(backend.store, port), port.__name__
    assert isinstance(backend.store, stores.Store)
    assert isinstance(backend.queue, WorkQueue)
    assert isinstance(backend.timers, Timers)
    assert isinstance(backend.dead_letters, DeadLetters)
    for view, port in VIEWS.items():
        assert getattr(backend, view) is backend.store
        assert inspect.get_annotations(getattr(Backend, view).fget)["return"] == port.__name__


def _engine_classes():
    for info in pkgutil.walk_packages(stepline.engine.__path__, "stepline.engine."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == info.name:
                yield cls


def test_engine_services_take_narrow_ports_not_the_whole_store():
    # Only the Engine, which wires everything, takes the Backend (which carries the Store); no
    # service takes either.
    whole: dict[str, list[str]] = {}
    for cls in _engine_classes():
        init = vars(cls).get("__init__")
        if not inspect.isfunction(init) or cls.__name__ in ("Engine", "Backend"):
            continue
        annotations = inspect.get_annotations(init)
        bad = [p for p, a in annotations.items() if isinstance(a, str) and a.split(" ")[0] in ("Store", "Backend")]
        if bad:
            whole[f"{cls.__module__}.{cls.__name__}"] = bad
    assert whole == {}


@pytest.mark.parametrize("port", NARROW, ids=lambda p: p.__name__)
def test_some_engine_service_uses_each_port(port):
    users = [
        cls.__name__
        for cls in _engine_classes()
        if inspect.isfunction(vars(cls).get("__init__"))
        and port.__name__ in inspect.get_annotations(vars(cls)["__init__"]).values()
    ]
    assert users, f"no engine service takes {port.__name__}"
