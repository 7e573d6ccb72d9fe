# SPDX-License-Identifier: LGPL-2.1-or-later
"""The main port: issuer endpoints plus the protected API.

The handler's job is sequencing: log the request, pick a fault, read the
body, let the fault act at its point of the exchange, route, respond.  The
request log entry is completed *before* the response goes out, so a test
that queries the control port right after receiving an answer always sees
the finished entry.

MainPort owns the listening socket so "offline" can close it (clients
get ECONNREFUSED) and "online" can reopen it on the same port.
"""

import sys
import threading
from urllib.parse import parse_qs, urlsplit

from . import api, faults, oauth
from .httpbase import BaseHandler, BodyError, Request, Response, Server, headers_dict, parse_form

ROUTES = {
    "/.well-known/openid-configuration": ("discovery", oauth.discovery),
    "/.well-known/oauth-authorization-server": ("discovery", oauth.discovery),
    "/jwks": ("jwks", oauth.jwks),
    "/device_authorization": ("device", oauth.device_authorization),
    "/device": ("device_page", oauth.device_page),
    "/authorize": ("authorize", oauth.authorize),
    "/token": ("token", oauth.token),
    "/revoke": ("revoke", oauth.revoke),
    "/userinfo": ("userinfo", oauth.userinfo),
}
API_ROUTE = ("api", api.handle)


def classify(path):
    if path == "/api" or path.startswith("/api/"):
        return API_ROUTE
    return ROUTES.get(path, ("other", None))


def _not_found(p, req):
    return Response.json(404, {"error": "not_found"})


class MainHandler(BaseHandler):
    def handle_any(self):
        p = self.server.provider
        store = p.store
        path = urlsplit(self.path).path
        target, route = classify(path)
        entry = store.log_start(self.command, path, parse_qs(urlsplit(self.path).query, True),
                                headers_dict(self.headers), target, self.client_address[1])
        seq = entry["seq"]

        body = None
        try:
            form = None
            if p.faults.needs_form(target):
                body = self.read_body()
                form = parse_form(self.headers, body)
            fault = p.faults.take(target, form)
            if fault is not None and fault.kind == "drop_immediately":
                store.log_finish(entry, None, fault.kind)
                if target == "api":
                    api.record_fault(p, None, seq, self.command, path, fault.kind, None)
                self.drop()
                return
            if body is None:
                body = self.read_body()
        except BodyError as exc:
            self.close_connection = True
            resp = Response.json(exc.status, {"error": "invalid_request",
                                              "error_description": str(exc)})
            store.log_finish(entry, resp.status, None, resp.body)
            self.send_full(resp)
            return

        req = Request(self.command, self.path, self.headers, body)
        req.seq = seq
        store.log_body(entry, body, req.form)
        kind = fault.kind if fault is not None else None

        if fault is not None:
            if kind == "delay":
                self.sleep(float(fault.get("seconds", 2)))
            elif kind == "oversized":
                self._finish_fault(entry, req, target, fault, faults.oversized_status(fault))
                faults.stream_oversized(fault, self)
                return
            elif kind == "slowloris" and not fault.get("process", False):
                resp = Response(200, faults.slowloris_body(fault))
                self._finish_fault(entry, req, target, fault, resp.status)
                faults.dribble(fault, self, resp)
                return
            else:
                resp = faults.replacement_response(fault, target)
                if resp is not None:
                    # Log first (see module docstring), then answer.
                    self._finish_fault(entry, req, target, fault, resp.status, resp.body)
                    self.send_full(resp)
                    return

        resp = (route or _not_found)(p, req)

        if kind == "drop_before_response":
            # Processed (a refresh has rotated, an API call was delivered),
            # but the answer is lost.
            store.log_finish(entry, None, kind, resp.body)
            self.drop()
            return
        store.log_finish(entry, resp.status, kind, resp.body)
        if kind == "slowloris":
            faults.dribble(fault, self, resp)
        else:
            self.send_full(resp)

    def _finish_fault(self, entry, req, target, fault, status, body=None):
        self.server.provider.store.log_finish(entry, status, fault.kind, body)
        if target == "api":
            api.record_fault(self.server.provider, req, entry["seq"], req.method, req.path,
                             fault.kind, status)


class MainPort:
    """The main listening socket, which tests can take down and bring back."""

    def __init__(self, provider, port, verbose=False):
        self.provider = provider
        self.verbose = verbose
        self._lock = threading.Lock()
        self._server = self._bind(port)
        self.port = self._server.server_address[1]
        self._start()

    def _bind(self, port):
        return Server(("127.0.0.1", port), MainHandler, self.provider, "main", self.verbose)

    def _start(self):
        server = self._server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                         name="main-port", daemon=True).start()

    @property
    def online(self):
        return self._server is not None

    def go_offline(self):
        with self._lock:
            server, self._server = self._server, None
            if server is None:
                return
            server.shutdown()
            server.server_close()
            # Cut established keep-alive connections too; otherwise a client
            # reusing its connection would never notice the outage.
            server.drop_all_connections()

    def go_online(self):
        with self._lock:
            if self._server is not None:
                return
            last = None
            for _ in range(50):
                try:
                    self._server = self._bind(self.port)
                    break
                except OSError as exc:  # brief races with lingering sockets
                    last = exc
                    threading.Event().wait(0.05)
            else:
                sys.stderr.write("main: cannot rebind port %d: %s\n" % (self.port, last))
                raise last
            self._start()

    def close(self):
        with self._lock:
            if self._server is not None:
                self._server.server_close()
                self._server.drop_all_connections()
