"""URLs as the SDKs register them: query-string edits that leave the rest of a URL byte for byte
as the SDK registered it, and whether two registered URLs are one serve endpoint.

Re-encoding a whole query (parse, then urlencode) can change how other parameters are escaped,
and the SDK matches ``fnId`` exactly, so only the one parameter being edited is touched.
"""

from __future__ import annotations

import urllib.parse


def _split(url: str) -> tuple[str, str, str]:
    """``(before "?", query, "#fragment" or "")``."""
    head, sep, fragment = url.partition("#")
    base, _, query = head.partition("?")
    return base, query, (sep + fragment)


def _key(segment: str) -> str:
    return urllib.parse.unquote_plus(segment.partition("=")[0])


def strip_query_param(url: str, name: str) -> str:
    """``url`` without any ``name=…`` parameter (and without a dangling ``?``)."""
    base, query, fragment = _split(url)
    if not query:
        return url
    kept = [seg for seg in query.split("&") if seg and _key(seg) != name]
    return base + ("?" + "&".join(kept) if kept else "") + fragment


def set_query_param(url: str, name: str, value: str) -> str:
    """``url`` with exactly one ``name=value``: replaced in place if present, appended if not."""
    base, query, fragment = _split(url)
    encoded = f"{urllib.parse.quote(name, safe='')}={urllib.parse.quote(value, safe='')}"
    segments = [seg for seg in query.split("&") if seg] if query else []
    out: list[str] = []
    placed = False
    for seg in segments:
        if _key(seg) == name:
            if not placed:
                out.append(encoded)
                placed = True
            continue
        out.append(seg)
    if not placed:
        out.append(encoded)
    return base + "?" + "&".join(out) + fragment


def get_query_param(url: str, name: str) -> str | None:
    """The first value of ``name`` in ``url``'s query, decoded, or None."""
    _, query, _ = _split(url)
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if key == name:
            return value
    return None


_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"}


def same_serve_url(a: str, b: str) -> bool:
    """Whether two registered URLs name the same serve endpoint: the query (``fnId``...) and a
    trailing slash aside, and every loopback name being one host."""

    def key(url: str) -> tuple[str, str, int | None, str]:
        parts = urllib.parse.urlsplit(url)
        host = (parts.hostname or "").lower()
        try:
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            port = None
        return parts.scheme, "loopback" if host in _LOOPBACK else host, port, parts.path.rstrip("/")

    return key(a) == key(b)
