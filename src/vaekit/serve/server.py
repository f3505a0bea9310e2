"""Running the explorer: bind the address first (so a busy port is a clear error), then hand it to uvicorn.

uvicorn runs with the guarded h11 protocol of :mod:`vaekit.serve.connections` (a request-head timeout
and a connection limit that closes the longest-idle connection), a 5 s keep-alive and a 16 KiB bound
on a request head; it has no ``limit_concurrency``, which counted idle connections as load and so
let a few hundred of them turn every request into a 503.
"""
from __future__ import annotations

import ipaddress
import logging
import socket
from pathlib import Path

from vaekit.errors import ConfigError
from vaekit.serve.app import LOOPBACK_NAMES, create_app
from vaekit.serve.connections import HEAD_TIMEOUT, guarded_protocol
from vaekit.serve.images import BadInput
from vaekit.serve.registry import RunRegistry

log = logging.getLogger(__name__)

KEEP_ALIVE_SECONDS = 5              # an idle keep-alive connection is closed this long after its last response
MAX_HEAD_BYTES = 16 * 1024          # a request head larger than this is a 400 (the page's are under 2 KiB)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (port 0: any free port), or :class:`ConfigError`."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, not {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot use --host {host!r} ({exc.strerror}): give an address such as 127.0.0.1") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}): "
                          "pass another --port, or stop what is using this one") from None
    sock.set_inheritable(True)
    return sock


class Server:
    """The explorer over the runs in ``path``, bound to ``host``:``port`` and ready to :meth:`run`.

    Opening the default run (loading its model and encoding its data) happens here, so the page is
    ready once the address is known. Requests are logged by uvicorn's access log.

    ``host`` may be any address; on a loopback one the server answers only requests addressed to it or
    to 127.0.0.1, localhost and ::1 (see ``HostCheck`` in :mod:`vaekit.serve.app`), so the address it
    prints always works. ``head_timeout`` and ``max_connections`` bound slow and idle clients (see
    :mod:`vaekit.serve.connections`; None: as many as the file limit allows, up to 1000).

    ``torch_threads`` (default 1) sets torch's intra-op threads for the whole process. The explorer's
    requests decode a handful of codes each: far too little work to share across threads, and with
    several threads OpenMP's hand-offs cost more than the work itself, worst on a busy CPU (one code
    through the default MLP decoder: 0.26 ms on one thread, 88 ms on two, measured on a loaded
    2-core machine).
    """

    def __init__(self, path: str | Path, *, host: str = "127.0.0.1", port: int = 8000, data_dir: str | None = None,
                 device: str = "cpu", map_points: int | None = None, torch_threads: int | None = 1,
                 head_timeout: float = HEAD_TIMEOUT, max_connections: int | None = None):
        if not 0 <= port <= 65535:
            raise ConfigError(f"--port must be between 0 and 65535, not {port}")
        self.registry = RunRegistry(path, data_dir=data_dir, device=device, map_points=map_points)
        self.loopback = is_loopback(host)
        self.head_timeout, self.max_connections = head_timeout, max_connections
        allowed = (*LOOPBACK_NAMES, host.strip("[]")) if self.loopback else None
        self.app = create_app(self.registry, allowed_hosts=allowed)
        self.socket = bind(host, port)          # before the slow part: a busy port is reported at once
        self.host = host
        self.port = self.socket.getsockname()[1]
        try:
            if torch_threads is not None:
                import torch

                torch.set_num_threads(torch_threads)
            self.registry.get(None)
        except BadInput as exc:
            if len(self.registry.entries) == 1:
                self.socket.close()
                raise
            log.warning("%s", exc)
        except BaseException:
            self.socket.close()
            raise

    @property
    def url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}/"

    def uvicorn_server(self):
        """The ``uvicorn.Server`` that :meth:`run` runs (tests run it in a thread, on :attr:`socket`)."""
        import uvicorn

        config = uvicorn.Config(self.app, log_level="info", access_log=True, timeout_graceful_shutdown=3,
                                http=guarded_protocol(head_timeout=self.head_timeout, max_connections=self.max_connections),
                                timeout_keep_alive=KEEP_ALIVE_SECONDS, h11_max_incomplete_event_size=MAX_HEAD_BYTES)
        return uvicorn.Server(config)

    def run(self) -> None:
        """Serve until interrupted (Ctrl+C)."""
        try:
            self.uvicorn_server().run(sockets=[self.socket])
        finally:
            self.socket.close()
