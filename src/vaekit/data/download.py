"""Downloading one file over HTTP(S) (or ``file://``) with urllib: retries, checksum, atomic rename.

The file is streamed into a hidden temporary file next to its destination, its MD5 is checked, and
only then is it renamed into place (``os.replace`` is atomic on one file system), so an interrupted
or corrupted download never leaves a file that looks complete.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Sequence

logger = logging.getLogger(__name__)

Progress = Callable[[int, "int | None"], None]

RETRY_DELAYS_S = (1.0, 4.0)  # waits before the 2nd and 3rd try of one address
TIMEOUT_S = 60.0
CHUNK_BYTES = 1 << 16
USER_AGENT = "vaekit (https://pypi.org/project/vaekit)"


class DownloadError(Exception):
    """Every address failed; the message says why, address by address."""


class _PermanentFailure(Exception):
    """Retrying the same address will not help (HTTP 4xx, checksum mismatch)."""


def download_file(urls: Sequence[str], destination: Path, *, md5: str | None = None,
                  progress: Progress | None = None) -> str:
    """Download the first address of ``urls`` that works into ``destination``; return that address.

    Each address is tried up to ``1 + len(RETRY_DELAYS_S)`` times, waiting between tries, when the
    failure looks transient (network error, timeout, HTTP 5xx or 429, short read); then the next
    address is tried. ``progress(bytes_done, bytes_total_or_None)`` is called as bytes arrive; it
    starts again from 0 for each try. Raises :class:`DownloadError` when no address works.
    """
    failures = []
    for url in urls:
        for attempt in range(1 + len(RETRY_DELAYS_S)):
            try:
                _fetch(url, destination, md5, progress)
                return url
            except _PermanentFailure as exc:
                failures.append(f"{url}: {exc}")
                break
            except (OSError, http.client.HTTPException) as exc:  # URLError and timeouts are OSErrors
                if attempt == len(RETRY_DELAYS_S):
                    failures.append(f"{url}: {_describe(exc)}")
                    break
                delay = RETRY_DELAYS_S[attempt]
                logger.warning("Download of %s failed (%s); retrying in %g s", url, _describe(exc), delay)
                time.sleep(delay)
    raise DownloadError("; ".join(failures) or "no download address is known")


def _fetch(url: str, destination: Path, md5: str | None, progress: Progress | None) -> None:
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    except ValueError as exc:  # not a URL urllib understands
        raise _PermanentFailure(str(exc)) from exc
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary_name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.",
                                                  suffix=".part")
    except OSError as exc:
        raise _PermanentFailure(f"cannot write to {destination.parent} ({exc.strerror or exc})") from exc
    temporary = Path(temporary_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        logger.info("Downloading %s", url)
        with os.fdopen(handle, "wb") as out, _open(request) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            if progress is not None:
                progress(0, total)
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        if total is not None and done != total:
            raise ConnectionError(f"connection closed after {done} of {total} bytes")
        if md5 is not None and digest.hexdigest() != md5.lower():
            raise _PermanentFailure(f"checksum mismatch for {destination.name}: expected MD5 {md5}, "
                                    f"got {digest.hexdigest()}")
        os.replace(temporary, destination)
        logger.info("Saved %s (%d bytes)", destination, done)
    finally:
        temporary.unlink(missing_ok=True)


def _open(request: urllib.request.Request):
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:
            raise
        raise _PermanentFailure(f"HTTP {exc.code} {exc.reason}") from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__
