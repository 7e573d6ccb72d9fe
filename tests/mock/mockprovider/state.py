# SPDX-License-Identifier: LGPL-2.1-or-later
"""All mutable provider state: settings, grants, tokens, codes and logs.

One re-entrant lock guards everything.  The mock handles a handful of
requests per second, so a single coarse lock is simpler to reason about
than fine-grained locking and cannot deadlock.  Slow things (fault delays,
streaming bodies, key generation) happen outside it.
"""

import base64
import secrets
import threading
import time
from dataclasses import dataclass, field

DEFAULT_USER = {"sub": "user-alice-0001", "name": "Alice Example", "email": "alice@example.test"}

BAD_ID_TOKEN_KINDS = ("wrong_iss", "wrong_aud", "expired", "bad_signature", "wrong_nonce",
                      "iat_future", "wrong_sub", "alg_none", "unknown_kid")
AUTHORIZE_MODES = ("approve", "access_denied", "wrong_state", "wrong_iss", "no_iss")

# RFC 8628 section 6.1 recommends a base-20 alphabet without vowels for user
# codes (no accidental words, no 0/O or 1/I confusion).
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"

MAX_LOG_ENTRIES = 20000
MAX_LOGGED_RESPONSE = 64 * 1024


def default_settings(alg):
    return {
        "token_lifetime": 3600,          # access token lifetime, seconds
        "id_token_lifetime": 3600,
        "refresh_token_lifetime": 0,     # 0 = refresh tokens never expire
        "code_lifetime": 60,             # authorization codes
        "rotate_refresh": True,
        "rotation_grace": 0,             # seconds a rotated refresh token is still honoured
        "omit_unrotated_refresh": False, # without rotation, leave refresh_token out of the response
        "auto_approve": True,
        "approve_after_polls": 0,
        "device_interval": 5,
        "device_expires_in": 600,
        "slow_down_increment": 5,        # RFC 8628 section 3.5 says 5 seconds
        "force_slow_down": 0,            # answer slow_down to the next N device polls
        "id_token_on_refresh": True,
        "alg": alg,
        "clock_offset": 0,               # seconds added to the server clock
        "user": dict(DEFAULT_USER),
        "bad_id_token": None,            # one-shot: applies to the next ID token only
        "authorize_mode": "approve",
        "rejected_clients": [],
        "default_scope": "openid profile email offline_access",
        "api_success_status": 200,
        "discovery_overrides": {},
    }


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_nonneg_int(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


_VALIDATORS = {
    "token_lifetime": _is_nonneg_int,
    "id_token_lifetime": _is_nonneg_int,
    "refresh_token_lifetime": _is_nonneg_int,
    "code_lifetime": _is_nonneg_int,
    "rotate_refresh": lambda v: isinstance(v, bool),
    "rotation_grace": lambda v: _is_number(v) and v >= 0,
    "omit_unrotated_refresh": lambda v: isinstance(v, bool),
    "auto_approve": lambda v: isinstance(v, bool),
    "approve_after_polls": _is_nonneg_int,
    "device_interval": _is_nonneg_int,
    "device_expires_in": _is_nonneg_int,
    "slow_down_increment": _is_nonneg_int,
    "force_slow_down": _is_nonneg_int,
    "id_token_on_refresh": lambda v: isinstance(v, bool),
    "alg": lambda v: v in ("RS256", "EdDSA"),
    "clock_offset": _is_number,
    "user": lambda v: isinstance(v, dict) and all(
        k in ("sub", "name", "email") and isinstance(x, str) for k, x in v.items()),
    "bad_id_token": lambda v: v is None or v in BAD_ID_TOKEN_KINDS,
    "authorize_mode": lambda v: v in AUTHORIZE_MODES,
    "rejected_clients": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "default_scope": lambda v: isinstance(v, str),
    "api_success_status": lambda v: _is_nonneg_int(v) and 200 <= v <= 599,
    "discovery_overrides": lambda v: isinstance(v, dict),
}


def body_as_text(data):
    """Bodies are logged as text when they are UTF-8, else as base64."""
    if data is None:
        return None, None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def flatten_params(params):
    """parse_qs gives lists; tests want plain values unless repeated."""
    return {k: (v[0] if len(v) == 1 else v) for k, v in params.items()}


@dataclass
class Grant:
    id: str
    client_id: str
    user: dict
    scope: list
    flow: str
    auth_time: float
    created: float
    revoked: bool = False
    revoked_reason: str = None
    refreshes: int = 0
    resources: list = field(default_factory=list)


@dataclass
class AccessToken:
    token: str
    grant_id: str
    scope: list
    aud: object
    iat: float
    exp: float
    revoked: bool = False


@dataclass
class RefreshToken:
    token: str
    grant_id: str
    scope: list
    iat: float
    exp: float = None
    state: str = "active"  # active | rotated | revoked
    rotated_at: float = None


@dataclass
class DeviceCode:
    device_code: str
    user_code: str
    client_id: str
    scope: list
    expires_at: float
    interval: int
    status: str = "pending"  # pending | approved | denied | consumed
    polls: int = 0
    last_poll: float = None  # monotonic; slow_down is about real elapsed time
    user: dict = None
    approved_at: float = None


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: list
    nonce: str
    challenge: str
    user: dict
    auth_time: float
    expires_at: float
    used: bool = False
    grant_id: str = None


class Store:
    def __init__(self, default_alg):
        self.lock = threading.RLock()
        self.default_alg = default_alg
        self.reset()

    def reset(self):
        with self.lock:
            self.settings = default_settings(self.default_alg)
            self.grants = {}
            self.access_tokens = {}
            self.refresh_tokens = {}
            self.device_codes = {}
            self.auth_codes = {}
            self.log = []
            self.seq = 0
            self.stats = {}
            self.revocations = []
            self.api_requests = []
            self.api_script = []
            self.idempotency = {}
            self.deliveries = []

    # ---- clock -----------------------------------------------------------

    def now(self):
        """Server clock as seen by the protocol (tokens, codes, ID tokens).
        clock_offset lets a test jump forward to expire things."""
        return time.time() + self.settings["clock_offset"]

    # ---- settings --------------------------------------------------------

    def update_settings(self, changes):
        """Validate everything first so a bad request changes nothing."""
        if not isinstance(changes, dict):
            raise ValueError("settings must be a JSON object")
        for key, value in changes.items():
            check = _VALIDATORS.get(key)
            if check is None:
                raise ValueError("unknown setting %r" % key)
            if not check(value):
                raise ValueError("invalid value for %r" % key)
        with self.lock:
            for key, value in changes.items():
                if key == "user":
                    self.settings["user"] = dict(self.settings["user"], **value)
                else:
                    self.settings[key] = value

    def take_bad_id_token(self):
        with self.lock:
            kind = self.settings["bad_id_token"]
            self.settings["bad_id_token"] = None
            return kind

    # ---- grants and tokens ----------------------------------------------

    def new_grant(self, client_id, user, scope, flow, auth_time):
        grant = Grant(id="g-" + secrets.token_hex(6), client_id=client_id, user=dict(user),
                      scope=list(scope), flow=flow, auth_time=auth_time, created=self.now())
        self.grants[grant.id] = grant
        return grant

    def issue_access_token(self, grant, scope, aud):
        now = self.now()
        at = AccessToken(token="at-" + secrets.token_urlsafe(32), grant_id=grant.id,
                         scope=list(scope), aud=aud, iat=now,
                         exp=now + self.settings["token_lifetime"])
        self.access_tokens[at.token] = at
        return at

    def issue_refresh_token(self, grant):
        now = self.now()
        lifetime = self.settings["refresh_token_lifetime"]
        rt = RefreshToken(token="rt-" + secrets.token_urlsafe(32), grant_id=grant.id,
                          scope=list(grant.scope), iat=now,
                          exp=(now + lifetime) if lifetime else None)
        self.refresh_tokens[rt.token] = rt
        return rt

    def revoke_grant(self, grant, reason):
        """Revoking a grant kills every token ever issued under it."""
        grant.revoked = True
        grant.revoked_reason = grant.revoked_reason or reason
        for at in self.access_tokens.values():
            if at.grant_id == grant.id:
                at.revoked = True
        for rt in self.refresh_tokens.values():
            if rt.grant_id == grant.id:
                rt.state = "revoked"

    def check_access_token(self, token):
        """Returns (valid, reason, AccessToken or None, Grant or None)."""
        with self.lock:
            at = self.access_tokens.get(token) if token else None
            if at is None:
                return False, "unknown token" if token else "no token", None, None
            grant = self.grants[at.grant_id]
            if grant.revoked:
                return False, "grant revoked", at, grant
            if at.revoked:
                return False, "token revoked", at, grant
            if self.now() >= at.exp:
                return False, "token expired", at, grant
            return True, "ok", at, grant

    def describe_refresh_token(self, token):
        with self.lock:
            rt = self.refresh_tokens.get(token)
            if rt is None:
                return {"valid": False, "state": "unknown"}
            grant = self.grants[rt.grant_id]
            expired = rt.exp is not None and self.now() >= rt.exp
            return {"valid": rt.state == "active" and not grant.revoked and not expired,
                    "state": rt.state, "expired": expired, "grant_revoked": grant.revoked,
                    "sub": grant.user["sub"], "client_id": grant.client_id,
                    "scope": " ".join(rt.scope), "exp": rt.exp}

    def grant_views(self, include_tokens=False):
        with self.lock:
            views = []
            for g in self.grants.values():
                ats = [a for a in self.access_tokens.values() if a.grant_id == g.id]
                rts = [r for r in self.refresh_tokens.values() if r.grant_id == g.id]
                active_rts = [r for r in rts if r.state == "active"]
                view = {"id": g.id, "sub": g.user["sub"], "client_id": g.client_id,
                        "scope": " ".join(g.scope), "flow": g.flow, "revoked": g.revoked,
                        "revoked_reason": g.revoked_reason, "refreshes": g.refreshes,
                        "resources": g.resources, "access_tokens": len(ats),
                        "refresh_tokens": len(rts),
                        "has_active_refresh_token": bool(active_rts)}
                if include_tokens:
                    view["access_token_values"] = [a.token for a in ats]
                    view["active_refresh_token_values"] = [r.token for r in active_rts]
                views.append(view)
            return views

    def new_user_code(self):
        while True:
            raw = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
            code = raw[:4] + "-" + raw[4:]
            if not any(d.user_code == code for d in self.device_codes.values()):
                return code

    def find_device_by_user_code(self, user_code):
        """Users type codes sloppily; compare ignoring case and punctuation."""
        want = "".join(c for c in user_code.upper() if c.isalnum())
        for dc in self.device_codes.values():
            if dc.user_code.replace("-", "") == want:
                return dc
        return None

    # ---- request log -----------------------------------------------------

    def log_start(self, method, path, query, headers, target, client_port):
        with self.lock:
            self.seq += 1
            entry = {"seq": self.seq, "time": time.time(), "method": method, "path": path,
                     "query": flatten_params(query), "headers": headers, "form": None,
                     "body": None, "body_encoding": None, "status": None, "target": target,
                     "fault_applied": None, "response": None, "client_port": client_port,
                     "complete": False}
            self.log.append(entry)
            if len(self.log) > MAX_LOG_ENTRIES:
                del self.log[: len(self.log) - MAX_LOG_ENTRIES]
            self.stats[target] = self.stats.get(target, 0) + 1
            return entry

    def log_body(self, entry, body, form):
        with self.lock:
            entry["body"], entry["body_encoding"] = body_as_text(body)
            entry["form"] = flatten_params(form) if form is not None else None

    def log_finish(self, entry, status, fault=None, response=None):
        with self.lock:
            entry["status"] = status
            entry["fault_applied"] = fault
            if response is not None and len(response) <= MAX_LOGGED_RESPONSE:
                entry["response"] = body_as_text(response)[0]
            entry["complete"] = True
