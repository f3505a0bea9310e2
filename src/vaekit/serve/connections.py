"""Connections to the explorer: how many may be open, and how long one may take to send a request.

uvicorn (with its h11 protocol, the one installed here) closes a keep-alive connection 5 s after its
last response, but sets no limit on how long a client may take to send a request's head, and its
``limit_concurrency`` counts open connections as well as requests in progress. So a few hundred
clients that connect and send nothing, or half a request, used to make every new request a 503
until they left (issue 14). The protocol here adds what is missing:

* a connection that has not delivered a whole request head within ``head_timeout`` seconds of
  opening, or of its previous response, is closed (a slow or idle client costs a socket for at most
  that long);
* at most ``max_connections`` are open: one more closes the connection that has waited longest for a
  request head (an idle one), so a new user always gets in; only when every open connection has a
  request in progress is the newcomer closed instead.

A request head is bounded by ``h11_max_incomplete_event_size`` (set by :mod:`vaekit.serve.server`),
a body by the application's own limit (``BodyLimit`` in :mod:`vaekit.serve.app`).
"""
from __future__ import annotations

import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

HEAD_TIMEOUT = 10.0             # seconds to send a request head (a browser needs milliseconds)
MAX_CONNECTIONS = 1000          # open at once, when the process may open twice as many files
FILES_KEPT = 64                 # file descriptors left for everything else (runs, data, logs)


def connection_limit(wanted: int = MAX_CONNECTIONS) -> int:
    """``wanted``, or fewer when this process may not open that many files (``ulimit -n``)."""
    try:
        import resource
    except ImportError:     # not POSIX: no such limit to respect
        return wanted
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, (soft - FILES_KEPT) // 2))


def guarded_protocol(*, head_timeout: float = HEAD_TIMEOUT, max_connections: int | None = None) -> type:
    """An h11 protocol class for ``uvicorn.Config(http=...)`` with these two limits."""
    limit = connection_limit() if max_connections is None else max_connections
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"head_timeout": head_timeout, "max_connections": limit})


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head timeout and a connection limit (see the module)."""

    head_timeout = HEAD_TIMEOUT
    max_connections = MAX_CONNECTIONS

    def connection_made(self, transport) -> None:
        self._head_timer = None
        self.waiting_since: float | None = None
        super().connection_made(transport)
        self._expect_head()
        if len(self.connections) > self.max_connections:
            self._make_room()

    def connection_lost(self, exc) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._expect_head()

    # -- the request-head timeout -------------------------------------------------------------------
    def _expect_head(self) -> None:
        self._cancel_head_timer()
        self.waiting_since = self.loop.time()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def awaiting_head(self) -> bool:
        """True while no request is in progress and the next one's head has not arrived in full."""
        return self.conn.their_state is h11.IDLE and not self.transport.is_closing()

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.awaiting_head():
            log.info("closed a connection from %s: no request within %.0f s", _client(self), self.head_timeout)
            self.transport.close()

    # -- the connection limit -----------------------------------------------------------------------
    def _make_room(self) -> None:
        idle = [other for other in self.connections
                if other is not self and isinstance(other, GuardedH11Protocol) and other.awaiting_head()]
        if idle:
            oldest = min(idle, key=lambda other: other.waiting_since)
            log.info("%d connections open: closed the one from %s, idle for %.1f s", len(self.connections),
                     _client(oldest), self.loop.time() - oldest.waiting_since)
            oldest.transport.close()
        else:
            log.warning("%d connections open, each with a request in progress: refused one from %s",
                        len(self.connections), _client(self))
            self.transport.close()


def _client(protocol: H11Protocol) -> str:
    return "%s:%d" % protocol.client if protocol.client else "a client"
