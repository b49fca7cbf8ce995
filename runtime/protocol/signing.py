"""Signing keys, request signatures and bearer tokens (docs/protocol.md §3).

Two different derivations of one key are in play:
* the HMAC key is the key with its ``signkey-<env>-`` prefix stripped, used as UTF-8 text;
* the bearer / introspection hash is ``sha256(bytes.fromhex(stripped))``.
Mixing them up is the classic way to get a 401 from an SDK, so each has one function here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Iterable

from stepline.protocol.errors import ProtocolError
from stepline.protocol.jsoncanon import canonical_json, loads

_PREFIX = re.compile(r"^signkey-[\w]+-")
_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)

# TS rejects signatures older than five minutes; we hold our side to the same window.
DEFAULT_MAX_AGE_S = 300


def strip_key_prefix(key: str) -> str:
    """``signkey-prod-12ab`` → ``12ab``. Keys without the prefix come back unchanged."""
    return _PREFIX.sub("", key, count=1)


def hash_signing_key(key: str) -> str:
    """The hex hash the SDKs send as a bearer token and report in introspection."""
    stripped = strip_key_prefix(key)
    try:
        raw = bytes.fromhex(stripped)
    except ValueError:
        # Never echo the key itself: it is a secret and this message may reach a log.
        raise ProtocolError("signing key: the part after 'signkey-<env>-' must be hex") from None
    if not raw:
        raise ProtocolError("signing key: must not be empty")
    return hashlib.sha256(raw).hexdigest()


def hash_event_key(key: str) -> str:
    """How event keys are stored and reported: sha256 of the key's UTF-8 text."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _mac(body: bytes, key: str, t: str) -> str:
    mac = hmac.new(strip_key_prefix(key).encode("utf-8"), body, hashlib.sha256)
    mac.update(t.encode("utf-8"))
    return mac.hexdigest()


def sign(body: bytes, key: str, now_s: int) -> str:
    """The ``X-Inngest-Signature`` value for ``body``: ``t=<now_s>&s=<hex hmac>``.

    ``body`` must be the exact bytes sent and, for requests, JCS bytes (``canonical_json``):
    the SDKs check the signature against the canonical form of what they parsed.
    The order ``t`` then ``s`` matters: Inngest compares the header as a string.
    """
    t = str(int(now_s))
    return f"t={t}&s={_mac(body, key, t)}"


def parse_signature_header(header: str | None) -> tuple[int, str] | None:
    """``(t, s)`` from ``t=…&s=…``, or None when either part is missing or malformed.

    Both parts are required, as TS requires them: a signature without a time cannot be
    checked for freshness, so it is no signature at all.
    """
    if not header:
        return None
    parsed = urllib.parse.parse_qs(header.strip(), keep_blank_values=False)
    t_values, s_values = parsed.get("t"), parsed.get("s")
    if not t_values or not s_values:
        return None
    try:
        t = int(t_values[0])
    except ValueError:
        return None
    return t, s_values[0]


def verify_signature(
    header: str | None,
    body: bytes,
    keys: list[str],
    now_s: int,
    max_age_s: int = DEFAULT_MAX_AGE_S,
    *,
    canonical: bool = True,
) -> bool:
    """Whether ``header`` signs ``body`` with one of ``keys`` (primary first, then fallback).

    The MAC covers the JCS form of the parsed JSON body, as the SDKs compute it (an empty body
    is signed as ""), so key order and whitespace on the wire do not matter. Pass
    ``canonical=False`` for an SDK's *response* signature, which covers the raw bytes.
    A ``t`` more than ``max_age_s`` away from ``now_s`` is refused, whatever the MAC says.
    """
    parsed = parse_signature_header(header)
    if parsed is None:
        return False
    t, signature = parsed
    if abs(now_s - t) > max_age_s:
        return False
    if canonical and body.strip():
        try:
            signed_body = canonical_json(loads(body))
        except (ValueError, RecursionError):
            return False
    elif canonical:
        signed_body = b""
    else:
        signed_body = body
    matched = False
    for key in _usable(keys):
        # Check every key, without an early exit, so timing does not reveal which key matched.
        if hmac.compare_digest(signature.encode("utf-8"), _mac(signed_body, key, str(t)).encode()):
            matched = True
    return matched


def bearer_matches(authorization: str | None, keys: list[str]) -> bool:
    """Whether an ``Authorization`` header carries the hash of one of ``keys``.

    Python sends ``Bearer <hash>``, TS ``Bearer signkey-<env>-<hash>``; both are accepted.
    """
    if not authorization:
        return False
    match = _BEARER.match(authorization)
    if match is None:
        return False
    presented = strip_key_prefix(match.group(1)).lower().encode("utf-8")
    matched = False
    for key in _usable(keys):
        try:
            expected = hash_signing_key(key)
        except ProtocolError:
            continue
        if hmac.compare_digest(presented, expected.encode("utf-8")):
            matched = True
    return matched


def _usable(keys: Iterable[str | None]) -> list[str]:
    # The fallback key is usually optional configuration: tolerate None and "" in the list.
    return [k for k in keys if k]
