"""Run the broker on a loopback port in a background thread (in-process harness and tests).

The socket is bound first so that, without ``public_base_url``, the broker's issuer and
resource URLs use the real port (``port=0`` picks a free one).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from broker.app import Broker
from broker.config import BrokerConfig
from broker.variants import create_broker


class _RequestHandler(WSGIRequestHandler):
    """werkzeug's handler, answering what the HTTP layer refuses before the broker sees it
    (414, 431, a malformed request line) with RFC 6749 JSON instead of http.server's HTML
    page: MCP clients parse every error body as JSON. The request line is not echoed."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        short, long = self.responses.get(code, ("Error", ""))
        self.log_error("code %d, message %s", code, message or short)
        body = json.dumps({"error": "invalid_request", "error_description": long or short})
        self.send_response(code, short)
        for name, value in (
            ("Connection", "close"),
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
            ("Content-Length", str(len(body))),
        ):
            self.send_header(name, value)
        self.end_headers()
        if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body.encode())


class BrokerServer:
    """``BrokerServer(config).start()`` → serving at ``.url``; ``.broker`` is the app object."""

    def __init__(
        self,
        config: BrokerConfig,
        *,
        clock: Callable[[], float] = time.time,
        defect: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.config = config
        self.host = host
        self.port = port
        self._clock = clock
        self._defect = defect
        self.broker: Broker = create_broker(config, clock=clock, defect=defect)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        #: The bound URL, kept after stop() so a restart on the same port can be compared.
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The broker's base URL (``public_base_url`` when configured)."""
        if self.config.public_base_url:
            return self.config.public_base_url
        if self._url is None:
            raise RuntimeError("BrokerServer is not started")
        return self._url

    def start(self) -> BrokerServer:
        if self._server is not None:
            return self
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = make_server(
            self.host, self.port, self.broker, threaded=True, request_handler=_RequestHandler
        )
        host = self.host if ":" not in self.host else f"[{self.host}]"
        self._url = f"http://{host}:{self._server.server_port}"
        self.broker.base_url = self.url
        server = self._server
        # A short poll interval makes stop() fast (the default 0.5 s adds up over a test run).
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05),
            name="broker-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def reconfigure(self, config: BrokerConfig) -> Broker:
        """Serve a new broker built from ``config`` on the same socket (same URL, same defect).

        Its state starts empty. The harness uses this to run a scenario that needs other
        settings (say, the federated exchange flow) and to restore the defaults after it;
        building a broker is cheap, re-binding a port is not (the URL is the issuer)."""
        if config.public_base_url != self.config.public_base_url:
            raise ValueError("reconfigure cannot change public_base_url (the broker's URL)")
        old = self.broker
        broker = create_broker(config, clock=self._clock, defect=self._defect)
        broker.base_url = old.base_url
        self.config = config
        self.broker = broker
        if self._server is not None:
            self._server.app = broker
        old.close()
        return broker

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.broker.close()
        self._server = None
        self._thread = None

    def __enter__(self) -> BrokerServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
