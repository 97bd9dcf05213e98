"""concurrency: a delayed-response server and a client with C connections in one process.

Usage: python3 concurrency.py --impl threads|asyncio --concurrency C [--iters K] [--port N]
       [--delay-us D]

Protocol (the same in every implementation): over loopback TCP the client sends ``k\\n`` and the
server answers ``2k+1\\n`` after a delay of D microseconds (default 1000; 0: no sleep at all, a
pure echo). Each runtime's own timer is used, and its resolution is part of the result: a
sleep of 1 ms takes about 1.1 ms with ``time.sleep`` and ``asyncio.sleep`` on Linux, about 2 ms
on tokio (its timer rounds up to whole milliseconds). Setup starts the server
on 127.0.0.1:N (default 0: any free port) and opens C persistent connections; one iteration
sends R = max(1000, 4C) requests numbered 0..R, connection j sending k = j, j+C, ... one after
another, so C requests are in flight. The checksum is the sum of the answers (R squared).

- ``threads`` (py-threads): ``socketserver.ThreadingTCPServer`` (a thread per connection,
  ``time.sleep`` for the delay) and a ``ThreadPoolExecutor`` of C client threads, all started
  in setup.
- ``asyncio`` (py-asyncio): ``asyncio.start_server`` and ``asyncio.open_connection`` streams,
  ``asyncio.sleep`` for the delay, one task per connection, on one event loop.

A port already in use, or a client that cannot connect, is one ``Error:`` line and exit 1.
No third-party modules: this runs on CPython and PyPy alike.
"""

from __future__ import annotations

import asyncio
import os
import socket
import socketserver
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from _kernel import fail, kernel_parser, run_kernel

if TYPE_CHECKING:
    from collections.abc import Callable

TASK = "concurrency"
IMPLS = {"threads": "py-threads", "asyncio": "py-asyncio"}
HOST = "127.0.0.1"


def requests(connections: int) -> int:
    """Requests per iteration: at least 1000, and at least 4 per connection."""
    return max(1000, 4 * connections)


# --- threads ----------------------------------------------------------------------------------


def threads_setup(c: int, port: int, delay: float) -> Callable[[], int]:
    """Start the threading server and C client connections; return the iteration function."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for line in self.rfile:
                if delay:
                    time.sleep(delay)
                self.wfile.write(b"%d\n" % (2 * int(line) + 1))

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        request_queue_size = max(1024, c)

    try:
        server = Server((HOST, port), Handler)
    except OSError as exc:
        fail(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}. Use --port 0 for any port")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    addr = server.server_address[:2]

    conns = []
    for _ in range(c):
        try:
            sock = socket.create_connection(addr)
        except OSError as exc:
            fail(f"client cannot connect to {addr[0]}:{addr[1]}: {exc.strerror or exc}")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns.append((sock, sock.makefile("rb")))

    pool = ThreadPoolExecutor(max_workers=c)
    # Start all C worker threads now (the executor starts them lazily): C tasks that can only
    # finish together need C threads.
    barrier = threading.Barrier(c)
    list(pool.map(lambda _: barrier.wait(), range(c)))
    r = requests(c)

    def run_connection(j: int) -> int:
        sock, reader = conns[j]
        total = 0
        for k in range(j, r, c):
            sock.sendall(b"%d\n" % k)
            line = reader.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            total += int(line)
        return total

    def iteration() -> int:
        try:
            return sum(pool.map(run_connection, range(c)))
        except OSError as exc:
            fail(f"request failed: {exc}")

    return iteration


# --- asyncio ----------------------------------------------------------------------------------


def asyncio_setup(c: int, port: int, delay: float) -> Callable[[], int]:
    """Start the asyncio server and C client connections; return the iteration function."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while line := await reader.readline():
                if delay:
                    await asyncio.sleep(delay)
                writer.write(b"%d\n" % (2 * int(line) + 1))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def start() -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        try:
            server = await asyncio.start_server(handle, HOST, port, backlog=max(1024, c))
        except OSError as exc:
            fail(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}. Use --port 0")
        addr = server.sockets[0].getsockname()[:2]
        conns = []
        for _ in range(c):
            try:
                reader, writer = await asyncio.open_connection(*addr)
            except OSError as exc:
                fail(f"client cannot connect to {addr[0]}:{addr[1]}: {exc.strerror or exc}")
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conns.append((reader, writer))
        return conns

    conns = loop.run_until_complete(start())
    r = requests(c)

    async def run_connection(j: int) -> int:
        reader, writer = conns[j]
        total = 0
        for k in range(j, r, c):
            writer.write(b"%d\n" % k)
            await writer.drain()
            line = await reader.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            total += int(line)
        return total

    async def all_connections() -> int:
        return sum(await asyncio.gather(*(run_connection(j) for j in range(c))))

    def iteration() -> int:
        try:
            return loop.run_until_complete(all_connections())
        except OSError as exc:
            fail(f"request failed: {exc}")

    return iteration


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, start server and client, time the iterations."""
    parser = kernel_parser(__doc__.splitlines()[0] if __doc__ else None, with_input=False)
    parser.add_argument("--impl", required=True, choices=list(IMPLS), help="implementation")
    parser.add_argument("--concurrency", type=int, required=True, metavar="C", help="connections")
    parser.add_argument("--port", type=int, default=0, metavar="N", help="server port (0: any)")
    parser.add_argument("--delay-us", type=int, default=1000, metavar="D", help="answer delay")
    args = parser.parse_args(argv)
    c: int = args.concurrency
    if not 1 <= c <= 100_000:
        fail(f"--concurrency must be between 1 and 100000, got {c}")
    if not 0 <= args.port <= 65535:
        fail(f"--port must be between 0 and 65535, got {args.port}")
    if args.delay_us < 0:
        fail(f"--delay-us must not be negative, got {args.delay_us}")
    setup = threads_setup if args.impl == "threads" else asyncio_setup
    start = time.perf_counter_ns()
    iteration = setup(c, args.port, args.delay_us / 1e6)
    setup_ns = time.perf_counter_ns() - start
    run_kernel(TASK, IMPLS[args.impl], c, setup_ns, iters=args.iters, kernel=iteration)
    # Leave without closing C connections and joining daemon threads one by one.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
