"""Views built from what any SDK sends on sync: the register payload (docs/protocol.md §4), as posted
or as a Stepline server stored it. These show each function's configuration and nothing of its
code, so the checks that read code say "needs source"."""

from __future__ import annotations

from typing import Any

import pydantic

from stepline.check.model import AppView, FunctionView, Sdk, ServeInfo
from stepline.protocol.errors import ProtocolError
from stepline.protocol.register import AppSync, FunctionConfig, parse_register


def app_id_of(raw: dict[str, Any]) -> str | None:
    for key in ("appname", "appName", "app_id"):
        if isinstance(raw.get(key), str) and raw[key]:
            return raw[key]
    return None


def normalized(raw: dict[str, Any]) -> dict[str, Any]:
    """The entry as a Stepline server would store it, or as sent when it does not parse (the
    checks read it defensively either way)."""
    try:
        return FunctionConfig.model_validate(raw).normalized()
    except pydantic.ValidationError:
        return raw


def view_from_register(
    raw: dict[str, Any], *, target: str, serve: ServeInfo, introspected_count: int | None = None
) -> AppView:
    """A view of a register body exactly as the app posted it. Kept raw, because what a server
    would refuse (a duplicate function id) is itself a finding."""
    app_id = app_id_of(raw)
    functions = raw.get("functions")
    entries: list[Any] = functions if isinstance(functions, list) else []
    view = AppView(
        target=target,
        kind="url",
        app_ids=[app_id] if app_id else [],
        serve=serve,
        introspected_count=introspected_count,
        sdk=Sdk.from_wire(raw.get("sdk") if isinstance(raw.get("sdk"), str) else None),
    )
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            view.functions.append(FunctionView(id=entry["id"], config=normalized(entry), app_id=app_id))
    try:
        parse_register(_json_bytes(raw))
    except ProtocolError as err:
        view.notes.append(f"a Stepline server refuses this sync: {err.message}")
    return view


def view_from_stored(
    app_id: str,
    configs: list[dict[str, Any]],
    *,
    target: str,
    serve: ServeInfo,
    introspected_count: int | None = None,
    sdk: Sdk = Sdk.UNKNOWN,
) -> AppView:
    """A view of the configuration a Stepline server stored at the app's last sync."""
    view = AppView(
        target=target, kind="url", app_ids=[app_id], serve=serve, introspected_count=introspected_count, sdk=sdk
    )
    for config in configs:
        view.functions.append(FunctionView(id=config["id"], config=config, app_id=app_id))
    return view


def view_from_sync(sync: AppSync) -> AppView:
    """What the runtime knows when it accepts a sync."""
    view = AppView(
        target=sync.url,
        kind="sync",
        app_ids=[sync.app_id],
        serve=ServeInfo(True, f"the app synced from {sync.url}"),
        sdk=Sdk.from_wire(sync.sdk),
    )
    for fn in sync.functions:
        view.functions.append(FunctionView(id=fn.id, config=fn.normalized(), app_id=sync.app_id))
    return view


def _json_bytes(raw: dict[str, Any]) -> bytes:
    import json

    return json.dumps(raw).encode()
