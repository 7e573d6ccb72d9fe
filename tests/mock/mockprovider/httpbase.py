# SPDX-License-Identifier: LGPL-2.1-or-later
"""HTTP/1.1 plumbing shared by the main and the control port.

Built on http.server because it is in the standard library.  What we add:
 * persistent connections with exact Content-Length on every response,
   and `Connection: close` honoured and echoed;
 * request bodies with Content-Length or chunked transfer coding;
 * primitives for faults that misbehave on the wire (headers then a slow
   body, streamed huge bodies, closing without an answer);
 * tracking of open connections so "offline" can cut keep-alive
   connections too (libcurl would otherwise keep using them);
 * no per-request access log by default: URLs can carry codes and tokens.
"""

import json
import re
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 16 * 1024 * 1024
_QUERY_RE = re.compile(r"\?[^\s'\"]*")
FORM_TYPE = "application/x-www-form-urlencoded"


class BodyError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Request:
    """A fully read request, independent of the handler object."""

    def __init__(self, method, raw_path, headers, body):
        self.method = method
        split = urlsplit(raw_path)
        self.path = split.path
        self.query = parse_qs(split.query, keep_blank_values=True)
        self.headers = headers  # http.client.HTTPMessage, case-insensitive
        self.body = body or b""
        self.form = parse_form(headers, self.body)  # dict of lists, or None
        self.seq = None  # request-log sequence number, set by the main port

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def query_value(self, name, default=None):
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self):
        if not self.body:
            return {}
        return json.loads(self.body.decode("utf-8"))


def parse_form(headers, body):
    ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != FORM_TYPE:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return parse_qs(text, keep_blank_values=True)


def headers_dict(headers):
    """Lower-cased names so consumers need no case-insensitive lookup;
    repeated headers are joined as RFC 9110 section 5.3 allows."""
    out = {}
    for name, value in headers.items():
        key = name.lower()
        out[key] = out[key] + ", " + value if key in out else value
    return out


class Response:
    def __init__(self, status, body=b"", content_type="application/json", headers=None):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = list(headers or [])

    @classmethod
    def json(cls, status, obj, headers=None):
        data = json.dumps(obj, indent=None, separators=(", ", ": ")).encode("utf-8")
        return cls(status, data, "application/json", headers)

    @classmethod
    def html(cls, status, text, headers=None):
        return cls(status, text.encode("utf-8"), "text/html; charset=utf-8", headers)


class BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "keyhold-mock/1"
    sys_version = ""

    def version_string(self):
        return self.server_version
    # Idle keep-alive connections are dropped eventually so abandoned client
    # connections do not pile up threads.
    timeout = 120

    # ---- logging: silent unless --verbose, and never the query string ----

    def log_request(self, code="-", size="-"):
        if self.server.verbose:
            path = urlsplit(self.path).path
            sys.stderr.write("%s %s %s %s\n" % (self.server.label, self.command, path, code))

    def log_message(self, fmt, *args):
        if self.server.verbose:
            # Error messages may quote the request line; drop query strings.
            text = _QUERY_RE.sub("?...", fmt % args)
            sys.stderr.write("%s: %s\n" % (self.server.label, text))

    # ---- connection tracking ----

    def setup(self):
        super().setup()
        self.server.track(self.connection)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.untrack(self.connection)

    # ---- method dispatch: every method goes through handle_any() ----

    def handle_any(self):
        raise NotImplementedError

    def _dispatch(self):
        try:
            self.handle_any()
        except (ConnectionError, socket.timeout, BrokenPipeError):
            self.close_connection = True
        except Exception as exc:  # keep serving; report without request data
            self.close_connection = True
            sys.stderr.write("%s: internal error handling %s %s: %s\n" % (
                self.server.label, self.command, urlsplit(self.path).path, type(exc).__name__))
            if self.server.verbose:
                import traceback
                traceback.print_exc()
            try:
                self.send_full(Response.json(500, {"error": "server_error",
                                                   "error_description": "mock internal error"}))
            except OSError:
                pass

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    # ---- request body ----

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise BodyError(400, "bad Content-Length")
        if n < 0:
            raise BodyError(400, "bad Content-Length")
        if n > MAX_BODY:
            raise BodyError(413, "request body too large")
        data = self.rfile.read(n)
        if len(data) != n:
            raise ConnectionError("short request body")
        return data

    def _read_chunked(self):
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            if not line:
                raise ConnectionError("eof in chunked body")
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BodyError(400, "bad chunk size")
            if size == 0:
                # Skip trailer fields up to the terminating empty line.
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                raise BodyError(413, "request body too large")
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)  # CRLF after chunk data

    # ---- responses ----

    def send_head(self, status, content_type, length, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()

    def send_full(self, resp):
        self.send_head(resp.status, resp.content_type, len(resp.body), resp.headers)
        if self.command != "HEAD":
            self.wfile.write(resp.body)
        self.wfile.flush()

    def write_raw(self, data):
        self.wfile.write(data)
        self.wfile.flush()

    def drop(self):
        """End the exchange without a response: closing after the handler
        returns makes the client see EOF (or RST if data is unread)."""
        self.close_connection = True

    def sleep(self, seconds):
        time.sleep(max(0.0, seconds))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, provider, label, verbose=False):
        self.provider = provider
        self.label = label
        self.verbose = verbose
        self._conns = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self):
        # HTTPServer.server_bind() does a reverse DNS lookup (getfqdn) which
        # can stall for seconds in sandboxes; we know the name already.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def track(self, conn):
        with self._conns_lock:
            self._conns.add(conn)

    def untrack(self, conn):
        with self._conns_lock:
            self._conns.discard(conn)

    def drop_all_connections(self):
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, OSError)):
            return
        sys.stderr.write("%s: error on connection: %s\n" % (self.label, type(exc).__name__))
