"""The executor signs each call with the signing key the engine's key ring holds now: after a
rotation is read (``keys_refresh_s`` later, on the manual clock), calls carry the new key's
signature, and no container restart is needed."""

from __future__ import annotations

import json

from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.engine.keys import Keys, RefreshingKeys
from stepline.local import local_backend
from stepline.protocol.signing import verify_signature
from stepline.settings import Settings
from tests.engine.scripted_app import ScriptedApp, pump, register

OLD = "signkey-prod-" + "ab" * 32
NEW = "signkey-prod-" + "cd" * 32


class SignatureRecordingApp(ScriptedApp):
    def __init__(self, scripts) -> None:
        super().__init__(scripts)
        self.signatures: list[tuple[str | None, bytes]] = []

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        self.signatures.append((headers.get("X-Inngest-Signature"), body))
        return super().post(url, body, headers, timeout_s)


def test_calls_are_signed_with_the_key_read_last(tmp_path, clock):
    secret = {"signing_key": OLD}
    ring = RefreshingKeys(lambda: Keys(signing_keys=(secret["signing_key"],)), clock, max_age_ms=300_000)
    app = SignatureRecordingApp({"fn": [("run", "a")]})
    with local_backend(str(tmp_path / "db"), clock) as backend:
        # The scripted app registers a loopback URL (it is never connected to: the caller records).
        settings = Settings(mode="cloud", allow_private_app_urls=True)
        engine = Engine(backend, settings, clock=clock, caller=app, keys=ring)
        register(engine, ["fn"])

        def signed_with(key: str) -> bool:
            header, body = app.signatures[-1]
            return verify_signature(header, body, [key], clock.now_ms() // 1000)

        engine.ingest.accept([{"name": "app/fn", "data": {}}])
        pump(backend, engine, clock)
        assert signed_with(OLD) and not signed_with(NEW)

        secret["signing_key"] = NEW
        clock.advance(300_000)
        engine.ingest.accept([{"name": "app/fn", "data": {"second": True}}])
        pump(backend, engine, clock)
        assert json.loads(app.signatures[-1][1])["event"]["data"] == {"second": True}
        assert signed_with(NEW) and not signed_with(OLD)
