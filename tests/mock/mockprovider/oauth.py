# SPDX-License-Identifier: LGPL-2.1-or-later
"""OAuth 2.0 / OpenID Connect endpoints served on the main port.

Each handler takes (provider, Request) and returns a Response.  Behaviour
follows the RFCs closely enough that a conforming client works unchanged,
with test-control knobs (state.default_settings) layered on top:
RFC 6749 (OAuth 2.0), 7636 (PKCE), 8628 (device grant), 7009 (revocation),
8414 / OIDC Discovery, 8252 (loopback redirects), 9207 (iss parameter),
8707 (resource indicators), 6750 (bearer tokens).
"""

import hashlib
import html
import re
import secrets
import time
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from . import jwt
from .httpbase import Response
from .state import AuthCode, DeviceCode

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# RFC 7636 section 4.1: 43-128 characters from the unreserved set.
VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
# BASE64URL(SHA256(...)) without padding is always 43 characters.
CHALLENGE_RE = re.compile(r"^[A-Za-z0-9\-_]{43}$")
# RFC 6749 section 5.1: token responses must not be cached.
NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
# RFC 8707 allows several resource parameters; all others must be unique.
MULTI_VALUED = ("resource",)
WRONG_ISSUER = "https://wrong-issuer.example"


def oauth_error(status, error, description, headers=()):
    """RFC 6749 section 5.2 error response."""
    return Response.json(status, {"error": error, "error_description": description},
                         NO_STORE + list(headers))


def _form_params(req):
    """Returns (params, error_response).  Empty values count as absent
    (RFC 6749 section 3.1) and repeated parameters are an error (3.2)."""
    if req.method != "POST":
        return None, oauth_error(405, "invalid_request", "use POST", [("Allow", "POST")])
    if req.form is None:
        return None, oauth_error(400, "invalid_request",
                                 "body must be application/x-www-form-urlencoded")
    params = {}
    for name, values in req.form.items():
        values = [v for v in values if v != ""]
        if not values:
            continue
        if name in MULTI_VALUED:
            params[name] = values
        elif len(values) > 1:
            return None, oauth_error(400, "invalid_request", "parameter %s is repeated" % name)
        else:
            params[name] = values[0]
    return params, None


def _client_error(p, client_id):
    """Public clients authenticate with nothing but their client_id."""
    if not client_id:
        return oauth_error(401, "invalid_client", "client_id is required")
    if client_id in p.store.settings["rejected_clients"]:
        return oauth_error(401, "invalid_client", "unknown or disabled client")
    return None


def _split_scope(text):
    out = []
    for item in (text or "").split():
        if item not in out:
            out.append(item)
    return out


def pkce_challenge(verifier):
    return jwt.b64url(hashlib.sha256(verifier.encode("ascii")).digest())


# ---- bearer tokens (shared with the protected API) -----------------------

def bearer_token(req):
    """Token from `Authorization: Bearer ...` (RFC 6750 section 2.1), or None."""
    value = req.header("Authorization")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return ""
    return token.strip()


def invalid_token_response(token, reason):
    """RFC 6750 section 3.1: no error code when no credentials were sent,
    error="invalid_token" when a token was sent but is not acceptable."""
    if token is None:
        challenge = 'Bearer realm="keyhold-mock"'
        body = {"error": "unauthorized", "error_description": "no bearer token"}
    else:
        challenge = 'Bearer realm="keyhold-mock", error="invalid_token", error_description="%s"' % reason
        body = {"error": "invalid_token", "error_description": reason}
    return Response.json(401, body, [("WWW-Authenticate", challenge)])


# ---- discovery and keys --------------------------------------------------

def discovery(p, req):
    iss = p.issuer
    s = p.store.settings
    doc = {
        "issuer": iss,
        "authorization_endpoint": iss + "/authorize",
        "token_endpoint": iss + "/token",
        "device_authorization_endpoint": iss + "/device_authorization",
        "revocation_endpoint": iss + "/revoke",
        "userinfo_endpoint": iss + "/userinfo",
        "jwks_uri": iss + "/jwks",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_GRANT],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [s["alg"]],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "authorization_response_iss_parameter_supported": True,
        "scopes_supported": ["openid", "profile", "email", "offline_access", "api"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce",
                             "name", "email", "email_verified"],
    }
    doc.update(s["discovery_overrides"])
    return Response.json(200, doc)


def jwks(p, req):
    return Response.json(200, p.keys.jwks(p.store.settings["alg"]))


def make_id_token(p, grant, nonce):
    """OIDC Core section 2 ID token, optionally broken on purpose
    (setting bad_id_token, consumed by this call) to test client checks."""
    store = p.store
    s = store.settings
    now = int(store.now())
    user = grant.user
    claims = {"iss": p.issuer, "sub": user["sub"], "aud": grant.client_id,
              "exp": now + s["id_token_lifetime"], "iat": now, "auth_time": int(grant.auth_time),
              "name": user["name"], "email": user["email"], "email_verified": True}
    if nonce is not None:
        claims["nonce"] = nonce
    bad = store.take_bad_id_token()
    if bad == "wrong_iss":
        claims["iss"] = WRONG_ISSUER
    elif bad == "wrong_aud":
        claims["aud"] = "some-other-client"
    elif bad == "expired":
        claims["iat"], claims["exp"] = now - 7200, now - 3600
    elif bad == "wrong_nonce":
        claims["nonce"] = "wrong-nonce-" + secrets.token_hex(4)
    elif bad == "iat_future":
        claims["iat"] = now + 3600
        claims["exp"] = claims["iat"] + s["id_token_lifetime"]
    elif bad == "wrong_sub":
        claims["sub"] = "user-mallory-9999"
    alg = s["alg"]
    if bad == "alg_none":
        return jwt.encode_unsigned({"alg": "none", "typ": "JWT"}, claims)
    key = p.keys.current(alg)
    header = {"alg": alg, "kid": key.kid, "typ": "JWT"}
    if bad == "unknown_kid":
        header["kid"] = "unknown-" + secrets.token_hex(4)
    token = jwt.encode(header, claims, key)
    if bad == "bad_signature":
        head, payload, sig = token.split(".")
        raw = bytearray(jwt.b64url_decode(sig))
        raw[len(raw) // 2] ^= 0x01
        token = head + "." + payload + "." + jwt.b64url(bytes(raw))
    return token


# ---- device authorization grant (RFC 8628) -------------------------------

def device_authorization(p, req):
    params, err = _form_params(req)
    if err:
        return err
    client_id = params.get("client_id")
    err = _client_error(p, client_id)
    if err:
        return err
    store = p.store
    with store.lock:
        s = store.settings
        scope = _split_scope(params.get("scope") or s["default_scope"])
        dc = DeviceCode(device_code="dc-" + secrets.token_urlsafe(32),
                        user_code=store.new_user_code(), client_id=client_id, scope=scope,
                        expires_at=store.now() + s["device_expires_in"],
                        interval=s["device_interval"])
        store.device_codes[dc.device_code] = dc
    uri = p.issuer + "/device"
    return Response.json(200, {
        "device_code": dc.device_code, "user_code": dc.user_code,
        "verification_uri": uri,
        "verification_uri_complete": uri + "?user_code=" + quote(dc.user_code),
        "expires_in": s["device_expires_in"], "interval": dc.interval}, NO_STORE)


def decide_device(p, dc, approve):
    """Approve or deny a pending device code.  The user is whoever is the
    current user at approval time.  Returns False if not pending."""
    store = p.store
    with store.lock:
        if dc.status != "pending":
            return False
        if approve:
            dc.status = "approved"
            dc.user = dict(store.settings["user"])
            dc.approved_at = store.now()
        else:
            dc.status = "denied"
        return True


def device_page(p, req):
    """Stand-in for the verification page a human would visit."""
    store = p.store
    if req.method == "POST" and req.form is not None:
        code = (req.form.get("user_code") or [""])[-1]
        action = (req.form.get("action") or ["approve"])[-1]
        with store.lock:
            dc = store.find_device_by_user_code(code)
            ok = dc is not None and decide_device(p, dc, action == "approve")
        msg = ("Device %s." % ("approved" if action == "approve" else "denied")) if ok \
            else "Unknown or already used code."
        return Response.html(200 if ok else 400, "<!doctype html><p>%s</p>\n" % html.escape(msg))
    code = html.escape(req.query_value("user_code", "") or "")
    page = ("<!doctype html><title>Device sign-in</title>"
            "<form method=post action=/device><input name=user_code value=\"%s\">"
            "<button name=action value=approve>Approve</button>"
            "<button name=action value=deny>Deny</button></form>\n" % code)
    return Response.html(200, page)


# ---- authorization endpoint (RFC 6749 4.1, RFC 7636, RFC 9207) -----------

def _is_loopback_redirect(uri):
    """RFC 8252 section 7.3: http scheme, literal loopback IP, explicit port."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return False
    return (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1")
            and port is not None and not parts.fragment)


def _with_query(uri, params):
    parts = urlsplit(uri)
    extra = urlencode(params, quote_via=quote)
    query = parts.query + "&" + extra if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def authorize(p, req):
    store = p.store
    if req.method == "POST" and req.form is not None:
        source = req.form   # the consent page posts back here
    else:
        source = req.query
    if any(len(v) > 1 for v in source.values()):
        return Response.html(400, "<!doctype html><p>Repeated parameter.</p>\n")
    params = {k: v[0] for k, v in source.items() if v and v[0] != ""}
    client_id = params.get("client_id")
    redirect_uri = params.get("redirect_uri")
    # Errors about the client or redirect URI must not redirect
    # (RFC 6749 section 4.1.2.1): the redirect target is not trustworthy.
    if not client_id or client_id in store.settings["rejected_clients"]:
        return Response.html(400, "<!doctype html><p>Invalid client.</p>\n")
    if not redirect_uri or not _is_loopback_redirect(redirect_uri):
        return Response.html(400, "<!doctype html><p>Invalid redirect_uri.</p>\n")

    mode = store.settings["authorize_mode"]
    state = params.get("state")

    def redirect(result):
        out = dict(result)
        if mode == "wrong_state":
            out["state"] = "tampered-" + (state or "none")
        elif state is not None:
            out["state"] = state
        if mode == "wrong_iss":
            out["iss"] = WRONG_ISSUER
        elif mode != "no_iss":
            out["iss"] = p.issuer
        return Response(302, b"", None, [("Location", _with_query(redirect_uri, out)),
                                          ("Cache-Control", "no-store")])

    if params.get("response_type") != "code":
        return redirect({"error": "unsupported_response_type",
                         "error_description": "only response_type=code is supported"})
    challenge = params.get("code_challenge")
    if not challenge:
        return redirect({"error": "invalid_request", "error_description": "PKCE code_challenge required"})
    if params.get("code_challenge_method") != "S256":
        return redirect({"error": "invalid_request",
                         "error_description": "code_challenge_method must be S256"})
    if not CHALLENGE_RE.match(challenge):
        return redirect({"error": "invalid_request", "error_description": "malformed code_challenge"})
    if mode == "access_denied":
        return redirect({"error": "access_denied", "error_description": "the user said no"})

    decision = params.get("decision")
    if not store.settings["auto_approve"] and decision is None:
        fields = "".join('<input type=hidden name="%s" value="%s">' % (html.escape(k), html.escape(v))
                         for k, v in params.items())
        return Response.html(200, "<!doctype html><title>Consent</title>"
                                  "<form method=post action=/authorize>%s"
                                  "<button name=decision value=approve>Approve</button>"
                                  "<button name=decision value=deny>Deny</button></form>\n" % fields)
    if decision == "deny":
        return redirect({"error": "access_denied", "error_description": "the user said no"})

    with store.lock:
        s = store.settings
        now = store.now()
        ac = AuthCode(code="ac-" + secrets.token_urlsafe(32), client_id=client_id,
                      redirect_uri=redirect_uri,
                      scope=_split_scope(params.get("scope") or s["default_scope"]),
                      nonce=params.get("nonce"), challenge=challenge, user=dict(s["user"]),
                      auth_time=now, expires_at=now + s["code_lifetime"])
        store.auth_codes[ac.code] = ac
    return redirect({"code": ac.code})


# ---- token endpoint --------------------------------------------------------

def _check_resources(resources):
    """RFC 8707 section 2: absolute URIs without a fragment."""
    for r in resources:
        parts = urlsplit(r)
        if not parts.scheme or "#" in r:
            return oauth_error(400, "invalid_target", "resource must be an absolute URI")
    return None


def _issue(p, grant, scope, resources, nonce, want_id_token, refresh_token=None, new_refresh=True):
    """Success response (RFC 6749 section 5.1).  Call with the store lock held."""
    store = p.store
    s = store.settings
    for r in resources:
        if r not in grant.resources:
            grant.resources.append(r)
    aud = None
    if resources:
        aud = resources[0] if len(resources) == 1 else list(resources)
    at = store.issue_access_token(grant, scope, aud)
    body = {"access_token": at.token, "token_type": "Bearer", "expires_in": s["token_lifetime"],
            "scope": " ".join(scope)}
    if new_refresh:
        body["refresh_token"] = store.issue_refresh_token(grant).token
    elif refresh_token:
        body["refresh_token"] = refresh_token
    if want_id_token and "openid" in scope:
        body["id_token"] = make_id_token(p, grant, nonce)
    return Response.json(200, body, NO_STORE)


def _grant_device(p, params, client_id, resources):
    store = p.store
    s = store.settings
    code = params.get("device_code")
    if not code:
        return oauth_error(400, "invalid_request", "device_code is required")
    dc = store.device_codes.get(code)
    if dc is None:
        return oauth_error(400, "invalid_grant", "unknown device_code")
    if dc.client_id != client_id:
        return oauth_error(400, "invalid_grant", "device_code was issued to another client")
    if dc.status == "consumed":
        return oauth_error(400, "invalid_grant", "device_code was already used")
    if dc.status == "denied":
        return oauth_error(400, "access_denied", "the user denied the request")
    if store.now() >= dc.expires_at:
        return oauth_error(400, "expired_token", "device_code expired")
    # slow_down is about real elapsed time between polls, so it uses the
    # monotonic clock, not the (offsettable) protocol clock.  50 ms of
    # tolerance absorbs timer jitter in clients that wait exactly `interval`.
    mono = time.monotonic()
    too_fast = dc.last_poll is not None and mono - dc.last_poll < dc.interval - 0.05
    dc.last_poll = mono
    if s["force_slow_down"] > 0:
        s["force_slow_down"] -= 1
        too_fast = True
    if too_fast:
        dc.interval += s["slow_down_increment"]  # RFC 8628 section 3.5
        return oauth_error(400, "slow_down", "polling too fast; interval is now %d" % dc.interval)
    dc.polls += 1
    if dc.status == "pending" and s["auto_approve"] and dc.polls > s["approve_after_polls"]:
        decide_device(p, dc, True)
    if dc.status != "approved":
        return oauth_error(400, "authorization_pending", "the user has not yet approved")
    dc.status = "consumed"
    grant = store.new_grant(client_id, dc.user, dc.scope, "device_code", dc.approved_at)
    return _issue(p, grant, grant.scope, resources, None, True)


def _grant_code(p, params, client_id, resources):
    store = p.store
    code = params.get("code")
    if not code:
        return oauth_error(400, "invalid_request", "code is required")
    ac = store.auth_codes.get(code)
    if ac is None:
        return oauth_error(400, "invalid_grant", "unknown authorization code")
    if ac.used:
        # RFC 6749 section 4.1.2: a replayed code should revoke what it produced.
        if ac.grant_id in store.grants:
            store.revoke_grant(store.grants[ac.grant_id], "authorization code replayed")
        return oauth_error(400, "invalid_grant", "authorization code was already used")
    if store.now() >= ac.expires_at:
        return oauth_error(400, "invalid_grant", "authorization code expired")
    if ac.client_id != client_id:
        return oauth_error(400, "invalid_grant", "code was issued to another client")
    if params.get("redirect_uri") != ac.redirect_uri:
        return oauth_error(400, "invalid_grant", "redirect_uri does not match the authorization request")
    verifier = params.get("code_verifier")
    if not verifier:
        return oauth_error(400, "invalid_grant", "code_verifier is required")
    if not VERIFIER_RE.match(verifier) or not secrets.compare_digest(pkce_challenge(verifier), ac.challenge):
        # The code is not burnt by a failed attempt, so a test can retry it.
        return oauth_error(400, "invalid_grant", "PKCE verification failed")
    ac.used = True
    grant = store.new_grant(client_id, ac.user, ac.scope, "authorization_code", ac.auth_time)
    ac.grant_id = grant.id
    return _issue(p, grant, grant.scope, resources, ac.nonce, True)


def _grant_refresh(p, params, client_id, resources):
    store = p.store
    s = store.settings
    token = params.get("refresh_token")
    if not token:
        return oauth_error(400, "invalid_request", "refresh_token is required")
    rt = store.refresh_tokens.get(token)
    if rt is None:
        return oauth_error(400, "invalid_grant", "unknown refresh token")
    grant = store.grants[rt.grant_id]
    if grant.client_id != client_id:
        return oauth_error(400, "invalid_grant", "refresh token was issued to another client")
    if grant.revoked or rt.state == "revoked":
        return oauth_error(400, "invalid_grant", "grant has been revoked")
    now = store.now()
    if rt.exp is not None and now >= rt.exp:
        return oauth_error(400, "invalid_grant", "refresh token expired")
    if rt.state == "rotated":
        grace = s["rotation_grace"]
        if not (grace > 0 and now - rt.rotated_at <= grace):
            # Reuse of a rotated token means it leaked or the client lost
            # track; either way the whole grant is burnt (RFC 9700 4.14.2).
            store.revoke_grant(grant, "refresh token reuse detected")
            return oauth_error(400, "invalid_grant", "refresh token reuse detected; grant revoked")
    scope = rt.scope
    if params.get("scope"):
        requested = _split_scope(params["scope"])
        if not set(requested) <= set(rt.scope):
            return oauth_error(400, "invalid_scope", "requested scope exceeds the original grant")
        scope = requested
    grant.refreshes += 1
    if s["rotate_refresh"]:
        if rt.state == "active":
            rt.state, rt.rotated_at = "rotated", now
        return _issue(p, grant, scope, resources, None, s["id_token_on_refresh"])
    return _issue(p, grant, scope, resources, None, s["id_token_on_refresh"],
                  refresh_token=None if s["omit_unrotated_refresh"] else rt.token,
                  new_refresh=False)


_GRANTS = {DEVICE_GRANT: _grant_device, "authorization_code": _grant_code,
           "refresh_token": _grant_refresh}


def token(p, req):
    params, err = _form_params(req)
    if err:
        return err
    grant_type = params.get("grant_type")
    if not grant_type:
        return oauth_error(400, "invalid_request", "grant_type is required")
    handler = _GRANTS.get(grant_type)
    if handler is None:
        return oauth_error(400, "unsupported_grant_type", "unsupported grant_type")
    client_id = params.get("client_id")
    err = _client_error(p, client_id)
    if err:
        return err
    resources = params.get("resource", [])
    err = _check_resources(resources)
    if err:
        return err
    with p.store.lock:
        return handler(p, params, client_id, resources)


# ---- revocation (RFC 7009) -------------------------------------------------

def revoke(p, req):
    params, err = _form_params(req)
    if err:
        return err
    client_id = params.get("client_id")
    err = _client_error(p, client_id)
    if err:
        return err
    token_value = params.get("token")
    if not token_value:
        return oauth_error(400, "invalid_request", "token is required")
    store = p.store
    with store.lock:
        rt = store.refresh_tokens.get(token_value)
        at = store.access_tokens.get(token_value)
        grant = store.grants.get((rt or at).grant_id) if (rt or at) else None
        kind = "refresh_token" if rt else "access_token" if at else "unknown"
        record = {"time": time.time(), "client_id": client_id,
                  "token_type_hint": params.get("token_type_hint"), "kind": kind,
                  "grant_id": grant.id if grant else None,
                  "sub": grant.user["sub"] if grant else None, "accepted": True}
        if grant and grant.client_id != client_id:
            record["accepted"] = False
            store.revocations.append(record)
            return oauth_error(400, "unauthorized_client", "token was issued to another client")
        if rt:
            # A refresh token stands for the whole grant (RFC 7009 section 2.1).
            store.revoke_grant(grant, "revoked via /revoke")
        elif at:
            at.revoked = True
        store.revocations.append(record)
    # Unknown tokens get 200 too (RFC 7009 section 2.2).
    return Response(200, b"", None, NO_STORE)


# ---- userinfo (OIDC Core 5.3) ---------------------------------------------

def userinfo(p, req):
    token_value = bearer_token(req)
    valid, reason, _, grant = p.store.check_access_token(token_value)
    if not valid:
        return invalid_token_response(token_value, reason)
    user = grant.user
    return Response.json(200, {"sub": user["sub"], "name": user["name"], "email": user["email"],
                               "email_verified": True})
