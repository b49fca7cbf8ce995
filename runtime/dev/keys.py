"""The keys `stepline start` runs with, from its flags, a keys file, or the environment.

Each key is taken from the first source that has it, in that order: a flag beats the file, and
the file beats the environment (a file named on the command line is the more deliberate choice).
The file has the environment's form, one ``NAME=value`` a line, ``#`` for comments:

    STEPLINE_SIGNING_KEY=signkey-prod-...
    STEPLINE_SIGNING_KEY_FALLBACK=signkey-prod-...
    STEPLINE_EVENT_KEYS=key-one,key-two
    STEPLINE_OPERATOR_KEY=<hex>

Without a signing key or an event key the server does not start: cloud mode with no key would
refuse every request, and a server that started anyway would only look healthy. The operator key
(yours, for the CLI and the dashboard; docs/operating.md) is optional: without it, the routes that
steer runs refuse every request, saying how to give one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stepline.protocol.errors import ProtocolError
from stepline.protocol.signing import hash_signing_key
from stepline.settings import ENV_PREFIX

SIGNING_KEY = ENV_PREFIX + "SIGNING_KEY"
SIGNING_KEY_FALLBACK = ENV_PREFIX + "SIGNING_KEY_FALLBACK"
EVENT_KEYS = ENV_PREFIX + "EVENT_KEYS"
OPERATOR_KEY = ENV_PREFIX + "OPERATOR_KEY"
KEY_NAMES = (SIGNING_KEY, SIGNING_KEY_FALLBACK, EVENT_KEYS, OPERATOR_KEY)


class KeysError(Exception):
    """Why the server cannot start, in one line that names where the keys may come from."""


@dataclass(frozen=True)
class StartKeys:
    signing_key: str
    signing_key_fallback: str | None
    event_keys: list[str]
    sources: dict[str, str] = field(default_factory=dict)  # key name -> "flag", "file ...", "environment"
    operator_key: str | None = None

    def settings_values(self) -> dict[str, object]:
        return {
            "signing_key": self.signing_key,
            "signing_key_fallback": self.signing_key_fallback,
            "event_keys": list(self.event_keys),
            "operator_key": self.operator_key,
        }


@dataclass(frozen=True)
class KeyFlags:
    signing_key: str | None = None
    signing_key_fallback: str | None = None
    event_keys: list[str] = field(default_factory=list)
    keys_file: str | None = None
    operator_key: str | None = None


def read_keys_file(path: str) -> dict[str, str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise KeysError(f"keys file {path}: {exc.strerror or exc}") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip().removeprefix("export ").strip()
        if not sep or name not in KEY_NAMES:
            # Never echo the line: it may hold a key.
            raise KeysError(
                f"keys file {path}, line {number}: expected NAME=value with NAME one of {', '.join(KEY_NAMES)}"
            )
        values[name] = value.strip().strip("\"'")
    return values


def _split_event_keys(text: str) -> list[str]:
    return [k.strip() for k in text.replace("\n", ",").split(",") if k.strip()]


def resolve_keys(flags: KeyFlags, environ: Mapping[str, str]) -> StartKeys:
    """The keys to run with, or KeysError saying which one is missing or malformed."""
    from_file = read_keys_file(flags.keys_file) if flags.keys_file else {}
    file_source = f"file {flags.keys_file}"
    sources: dict[str, str] = {}

    def pick(name: str, flag: str | None) -> str | None:
        for source, value in (("flag", flag), (file_source, from_file.get(name)), ("environment", environ.get(name))):
            if value:
                sources[name] = source
                return value
        return None

    signing_key = pick(SIGNING_KEY, flags.signing_key)
    fallback = pick(SIGNING_KEY_FALLBACK, flags.signing_key_fallback)
    event_keys_text = pick(EVENT_KEYS, ",".join(flags.event_keys))
    operator_key = pick(OPERATOR_KEY, flags.operator_key)
    if not signing_key:
        raise KeysError(
            f"no signing key: pass --signing-key, set {SIGNING_KEY}, or put it in a file given with --keys-file"
        )
    event_keys = _split_event_keys(event_keys_text or "")
    if not event_keys:
        raise KeysError(f"no event key: pass --event-key, set {EVENT_KEYS}, or put it in a file given with --keys-file")
    for name, key in ((SIGNING_KEY, signing_key), (SIGNING_KEY_FALLBACK, fallback), (OPERATOR_KEY, operator_key)):
        if key:
            try:
                hash_signing_key(key)
            except ProtocolError as exc:
                raise KeysError(f"{name} (from {sources[name]}): {exc.message}") from None
    if fallback == signing_key:
        raise KeysError(f"{SIGNING_KEY_FALLBACK} is the signing key itself: give the previous key, or none")
    if operator_key and operator_key in (signing_key, fallback):
        raise KeysError(f"{OPERATOR_KEY} is a signing key: the operator key must be a key of its own")
    return StartKeys(signing_key, fallback, event_keys, sources, operator_key)
