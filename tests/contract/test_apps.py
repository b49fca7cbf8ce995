"""AppStore: apps and their functions, whole-set replacement and trigger lookup."""

from __future__ import annotations

from .helpers import make_app, make_function


def by_id(functions):
    return sorted(functions, key=lambda f: f.fn_id)


def test_put_app_round_trips_app_and_functions(backend):
    fns = [make_function("shop-fulfil", ["shop/order.paid"]), make_function("shop-email", ["shop/order.created"])]
    app = make_app("shop", [f.fn_id for f in fns])

    backend.store.put_app(app, fns)

    assert backend.store.get_app("shop") == app
    assert backend.store.list_apps() == [app]
    assert backend.store.get_function("shop-fulfil") == fns[0]
    assert by_id(backend.store.list_functions()) == by_id(fns)


def test_unknown_app_and_function_are_none(backend):
    assert backend.store.get_app("nope") is None
    assert backend.store.get_function("nope") is None
    assert backend.store.list_apps() == []
    assert backend.store.list_functions() == []
    assert backend.store.functions_for_event("shop/order.paid") == []


def test_functions_for_event_matches_the_exact_name(backend):
    fulfil = make_function("shop-fulfil", ["shop/order.paid", "shop/order.retry"])
    audit = make_function("shop-audit", ["shop/order.paid"])
    other = make_function("shop-other", ["shop/order.paid.late", "shop/order"])
    backend.store.put_app(make_app("shop"), [fulfil, audit, other])

    assert by_id(backend.store.functions_for_event("shop/order.paid")) == by_id([fulfil, audit])
    assert backend.store.functions_for_event("shop/order.retry") == [fulfil]
    assert backend.store.functions_for_event("shop/order.pai") == []
    assert backend.store.functions_for_event("SHOP/ORDER.PAID") == []


def test_put_app_replaces_the_whole_function_set(backend):
    keep = make_function("shop-keep", ["shop/a"])
    drop = make_function("shop-drop", ["shop/a", "shop/b"])
    backend.store.put_app(make_app("shop", ["shop-keep", "shop-drop"]), [keep, drop])

    keep_v2 = make_function("shop-keep", ["shop/c"])
    added = make_function("shop-added", ["shop/b"])
    app_v2 = make_app("shop", ["shop-keep", "shop-added"], synced_at=2)
    backend.store.put_app(app_v2, [keep_v2, added])

    assert backend.store.get_app("shop") == app_v2
    assert backend.store.get_function("shop-drop") is None
    assert backend.store.get_function("shop-keep") == keep_v2
    assert by_id(backend.store.list_functions()) == by_id([keep_v2, added])
    assert backend.store.functions_for_event("shop/a") == []
    assert backend.store.functions_for_event("shop/b") == [added]
    assert backend.store.functions_for_event("shop/c") == [keep_v2]


def test_put_app_with_no_functions_removes_them_all(backend):
    backend.store.put_app(make_app("shop"), [make_function("shop-x", ["shop/a"])])
    backend.store.put_app(make_app("shop", synced_at=2), [])

    assert backend.store.list_functions() == []
    assert backend.store.functions_for_event("shop/a") == []
    assert backend.store.get_app("shop").synced_at == 2


def test_put_app_leaves_other_apps_alone(backend):
    shop_fn = make_function("shop-x", ["common/event"], app_id="shop")
    billing_fn = make_function("billing-x", ["common/event"], app_id="billing")
    backend.store.put_app(make_app("shop"), [shop_fn])
    backend.store.put_app(make_app("billing"), [billing_fn])

    backend.store.put_app(make_app("shop", synced_at=2), [])

    assert backend.store.functions_for_event("common/event") == [billing_fn]
    assert sorted(a.app_id for a in backend.store.list_apps()) == ["billing", "shop"]


def test_delete_app_removes_it_with_its_functions_and_triggers(backend):
    shop_fn = make_function("shop-x", ["common/event"], app_id="shop")
    billing_fn = make_function("billing-x", ["common/event"], app_id="billing")
    backend.store.put_app(make_app("shop", ["shop-x"]), [shop_fn])
    backend.store.put_app(make_app("billing", ["billing-x"]), [billing_fn])

    backend.store.delete_app("shop")
    backend.store.delete_app("nope")  # unknown: nothing happens

    assert backend.store.get_app("shop") is None
    assert backend.store.get_function("shop-x") is None
    assert [a.app_id for a in backend.store.list_apps()] == ["billing"]
    assert backend.store.functions_for_event("common/event") == [billing_fn]
