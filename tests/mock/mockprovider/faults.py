# SPDX-License-Identifier: LGPL-2.1-or-later
"""Scripted fault injection for the main port.

Faults sit in one FIFO list.  A main-port request is matched against the
list in order; the first fault whose target matches (the request's target
or "all", plus an optional grant_type filter) is used and its count is
decremented.  count -1 keeps a fault until the list is cleared; `skip` lets
that many matching requests pass untouched before the fault fires.

Each kind is acted out at a specific point of the exchange, because that
point is what the client under test experiences:
  drop_immediately      before the request is processed (nothing happens server-side)
  status, invalid_grant, garbage, oversized, slowloris
                        instead of processing (unless slowloris has process=true)
  delay                 sleep, then process and answer normally
  drop_before_response  process (state changes happen!), then close with no answer
"""

import threading

from .httpbase import Response

TARGETS = ("token", "device", "discovery", "jwks", "revoke", "api", "userinfo",
           "authorize", "device_page", "all")
KINDS = ("status", "delay", "slowloris", "drop_before_response", "drop_immediately",
         "oversized", "garbage", "invalid_grant")

CHUNK = 64 * 1024


class Fault:
    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("fault must be a JSON object")
        self.spec = dict(spec)
        self.target = spec.get("target", "all")
        self.kind = spec.get("kind")
        self.count = spec.get("count", 1)
        self.skip = spec.get("skip", 0)
        self.grant_type = spec.get("grant_type")
        if self.target not in TARGETS:
            raise ValueError("unknown fault target %r" % (self.target,))
        if self.kind not in KINDS:
            raise ValueError("unknown fault kind %r" % (self.kind,))
        if not isinstance(self.count, int) or isinstance(self.count, bool) or \
                (self.count < 1 and self.count != -1):
            raise ValueError("count must be a positive integer or -1")
        if not isinstance(self.skip, int) or self.skip < 0:
            raise ValueError("skip must be a non-negative integer")
        for name in ("seconds", "interval", "retry_after"):
            if name in spec and not isinstance(spec[name], (int, float)):
                raise ValueError("%s must be a number" % name)
        if "status" in spec and not (isinstance(spec["status"], int) and 100 <= spec["status"] <= 599):
            raise ValueError("status must be an HTTP status code")
        if "bytes" in spec and not (isinstance(spec["bytes"], int) and spec["bytes"] >= 0):
            raise ValueError("bytes must be a non-negative integer")

    def get(self, name, default=None):
        return self.spec.get(name, default)

    def view(self):
        return dict(self.spec, count=self.count, skip=self.skip)


class FaultQueue:
    def __init__(self):
        self._lock = threading.Lock()
        self._items = []

    def add(self, fault):
        with self._lock:
            self._items.append(fault)

    def clear(self):
        with self._lock:
            self._items = []

    def list(self):
        with self._lock:
            return [f.view() for f in self._items]

    @staticmethod
    def _matches_target(fault, target):
        return fault.target == "all" or fault.target == target

    def needs_form(self, target):
        """True when matching needs the request body (a grant_type filter)."""
        with self._lock:
            return any(f.grant_type and self._matches_target(f, target) for f in self._items)

    def take(self, target, form=None):
        with self._lock:
            for fault in self._items:
                if not self._matches_target(fault, target):
                    continue
                if fault.grant_type:
                    values = (form or {}).get("grant_type") or [None]
                    if values[-1] != fault.grant_type:
                        continue
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                if fault.count > 0:
                    fault.count -= 1
                    if fault.count == 0:
                        self._items.remove(fault)
                return fault
            return None


# ---- acting faults out -------------------------------------------------

def _extra_headers(fault):
    headers = []
    if fault.get("retry_after") is not None:
        ra = fault.get("retry_after")
        headers.append(("Retry-After", str(int(ra)) if float(ra).is_integer() else str(ra)))
    for name, value in (fault.get("headers") or {}).items():
        headers.append((str(name), str(value)))
    return headers


def _status_response(fault, target):
    oauth_error = fault.get("oauth_error")
    status = fault.get("status", 400 if oauth_error else 503)
    headers = _extra_headers(fault)
    if status == 401 and target in ("api", "userinfo"):
        headers.append(("WWW-Authenticate", 'Bearer error="invalid_token"'))
    if fault.get("body") is not None:
        return Response(status, str(fault.get("body")).encode("utf-8"),
                        fault.get("content_type", "application/json"), headers)
    if oauth_error:
        obj = {"error": oauth_error, "error_description": "injected fault"}
        headers += [("Cache-Control", "no-store")]
    else:
        obj = {"error": "injected_fault", "status": status}
    return Response.json(status, obj, headers)


_GARBAGE = {
    "truncated": b'{"access_token": "garbage-not-a-token", "token_type": "Bea',
    "html": b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",
    "binary": bytes(range(256)),
}


def replacement_response(fault, target):
    """The answer given instead of processing, for the kinds that have a
    complete one (status, invalid_grant, garbage); None otherwise."""
    kind = fault.kind
    if kind == "status":
        return _status_response(fault, target)
    if kind == "invalid_grant":
        return Response.json(400, {"error": "invalid_grant", "error_description": "injected fault"},
                             [("Cache-Control", "no-store")])
    if kind == "garbage":
        body = fault.get("body")
        body = body.encode("utf-8") if body is not None else _GARBAGE[fault.get("style", "truncated")]
        return Response(fault.get("status", 200), body, fault.get("content_type", "application/json"),
                        _extra_headers(fault))
    return None


def oversized_status(fault):
    return fault.get("status", 200)


def stream_oversized(fault, handler):
    """A huge body that looks like the start of a JSON object, generated on
    the fly so 50 MB never sits in memory."""
    total = int(fault.get("bytes", 50 * 1024 * 1024))
    head, tail = b'{"pad": "', b'"}'
    if total < len(head) + len(tail):
        head, tail = b"", b""
    handler.send_head(oversized_status(fault), "application/json", total, _extra_headers(fault))
    handler.write_raw(head)
    remaining = total - len(head) - len(tail)
    block = b"a" * CHUNK
    while remaining > 0:
        n = min(remaining, CHUNK)
        handler.wfile.write(block[:n])
        remaining -= n
    handler.write_raw(tail)


def slowloris_body(fault):
    """Body for a slowloris that does not process the request: whitespace
    (legal before a JSON value) followed by an empty object."""
    n = max(1, int(float(fault.get("seconds", 10)) / max(float(fault.get("interval", 1)), 0.001)))
    return b" " * n + b"{}"


def dribble(fault, handler, resp):
    """Headers at once, then the body one byte per `interval` for `seconds`;
    whatever is left after that goes out in one piece."""
    interval = max(float(fault.get("interval", 1)), 0.001)
    seconds = float(fault.get("seconds", 10))
    handler.send_head(resp.status, resp.content_type, len(resp.body), resp.headers)
    handler.wfile.flush()
    body, pos, spent = resp.body, 0, 0.0
    while pos < len(body) and spent < seconds:
        handler.sleep(interval)
        spent += interval
        handler.write_raw(body[pos:pos + 1])
        pos += 1
    if pos < len(body):
        handler.write_raw(body[pos:])
