"""A local HTTP server standing in for the Hugging Face Hub and for OpenAI's download host, for offline tests.

Hub files are served as ``huggingface_hub`` asks for them: ``HEAD``/``GET /{owner}/{repo}/resolve/{revision}/{path}``
answered with ``X-Repo-Commit``, ``ETag`` and ``Content-Length``, and ``404`` with the ``X-Error-Code`` the Hub
sends (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``). Plain files are served at their path. Both
honour ``Range: bytes=N-`` (206 with ``Content-Range``). ``cut`` makes the next GETs of a path stop after a
number of bytes and drop the connection, as a broken download does.
"""

from __future__ import annotations

import hashlib
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Repo:
    """A Hub repository: branch or tag -> commit, and each commit's files."""

    refs: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)


@dataclass
class Content:
    repos: dict[str, Repo] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    cut: dict[str, list[int]] = field(default_factory=dict)
    """path -> byte counts after which the next GETs of it are cut off, one per GET."""
    log: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(method, path, Range header) of every request."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        content: Content = self.server.content  # type: ignore[attr-defined]
        path = urllib.parse.urlsplit(self.path).path
        content.log.append((self.command, path, self.headers.get("Range")))
        headers: dict[str, str] = {}
        data = content.files.get(path)
        if data is None:
            parts = path.strip("/").split("/")
            if len(parts) < 5 or parts[2] != "resolve":
                return self._error(404, {})
            repo = content.repos.get(f"{parts[0]}/{parts[1]}")
            if repo is None:
                return self._error(404, {"X-Error-Code": "RepoNotFound"})
            revision = urllib.parse.unquote(parts[3])
            commit = repo.refs.get(revision, revision)
            if commit not in repo.commits:
                return self._error(404, {"X-Error-Code": "RevisionNotFound"})
            headers["X-Repo-Commit"] = commit
            data = repo.commits[commit].get("/".join(urllib.parse.unquote(p) for p in parts[4:]))
            if data is None:
                return self._error(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit})
        headers["ETag"] = f'"{hashlib.sha256(data).hexdigest()}"'
        headers["Accept-Ranges"] = "bytes"
        start, status = 0, 200
        wanted = self.headers.get("Range")
        if wanted and wanted.startswith("bytes=") and wanted.endswith("-"):
            start = int(wanted[len("bytes="):-1])
            if start >= len(data):
                return self._error(416, {"Content-Range": f"bytes */{len(data)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if not body:
            return
        cuts = content.cut.get(path)
        if cuts:
            stop = cuts.pop(0)
            self.wfile.write(data[start:start + stop])
            self.wfile.flush()
            self.close_connection = True  # the rest never comes
            return
        self.wfile.write(data[start:])

    def _error(self, code: int, headers: dict[str, str]) -> None:
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()


class HubServer:
    """``with HubServer(content) as server:`` serves ``content`` on ``server.url`` (127.0.0.1, a free port)."""

    def __init__(self, content: Content):
        self.content = content
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> "HubServer":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.content = self.content  # type: ignore[attr-defined]
        host, port = self._server.server_address[:2]
        self._url = f"http://{host}:{port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return self._url

    def stop(self) -> None:
        """Stop serving (a second call does nothing): later requests find no server."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __exit__(self, *exc) -> None:
        self.stop()
