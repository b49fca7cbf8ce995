"""`stepline dev` and `stepline start` as an object: backend, engine, HTTP server, driver and app
syncs, started and stopped together. Tests run it in-process exactly as the commands do.

The settings' mode decides what the front door checks: in dev mode the browser rules
(``stepline.dev.browser_guard``), in cloud mode the credentials the API itself checks."""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field

from stepline.api.app import build_api
from stepline.dev.browser_guard import BrowserGuard
from stepline.dev.discovery import DISCOVERY_PORTS, AppWatcher
from stepline.dev.driver import LocalDriver
from stepline.dev.http_server import DevHttpServer, PerThreadResolver, ServerLimits
from stepline.engine.clock import SystemClock
from stepline.engine.core import Engine
from stepline.engine.http import HttpCaller
from stepline.engine.outbound import AddressPolicy
from stepline.engine.ports import Backend, Clock
from stepline.settings import Settings
from stepline.telemetry import Telemetry
from stepline.telemetry.setup import telemetry_from_env

log = logging.getLogger(__name__)


# The pyproject extra that brings moto, for `--backend moto` on an install without it.
MOTO_EXTRA = "moto"


class MissingExtra(RuntimeError):
    """A dev option needs a package the install lacks; the message names the extra to add."""


@dataclass
class DevOptions:
    host: str = "127.0.0.1"
    port: int = 8288
    db_path: str = ".stepline/dev.db"
    backend: str = "sqlite"  # or "moto": the AWS adapters against in-process moto
    app_urls: list[str] = field(default_factory=list)
    workers: int = 4
    # Finding and re-syncing apps (stepline.dev.discovery). The command polls every 5 s and
    # discovers; in-process runtimes (tests) sync their app_urls once and look nowhere else.
    poll_interval_s: float = 0.0
    discover: bool = False
    discovery_ports: tuple[int, ...] = DISCOVERY_PORTS
    # Dev mode answers only loopback Host names, the bound host, and these (e.g. a name a
    # container uses to reach the host).
    allowed_hosts: list[str] = field(default_factory=list)
    server: ServerLimits = field(default_factory=ServerLimits)


def _body_limit(settings: Settings):
    """The largest body the server reads for a path: register's limit for syncs, the Event API's
    for everything else (events, and the REST API's small JSON bodies)."""

    def limit(path: str) -> int:
        if path.rstrip("/") == "/fn/register":
            return settings.max_register_body_bytes
        if path.startswith("/v1/checkpoint/"):
            return settings.max_checkpoint_body_bytes
        return settings.max_event_body_bytes

    return limit


class DevRuntime:
    def __init__(
        self,
        options: DevOptions,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        caller: HttpCaller | None = None,
        backend: Backend | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.options = options
        self.settings = settings or Settings(mode="dev")
        self.clock = clock or SystemClock()
        self._exit = contextlib.ExitStack()
        self._stop = threading.Event()
        # A backend passed in (already wired, e.g. wrapped by a test) stays its owner's to close.
        self.backend: Backend = backend or self._exit.enter_context(self._open_backend())
        self.engine = Engine(
            self.backend, self.settings, clock=self.clock, caller=caller, telemetry=telemetry or self._telemetry()
        )
        guard = BrowserGuard(options.host, options.allowed_hosts) if self.settings.mode == "dev" else None
        self.server = DevHttpServer(
            PerThreadResolver(lambda: build_api(self.engine)),
            options.host,
            options.port,
            _body_limit(self.settings),
            guard=guard,
            limits=options.server,
        )
        self.driver = LocalDriver(self.engine, workers=options.workers)
        self.watcher = AppWatcher(
            self.backend.apps,
            options.app_urls,
            discover=options.discover,
            poll_interval_s=options.poll_interval_s,
            discovery_ports=options.discovery_ports,
            own_port=self.server.port,
            signing_key=self.engine.keys.current().signing_key,
            policy=AddressPolicy.from_settings(self.settings),
        )

    @property
    def url(self) -> str:
        return f"http://{self.options.host}:{self.server.port}"

    def _open_backend(self):
        if self.options.backend == "moto":
            try:
                import moto  # noqa: F401 - only asked whether it is installed
            except ImportError:
                raise MissingExtra(
                    f"--backend moto needs moto, which is not installed: pip install 'stepline[{MOTO_EXTRA}]'"
                ) from None
            from stepline.aws.moto_env import moto_backend
            from stepline.aws.resources import max_receive_count

            return moto_backend(
                self.clock,
                max_receive_count=max_receive_count(self.settings.max_deliveries),
                retention_ms=self.settings.retention_ms,
            )
        from stepline.local import local_backend

        return local_backend(self.options.db_path, self.clock, retention_ms=self.settings.retention_ms)

    def _telemetry(self) -> Telemetry:
        """Metrics for /metrics (the queue's backlog when the queue can tell it), and traces when
        OTEL_* configures an exporter."""
        from stepline.telemetry.metrics import PrometheusMetrics

        backlog = getattr(self.backend.queue, "backlog", None)
        return telemetry_from_env(self.clock, PrometheusMetrics(backlog=backlog))

    def start(self) -> DevRuntime:
        recover = self.backend.recover_after_restart
        if recover is not None:
            # This process is the only one using the file: whatever a killed predecessor held
            # (leases, in-flight messages) is free now, not after its timeouts.
            recover()
        self.server.start()
        self.driver.start()
        self.watcher.start(self._stop)
        return self

    def stop(self) -> None:
        self._stop.set()
        self.server.stop()
        self.driver.stop()
        self.engine.telemetry.flush()  # the spans still batched for the exporter
        self._exit.close()

    def __enter__(self) -> DevRuntime:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
