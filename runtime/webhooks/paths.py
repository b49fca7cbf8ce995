"""JSON paths into a delivery's payload (``$.data.object.id``, ``$.items[0]``, ``$['a.b']``):
checked when a source is configured (``stepline.webhooks.model``) and read when a delivery
arrives (``stepline.webhooks.transform``). Only paths: no expression language, no code."""

from __future__ import annotations

import re
from typing import Any

# $.a.b, $.a[0], $['a.b'], $["a"]
_PATH_STEP = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^']*)'\]|\["([^"]*)"\]""")


def parse_path(path: str, where: str) -> list[str | int]:
    """The steps of ``path``: names and list indexes. ``ValueError`` naming ``where`` when it is
    not a path this reads."""
    if not path.startswith("$"):
        raise ValueError(f"{where}: a JSON path starts with $ (e.g. $.data.object.id), got {path!r}")
    steps: list[str | int] = []
    at = 1
    while at < len(path):
        found = _PATH_STEP.match(path, at)
        if found is None:
            raise ValueError(f"{where}: cannot read {path!r} from character {at}: use .name, [index] or ['name']")
        name, index, quoted1, quoted2 = found.groups()
        steps.append(int(index) if index is not None else (name or quoted1 or quoted2 or ""))
        at = found.end()
    return steps


def read_path(payload: Any, path: str) -> Any:
    """The value at ``path``; None when any step is missing."""
    value = payload
    for step in parse_path(path, "path"):
        if isinstance(step, int) and isinstance(value, list) and step < len(value):
            value = value[step]
        elif isinstance(step, str) and isinstance(value, dict) and step in value:
            value = value[step]
        else:
            return None
    return value
