"""An OTLP/HTTP receiver for the tests that check what pgfleet exports (``test_tracing.py``'s
spans, ``test_otlp_logs.py``'s log records): a real HTTP server on 127.0.0.1 that decodes each
POSTed protobuf request, hands it to the test's collector and answers as a collector does."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class OtlpReceiver:
    """Serves ``POST <path>``: each body parsed as ``request_type``, given to ``receive``,
    answered with an empty ``response_type``. ``url`` is the endpoint to configure."""

    def __init__(self, path: str, request_type: Any, response_type: Any, receive: Callable[[Any], None]) -> None:
        reply = response_type().SerializeToString()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                receive(request_type.FromString(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
