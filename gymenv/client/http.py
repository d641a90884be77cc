"""One keep-alive HTTP connection to a gymsite server: JSON in and out, the bearer token, clear errors."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from typing import Any
from urllib.parse import urlsplit


class RemoteError(Exception):
    """The server refused a request: `status` (HTTP), `code` (gymsite's slug) and its `message`."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


# A request on a connection the server closed while it was idle (uvicorn closes them after a few seconds)
# never reached the server: it is sent again, once, on a new connection.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Connection:
    """Requests to one server over one reused connection (thread-safe: one request at a time)."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 300.0):
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be http(s)://host[:port][/prefix], not {url[:100]!r}")
        self.url = url
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: dict) -> Any:
        return self.request("POST", path, body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def request(self, method: str, path: str, body: dict | None = None) -> Any:
        payload = None if body is None else json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
        with self._lock:
            reused = self._conn is not None
            try:
                try:
                    status, data = self._send(method, path, payload)
                except _STALE:
                    if not reused:
                        raise
                    self.close()
                    status, data = self._send(method, path, payload)
            except BaseException:
                self.close()  # a half-read answer would be taken for the next request's
                raise
        try:
            answer = json.loads(data) if data else None
        except ValueError:
            answer = None
        if status >= 400:
            if isinstance(answer, dict) and "error" in answer:
                raise RemoteError(status, str(answer.get("code", "error")), str(answer["error"]))
            raise RemoteError(status, "http_error", data[:300].decode(errors="replace") or http.client.responses.get(
                status, "error"))
        return answer

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def _send(self, method: str, path: str, payload: bytes | None) -> tuple[int, bytes]:
        conn = self._conn or self._connect()
        conn.request(method, self._prefix + path, body=payload, headers=self._headers)
        response = conn.getresponse()
        data = response.read()
        if response.will_close:
            self.close()
        return response.status, data

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self._timeout)
        conn.connect()
        # Headers and body go in two writes: without NODELAY every request waits out a delayed ACK.
        assert conn.sock is not None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._conn = conn
        return conn
