# SPDX-License-Identifier: LGPL-2.1-or-later
"""The protected API: any method on /api/... behind a bearer token.

Everything that arrives is recorded, because the tests' main question is
"what did the agent actually deliver, how often, with which token".
Idempotency-Key handling mimics a real API: once a key has succeeded, a
repeat gets the stored answer flagged duplicate:true and is not a new
delivery.  A scripted status sequence (control /api-script) lets tests
play 503, 429, ... before success; it only consumes requests that passed
the bearer check, like a real backend behind an auth gateway.
"""

import time

from . import oauth
from .httpbase import Response, headers_dict
from .state import body_as_text, flatten_params


def parse_script_entry(entry):
    if isinstance(entry, int) and not isinstance(entry, bool):
        entry = {"status": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("status"), int) \
            or not 100 <= entry["status"] <= 599:
        raise ValueError("script entries are status codes or {\"status\": N, ...}")
    return dict(entry)


def _record(p, req, seq, **fields):
    body, encoding = body_as_text(req.body) if req is not None else (None, None)
    rec = {"seq": seq, "time": time.time(),
           "method": req.method if req is not None else None,
           "path": req.path if req is not None else None,
           "query": flatten_params(req.query) if req is not None else None,
           "headers": headers_dict(req.headers) if req is not None else None,
           "body": body, "body_encoding": encoding,
           "idempotency_key": req.header("Idempotency-Key") if req is not None else None,
           "outcome": None, "sub": None, "duplicate": False, "status": None}
    rec.update(fields)
    p.store.api_requests.append(rec)
    return rec


def record_fault(p, req, seq, method, path, kind, status):
    """Requests answered by an injected fault never reach handle(), but the
    API log promises to contain every request."""
    with p.store.lock:
        if req is None:
            p.store.api_requests.append({
                "seq": seq, "time": time.time(), "method": method, "path": path, "query": None,
                "headers": None, "body": None, "body_encoding": None, "idempotency_key": None,
                "outcome": "fault:" + kind, "sub": None, "duplicate": False, "status": status})
        else:
            _record(p, req, seq, outcome="fault:" + kind, status=status)


def handle(p, req):
    store = p.store
    seq = req.seq
    token = oauth.bearer_token(req)
    valid, reason, _, grant = store.check_access_token(token)
    key = req.header("Idempotency-Key")
    with store.lock:
        if not valid:
            _record(p, req, seq, outcome="invalid_token: " + reason, status=401)
            return oauth.invalid_token_response(token, reason)
        sub = grant.user["sub"]
        status = store.settings["api_success_status"]
        headers = []
        if store.api_script:
            entry = store.api_script.pop(0)
            status = entry["status"]
            if entry.get("retry_after") is not None:
                headers.append(("Retry-After", str(entry["retry_after"])))
            for name, value in (entry.get("headers") or {}).items():
                headers.append((str(name), str(value)))
            if not 200 <= status < 300:
                _record(p, req, seq, outcome="scripted_status", sub=sub, status=status)
                body = entry.get("body")
                if body is not None:
                    return Response(status, str(body).encode("utf-8"), "application/json", headers)
                return Response.json(status, {"ok": False, "error": "scripted", "status": status},
                                     headers)

        if key is not None and key in store.idempotency:
            done = store.idempotency[key]
            done["delivery"]["count"] += 1
            _record(p, req, seq, outcome="duplicate", sub=sub, duplicate=True,
                    status=done["status"])
            return Response.json(done["status"], dict(done["body"], duplicate=True), headers)

        body = {"ok": True, "method": req.method, "path": req.path, "sub": sub,
                "idempotency_key": key, "duplicate": False}
        text, encoding = body_as_text(req.body)
        delivery = {"seq": seq, "idempotency_key": key, "method": req.method, "path": req.path,
                    "body": text, "body_encoding": encoding, "sub": sub, "count": 1}
        store.deliveries.append(delivery)
        if key is not None:
            store.idempotency[key] = {"status": status, "body": body, "delivery": delivery}
        _record(p, req, seq, outcome="ok", sub=sub, status=status)
        return Response.json(status, body, headers)
