"""serving_api, py-stdlib: the logistic scorer behind ``http.server.ThreadingHTTPServer``.

Usage: python3 serve_stdlib.py --port P

``POST /score`` with ``{"x": [32 numbers]}`` answers ``{"score": s}``; ``GET /health`` answers
200. A body that is not JSON gets 400, JSON of the wrong shape 422 (as FastAPI and axum answer).
Standard library only: one thread per connection, ``json`` for parsing. Settings that differ
from the class defaults, as a deployment would set them: HTTP/1.1 (keep-alive; the default
HTTP/1.0 closes every connection after one response), TCP_NODELAY, a listen backlog of 1024,
and no per-request log line on stderr.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from _serving import HOST, N_FEATURES, fail, logistic_score, server_parser

MAX_BODY = 1 << 20


class BadRequest(Exception):
    """A request the server refuses; carries the status and a message."""

    def __init__(self, status: HTTPStatus, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def parse_row(body: bytes) -> list[float]:
    """The row of a ``/score`` body, or ``BadRequest`` (400 not JSON, 422 wrong shape)."""
    try:
        doc = json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"body is not JSON: {exc}") from None
    x = doc.get("x") if isinstance(doc, dict) else None
    if not isinstance(x, list) or len(x) != N_FEATURES:
        raise BadRequest(
            HTTPStatus.UNPROCESSABLE_ENTITY, f'expected {{"x": [{N_FEATURES} numbers]}}'
        )
    # bool is an int subclass; JSON true/false are not numbers here.
    if not all(type(v) is float or type(v) is int for v in x):
        raise BadRequest(HTTPStatus.UNPROCESSABLE_ENTITY, "every item of x must be a number")
    try:
        return [float(v) for v in x]
    except OverflowError:
        raise BadRequest(HTTPStatus.UNPROCESSABLE_ENTITY, "a number is out of range") from None


class ScoreHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle's algorithm on, the body waits for the
    # client's delayed ACK of the headers (~40 ms per request on a kept-alive connection).
    disable_nagle_algorithm = True
    server_version = "serve_stdlib"

    def send_json(self, status: HTTPStatus, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def refuse(self, status: HTTPStatus, detail: str) -> None:
        self.send_json(status, {"detail": detail})

    def do_GET(self) -> None:
        if self.path == "/health":
            self.send_json(HTTPStatus.OK, {"status": "ok"})
        else:
            self.refuse(HTTPStatus.NOT_FOUND, "not found")

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            # The body's end is unknown, so the connection cannot carry another request.
            self.close_connection = True
            self.refuse(HTTPStatus.BAD_REQUEST, "a Content-Length up to 1 MiB is required")
            return
        body = self.rfile.read(length)
        if self.path != "/score":
            self.refuse(HTTPStatus.NOT_FOUND, "not found")
            return
        try:
            row = parse_row(body)
        except BadRequest as exc:
            self.refuse(exc.status, exc.detail)
            return
        self.send_json(HTTPStatus.OK, {"score": logistic_score(row)})

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access log line per request (uvicorn runs with ``access_log=False`` too); errors
        still go to stderr through ``log_error``."""


class Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5; a load generator opening dozens of
    # connections at once would see SYNs dropped and retried after a second.
    request_queue_size = 1024


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until SIGTERM or Ctrl-C."""
    args = server_parser(__doc__.splitlines()[0] if __doc__ else None).parse_args(argv)
    try:
        server = Server((HOST, args.port), ScoreHandler)
    except OSError as exc:
        fail(f"cannot listen on {HOST}:{args.port}: {exc.strerror or exc}")
    signal.signal(signal.SIGTERM, _stop)
    print(f"serve_stdlib: listening on http://{HOST}:{args.port}", file=sys.stderr, flush=True)
    with server, contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
