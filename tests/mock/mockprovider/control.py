# SPDX-License-Identifier: LGPL-2.1-or-later
"""The control port: how tests script and inspect the provider.

JSON in, JSON out.  It is a separate listener so it keeps working while
the main port is "offline" or busy with slow faults.  Token values are
exposed here on purpose (the control port is the test harness's view of
the provider's database); they are never printed to stdout/stderr.
"""

import copy

from . import api, oauth
from .faults import Fault
from .httpbase import BaseHandler, Request, Response


class ControlError(Exception):
    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def _ok(**extra):
    return dict({"ok": True}, **extra)


def _since(req):
    try:
        return int(req.query_value("since", "0") or 0)
    except ValueError:
        raise ControlError("since must be an integer")


# ---- handlers: (provider, request, json_body) -> JSON-able object ------------

def health(p, req, body):
    return _ok(online=p.main.online)


def reset(p, req, body):
    p.reset()
    return _ok()


def get_settings(p, req, body):
    with p.store.lock:
        return copy.deepcopy(p.store.settings)


def post_settings(p, req, body):
    try:
        p.store.update_settings(body)
    except ValueError as exc:
        raise ControlError(str(exc))
    if "alg" in body:
        p.keys.current(body["alg"])  # generate now, not inside a token request
    return get_settings(p, req, body)


def get_faults(p, req, body):
    return {"faults": p.faults.list()}


def add_faults(p, req, body):
    specs = body if isinstance(body, list) else [body]
    try:
        parsed = [Fault(spec) for spec in specs]
    except ValueError as exc:
        raise ControlError(str(exc))
    for fault in parsed:
        p.faults.add(fault)
    return _ok(faults=p.faults.list())


def clear_faults(p, req, body):
    p.faults.clear()
    return _ok()


def offline(p, req, body):
    p.main.go_offline()
    return _ok(online=False)


def online(p, req, body):
    p.main.go_online()
    return _ok(online=True)


def _decide(p, body, approve):
    store = p.store
    code = body.get("user_code") if isinstance(body, dict) else None
    with store.lock:
        if code:
            dc = store.find_device_by_user_code(code)
            if dc is None:
                raise ControlError("unknown user_code", 404)
            targets = [dc]
        else:  # no code: every pending one (the harness may not know it)
            targets = [d for d in store.device_codes.values() if d.status == "pending"]
        changed = [d.user_code for d in targets if oauth.decide_device(p, d, approve)]
    if code and not changed:
        raise ControlError("device code is not pending", 409)
    return _ok(user_codes=changed)


def device_approve(p, req, body):
    return _decide(p, body, True)


def device_deny(p, req, body):
    return _decide(p, body, False)


def device_codes(p, req, body):
    store = p.store
    with store.lock:
        now = store.now()
        return {"device_codes": [{"user_code": d.user_code, "client_id": d.client_id,
                                  "scope": " ".join(d.scope), "status": d.status,
                                  "polls": d.polls, "interval": d.interval,
                                  "expired": now >= d.expires_at}
                                 for d in store.device_codes.values()]}


def revoke_grants(p, req, body):
    store = p.store
    sub = body.get("sub") if isinstance(body, dict) else None
    client_id = body.get("client_id") if isinstance(body, dict) else None
    n = 0
    with store.lock:
        for g in store.grants.values():
            if g.revoked or (sub and g.user["sub"] != sub) or (client_id and g.client_id != client_id):
                continue
            store.revoke_grant(g, "revoked via control")
            n += 1
    return _ok(revoked=n)


def get_log(p, req, body):
    target = req.query_value("target")
    since = _since(req)
    with p.store.lock:
        entries = [e for e in p.store.log
                   if e["seq"] > since and (not target or e["target"] == target)]
        return {"entries": copy.deepcopy(entries)}


def get_api_requests(p, req, body):
    since = _since(req)
    with p.store.lock:
        return {"requests": copy.deepcopy([r for r in p.store.api_requests if r["seq"] > since])}


def get_api_deliveries(p, req, body):
    with p.store.lock:
        return {"deliveries": copy.deepcopy(p.store.deliveries)}


def get_api_script(p, req, body):
    with p.store.lock:
        return {"statuses": copy.deepcopy(p.store.api_script)}


def set_api_script(p, req, body):
    entries = body.get("statuses") if isinstance(body, dict) else body
    if not isinstance(entries, list):
        raise ControlError('expected {"statuses": [...]}')
    try:
        parsed = [api.parse_script_entry(e) for e in entries]
    except ValueError as exc:
        raise ControlError(str(exc))
    with p.store.lock:
        if isinstance(body, dict) and body.get("append"):
            p.store.api_script.extend(parsed)
        else:
            p.store.api_script = parsed
    return get_api_script(p, req, body)


def clear_api_script(p, req, body):
    with p.store.lock:
        p.store.api_script = []
    return _ok()


def check_token(p, req, body):
    if not isinstance(body, dict):
        raise ControlError("expected a JSON object")
    if body.get("refresh_token"):
        return p.store.describe_refresh_token(body["refresh_token"])
    valid, reason, at, grant = p.store.check_access_token(body.get("access_token"))
    out = {"valid": valid, "reason": reason, "sub": None, "exp": None}
    if at is not None:
        out.update(sub=grant.user["sub"], exp=at.exp, scope=" ".join(at.scope), aud=at.aud,
                   client_id=grant.client_id, grant_id=grant.id)
    return out


def stats(p, req, body):
    with p.store.lock:
        return {"counts": dict(p.store.stats)}


def grants(p, req, body):
    include = req.query_value("include_tokens") in ("1", "true", "yes")
    return {"grants": p.store.grant_views(include)}


def revocations(p, req, body):
    with p.store.lock:
        return {"revocations": copy.deepcopy(p.store.revocations)}


def rotate_key(p, req, body):
    if not isinstance(body, dict):
        raise ControlError("expected a JSON object")
    alg = body.get("alg") or p.store.settings["alg"]
    if alg not in ("RS256", "EdDSA"):
        raise ControlError("alg must be RS256 or EdDSA")
    key = p.keys.rotate(alg, keep_old=body.get("keep_old", True))
    return _ok(kid=key.kid, alg=alg)


ROUTES = {
    ("GET", "/health"): health,
    ("POST", "/reset"): reset,
    ("GET", "/settings"): get_settings,
    ("POST", "/settings"): post_settings,
    ("GET", "/faults"): get_faults,
    ("POST", "/faults"): add_faults,
    ("DELETE", "/faults"): clear_faults,
    ("POST", "/faults/clear"): clear_faults,
    ("POST", "/offline"): offline,
    ("POST", "/online"): online,
    ("POST", "/device/approve"): device_approve,
    ("POST", "/device/deny"): device_deny,
    ("GET", "/device-codes"): device_codes,
    ("POST", "/revoke-grants"): revoke_grants,
    ("GET", "/log"): get_log,
    ("GET", "/api-requests"): get_api_requests,
    ("GET", "/api-deliveries"): get_api_deliveries,
    ("GET", "/api-script"): get_api_script,
    ("POST", "/api-script"): set_api_script,
    ("DELETE", "/api-script"): clear_api_script,
    ("POST", "/check-token"): check_token,
    ("GET", "/stats"): stats,
    ("GET", "/grants"): grants,
    ("GET", "/revocations"): revocations,
    ("POST", "/rotate-key"): rotate_key,
}


class ControlHandler(BaseHandler):
    def handle_any(self):
        body = self.read_body()
        req = Request(self.command, self.path, self.headers, body)
        handler = ROUTES.get((req.method, req.path.rstrip("/") or "/"))
        if handler is None:
            known = any(path == req.path for _, path in ROUTES)
            resp = Response.json(405 if known else 404, {"error": "no such control endpoint"})
        else:
            try:
                try:
                    payload = req.json()
                except ValueError:
                    raise ControlError("body is not valid JSON")
                if payload is None:
                    payload = {}
                resp = Response.json(200, handler(self.server.provider, req, payload))
            except ControlError as exc:
                resp = Response.json(exc.status, {"ok": False, "error": str(exc)})
        self.send_full(resp)
