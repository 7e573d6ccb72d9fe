# SPDX-License-Identifier: LGPL-2.1-or-later
"""Self-tests for the mock OAuth/OIDC provider (tests/mock/mock-provider.py).

One provider process serves the whole module; every test starts with
POST /reset on the control port, so tests are independent but cheap.

Run from the repository root:
    /usr/bin/python3 -m unittest discover -s tests/mock -p 'test_*.py' -v
"""

import base64
import hashlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from urllib.parse import parse_qs, urlencode, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "mock-provider.py")
sys.path.insert(0, HERE)

from mockprovider import ed25519  # noqa: E402  (RFC 8032 verify, checked against RFC vectors below)

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SHA256_DIGESTINFO = bytes.fromhex("3031300d060960864801650304020105000420")
CLIENT = "keyhold-test"
REDIRECT = "http://127.0.0.1:45678/callback"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_jwt(token):
    head, payload, sig = token.split(".")
    return (json.loads(b64url_decode(head)), json.loads(b64url_decode(payload)),
            (head + "." + payload).encode("ascii"), b64url_decode(sig) if sig else b"")


def rsa_verify(jwk, signing_input, sig):
    """RSASSA-PKCS1-v1_5 / SHA-256 verification written independently of
    the mock: s^e mod n must equal the EMSA-PKCS1-v1_5 encoding."""
    n = int.from_bytes(b64url_decode(jwk["n"]), "big")
    e = int.from_bytes(b64url_decode(jwk["e"]), "big")
    k = (n.bit_length() + 7) // 8
    em = pow(int.from_bytes(sig, "big"), e, n).to_bytes(k, "big")
    t = SHA256_DIGESTINFO + hashlib.sha256(signing_input).digest()
    return em == b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        return json.loads(self.body)


def request(port, method, path, body=None, headers=None, timeout=10, conn=None):
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Resp(r.status, r.getheaders(), r.read())
    finally:
        if own:
            conn.close()


class MockProcess:
    def __init__(self, *args):
        self.tmp = tempfile.TemporaryDirectory()
        self.port_file = os.path.join(self.tmp.name, "ports.json")
        # Output goes to a file, not a pipe nobody drains, and is checked
        # for leaked tokens at the end.
        self.out_path = os.path.join(self.tmp.name, "output.txt")
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, SCRIPT, "--port-file", self.port_file]
                                         + list(args), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("mock provider did not start")
            time.sleep(0.02)
        with open(self.port_file) as fh:
            info = json.load(fh)
        self.port, self.control_port, self.issuer = info["port"], info["control_port"], info["issuer"]

    def stop(self):
        """SIGTERM; returns (exit code, everything the process printed)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(5)
            with open(self.out_path, "rb") as fh:
                output = fh.read()
        finally:
            self.tmp.cleanup()
        return rc, output


MOCK = None


def setUpModule():
    global MOCK
    MOCK = MockProcess()


def tearDownModule():
    rc, output = MOCK.stop()
    assert rc == 0, "mock exited with %r" % rc
    # Nothing secret on stdout/stderr: no token, code or device code values.
    for prefix in (b"at-", b"rt-", b"ac-", b"dc-"):
        assert prefix not in output, output


class Base(unittest.TestCase):
    def setUp(self):
        self.ctl("POST", "/reset")

    # ---- plumbing ----

    def main(self, method, path, form=None, headers=None, body=None, **kw):
        headers = dict(headers or {})
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return request(MOCK.port, method, path, body, headers, **kw)

    def ctl(self, method, path, obj=None, status=200):
        body = json.dumps(obj) if obj is not None else None
        r = request(MOCK.control_port, method, path, body,
                    {"Content-Type": "application/json"} if body else {})
        self.assertEqual(r.status, status, r.body)
        return r.json()

    def settings(self, **kw):
        return self.ctl("POST", "/settings", kw)

    def fault(self, **spec):
        return self.ctl("POST", "/faults", spec)

    def token(self, **form):
        form.setdefault("client_id", CLIENT)
        return self.main("POST", "/token", form=form)

    def assert_oauth_error(self, resp, error, status=400):
        self.assertEqual(resp.status, status, resp.body)
        self.assertEqual(resp.json()["error"], error, resp.body)
        self.assertEqual(resp.headers.get("cache-control"), "no-store")

    # ---- flows ----

    def start_device(self, scope="openid profile offline_access", client_id=CLIENT):
        r = self.main("POST", "/device_authorization", form={"client_id": client_id, "scope": scope})
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    def poll(self, da, client_id=CLIENT):
        return self.token(grant_type=DEVICE_GRANT, device_code=da["device_code"], client_id=client_id)

    def device_login(self, scope="openid profile offline_access"):
        r = self.poll(self.start_device(scope))
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    def authorize(self, verifier=None, **overrides):
        verifier = verifier or secrets.token_urlsafe(48)
        params = {"response_type": "code", "client_id": CLIENT, "redirect_uri": REDIRECT,
                  "scope": "openid profile offline_access", "state": "st-" + secrets.token_hex(4),
                  "nonce": "n-" + secrets.token_hex(4), "code_challenge_method": "S256",
                  "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest())}
        params.update(overrides)
        params = {k: v for k, v in params.items() if v is not None}
        r = self.main("GET", "/authorize?" + urlencode(params))
        return r, params, verifier

    def redirect_params(self, resp):
        self.assertEqual(resp.status, 302, resp.body)
        loc = urlsplit(resp.headers["location"])
        self.assertEqual("%s://%s%s" % (loc.scheme, loc.netloc, loc.path), REDIRECT)
        return {k: v[0] for k, v in parse_qs(loc.query).items()}

    def code_login(self):
        r, params, verifier = self.authorize()
        q = self.redirect_params(r)
        t = self.token(grant_type="authorization_code", code=q["code"], redirect_uri=REDIRECT,
                       code_verifier=verifier)
        self.assertEqual(t.status, 200, t.body)
        return t.json(), params

    def check(self, access_token):
        return self.ctl("POST", "/check-token", {"access_token": access_token})


class DiscoveryAndKeys(Base):
    def test_discovery(self):
        r = self.main("GET", "/.well-known/openid-configuration")
        self.assertEqual(r.status, 200)
        d = r.json()
        iss = MOCK.issuer
        self.assertEqual(d["issuer"], iss)
        self.assertFalse(iss.endswith("/"))
        self.assertEqual(d["token_endpoint"], iss + "/token")
        self.assertEqual(d["authorization_endpoint"], iss + "/authorize")
        self.assertEqual(d["device_authorization_endpoint"], iss + "/device_authorization")
        self.assertEqual(d["revocation_endpoint"], iss + "/revoke")
        self.assertEqual(d["userinfo_endpoint"], iss + "/userinfo")
        self.assertEqual(d["jwks_uri"], iss + "/jwks")
        self.assertEqual(d["code_challenge_methods_supported"], ["S256"])
        self.assertEqual(d["id_token_signing_alg_values_supported"], ["RS256"])
        self.assertIn(DEVICE_GRANT, d["grant_types_supported"])
        self.assertEqual(d["token_endpoint_auth_methods_supported"], ["none"])
        self.assertTrue(d["authorization_response_iss_parameter_supported"])
        self.settings(discovery_overrides={"issuer": "http://evil.example"})
        self.assertEqual(self.main("GET", "/.well-known/openid-configuration").json()["issuer"],
                         "http://evil.example")

    def _verify(self, id_token):
        header, claims, signing_input, sig = decode_jwt(id_token)
        keys = self.main("GET", "/jwks").json()["keys"]
        jwk = next(k for k in keys if k["kid"] == header["kid"])
        self.assertEqual(jwk["use"], "sig")
        self.assertEqual(jwk["alg"], header["alg"])
        if header["alg"] == "RS256":
            self.assertEqual(jwk["kty"], "RSA")
            self.assertEqual(len(b64url_decode(jwk["n"])), 256)
            self.assertEqual(jwk["e"], "AQAB")
            self.assertNotIn("=", jwk["n"])
            ok = rsa_verify(jwk, signing_input, sig)
        else:
            self.assertEqual((jwk["kty"], jwk["crv"]), ("OKP", "Ed25519"))
            ok = ed25519.verify(b64url_decode(jwk["x"]), signing_input, sig)
        return ok, header, claims

    def test_rs256_id_token(self):
        tok = self.device_login()
        ok, header, claims = self._verify(tok["id_token"])
        self.assertTrue(ok)
        self.assertEqual((header["alg"], header["typ"]), ("RS256", "JWT"))
        self.assertEqual(claims["iss"], MOCK.issuer)
        self.assertEqual(claims["aud"], CLIENT)
        self.assertEqual(claims["sub"], "user-alice-0001")
        self.assertEqual(claims["email"], "alice@example.test")
        self.assertNotIn("nonce", claims)
        self.assertLessEqual(abs(claims["iat"] - time.time()), 5)
        self.assertEqual(claims["exp"] - claims["iat"], 3600)
        self.assertIn("auth_time", claims)

    def test_eddsa_id_token(self):
        self.settings(alg="EdDSA")
        self.assertEqual(self.main("GET", "/.well-known/openid-configuration").json()
                         ["id_token_signing_alg_values_supported"], ["EdDSA"])
        keys = self.main("GET", "/jwks").json()["keys"]
        self.assertEqual(keys[0]["kty"], "OKP")  # current key first
        self.assertEqual(len({k["kid"] for k in keys}), len(keys))
        ok, header, claims = self._verify(self.device_login()["id_token"])
        self.assertTrue(ok)
        self.assertEqual(header["alg"], "EdDSA")

    def test_ed25519_rfc8032_vectors(self):
        # RFC 8032 section 7.1, TEST 1 and TEST 2.
        vectors = [
            ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
             "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
             "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
             "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
            ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
             "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
             "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
             "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        ]
        for sk, pk, msg, sig in vectors:
            sk, pk, msg, sig = map(bytes.fromhex, (sk, pk, msg, sig))
            self.assertEqual(ed25519.public_key(sk), pk)
            self.assertEqual(ed25519.sign(sk, msg), sig)
            self.assertTrue(ed25519.verify(pk, msg, sig))
            self.assertFalse(ed25519.verify(pk, msg + b"x", sig))

    def test_key_rotation(self):
        old = self.main("GET", "/jwks").json()["keys"][0]["kid"]
        new = self.ctl("POST", "/rotate-key", {"alg": "EdDSA"})["kid"]
        self.settings(alg="EdDSA")
        kids = [k["kid"] for k in self.main("GET", "/jwks").json()["keys"]]
        self.assertEqual(kids[0], new)
        self.assertIn(old, kids)


class DeviceFlow(Base):
    def test_pending_then_success(self):
        self.settings(device_interval=0, approve_after_polls=2)
        da = self.start_device()
        self.assertRegex(da["user_code"], r"^[B-Z]{4}-[B-Z]{4}$")
        self.assertEqual(da["verification_uri"], MOCK.issuer + "/device")
        self.assertEqual(da["verification_uri_complete"],
                         MOCK.issuer + "/device?user_code=" + da["user_code"])
        self.assertEqual((da["expires_in"], da["interval"]), (600, 0))
        self.assert_oauth_error(self.poll(da), "authorization_pending")
        self.assert_oauth_error(self.poll(da), "authorization_pending")
        r = self.poll(da)
        self.assertEqual(r.status, 200, r.body)
        t = r.json()
        self.assertTrue(t["access_token"].startswith("at-"))
        self.assertTrue(t["refresh_token"].startswith("rt-"))
        self.assertEqual((t["token_type"], t["expires_in"]), ("Bearer", 3600))
        self.assertEqual(t["scope"], "openid profile offline_access")
        self.assertEqual(r.headers["cache-control"], "no-store")
        self.assertTrue(self.check(t["access_token"])["valid"])
        self.assert_oauth_error(self.poll(da), "invalid_grant")  # single use

    def test_slow_down_when_polling_too_fast(self):
        self.settings(device_interval=1, approve_after_polls=5)
        da = self.start_device()
        self.assert_oauth_error(self.poll(da), "authorization_pending")
        self.assert_oauth_error(self.poll(da), "slow_down")
        codes = self.ctl("GET", "/device-codes")["device_codes"]
        self.assertEqual(codes[0]["interval"], 6)  # grew by 5 s (RFC 8628 3.5)

    def test_forced_slow_down(self):
        self.settings(device_interval=0, force_slow_down=2, slow_down_increment=0)
        da = self.start_device()
        self.assert_oauth_error(self.poll(da), "slow_down")
        self.assert_oauth_error(self.poll(da), "slow_down")
        self.assertEqual(self.poll(da).status, 200)

    def test_manual_approve_and_deny(self):
        self.settings(auto_approve=False, device_interval=0)
        a, b, c = self.start_device(), self.start_device(), self.start_device()
        self.assert_oauth_error(self.poll(a), "authorization_pending")
        self.ctl("POST", "/device/approve", {"user_code": a["user_code"].lower().replace("-", "")})
        self.assertEqual(self.poll(a).status, 200)
        self.ctl("POST", "/device/deny", {"user_code": b["user_code"]})
        self.assert_oauth_error(self.poll(b), "access_denied")
        self.ctl("POST", "/device/deny", {"user_code": b["user_code"]}, status=409)
        self.ctl("POST", "/device/approve", {"user_code": "BBBB-BBBB"}, status=404)
        # No user_code: approve everything pending (here: c).
        self.assertEqual(self.ctl("POST", "/device/approve", {})["user_codes"], [c["user_code"]])
        self.assertEqual(self.poll(c).status, 200)

    def test_html_verification_page(self):
        self.settings(auto_approve=False, device_interval=0)
        da = self.start_device()
        page = self.main("GET", "/device?user_code=" + da["user_code"])
        self.assertEqual(page.status, 200)
        self.assertIn(da["user_code"].encode(), page.body)
        r = self.main("POST", "/device", form={"user_code": da["user_code"], "action": "approve"})
        self.assertEqual(r.status, 200)
        self.assertEqual(self.poll(da).status, 200)

    def test_expired_and_client_checks(self):
        self.settings(device_interval=0)
        da = self.start_device()
        self.assert_oauth_error(self.poll(da, client_id="someone-else"), "invalid_grant")
        self.assert_oauth_error(self.token(grant_type=DEVICE_GRANT, device_code="dc-nope"), "invalid_grant")
        self.settings(clock_offset=601)
        self.assert_oauth_error(self.poll(da), "expired_token")
        self.settings(rejected_clients=["bad-client"])
        r = self.main("POST", "/device_authorization", form={"client_id": "bad-client"})
        self.assert_oauth_error(r, "invalid_client", 401)
        self.assert_oauth_error(self.main("POST", "/device_authorization", form={}), "invalid_client", 401)


class AuthorizationCode(Base):
    def test_code_flow_with_pkce(self):
        r, params, verifier = self.authorize()
        q = self.redirect_params(r)
        self.assertEqual(q["state"], params["state"])
        self.assertEqual(q["iss"], MOCK.issuer)
        self.assertTrue(q["code"])
        bad = self.token(grant_type="authorization_code", code=q["code"], redirect_uri=REDIRECT,
                         code_verifier=secrets.token_urlsafe(48))
        self.assert_oauth_error(bad, "invalid_grant")
        wrong_redirect = self.token(grant_type="authorization_code", code=q["code"],
                                    redirect_uri=REDIRECT + "x", code_verifier=verifier)
        self.assert_oauth_error(wrong_redirect, "invalid_grant")
        good = self.token(grant_type="authorization_code", code=q["code"], redirect_uri=REDIRECT,
                          code_verifier=verifier)
        self.assertEqual(good.status, 200, good.body)
        t = good.json()
        _, claims, _, _ = decode_jwt(t["id_token"])
        self.assertEqual(claims["nonce"], params["nonce"])
        self.assertEqual(claims["aud"], CLIENT)
        # Replaying the code fails and burns what it produced.
        replay = self.token(grant_type="authorization_code", code=q["code"], redirect_uri=REDIRECT,
                            code_verifier=verifier)
        self.assert_oauth_error(replay, "invalid_grant")
        self.assertFalse(self.check(t["access_token"])["valid"])

    def test_redirect_uri_and_pkce_validation(self):
        for uri in ("http://evil.example/cb", "http://localhost:4000/cb", "https://127.0.0.1:4000/cb",
                    "http://127.0.0.1/cb"):
            r, _, _ = self.authorize(redirect_uri=uri)
            self.assertEqual(r.status, 400, uri)
            self.assertNotIn("location", r.headers)
        r, _, _ = self.authorize(redirect_uri="http://[::1]:4000/cb")
        self.assertEqual(r.status, 302)
        self.assertTrue(r.headers["location"].startswith("http://[::1]:4000/cb?code="))
        r, _, _ = self.authorize(code_challenge=None)
        self.assertEqual(self.redirect_params(r)["error"], "invalid_request")
        r, _, _ = self.authorize(code_challenge_method="plain")
        self.assertEqual(self.redirect_params(r)["error"], "invalid_request")
        r, _, _ = self.authorize(response_type="token")
        self.assertEqual(self.redirect_params(r)["error"], "unsupported_response_type")

    def test_authorize_modes(self):
        self.settings(authorize_mode="access_denied")
        r, params, _ = self.authorize()
        q = self.redirect_params(r)
        self.assertEqual((q["error"], q["state"], q["iss"]), ("access_denied", params["state"], MOCK.issuer))
        self.assertNotIn("code", q)
        self.settings(authorize_mode="wrong_state")
        r, params, _ = self.authorize()
        self.assertNotEqual(self.redirect_params(r)["state"], params["state"])
        self.settings(authorize_mode="wrong_iss")
        r, _, _ = self.authorize()
        self.assertNotEqual(self.redirect_params(r)["iss"], MOCK.issuer)
        self.settings(authorize_mode="no_iss")
        r, _, _ = self.authorize()
        self.assertNotIn("iss", self.redirect_params(r))

    def test_code_expires(self):
        r, _, verifier = self.authorize()
        q = self.redirect_params(r)
        self.settings(clock_offset=61)
        t = self.token(grant_type="authorization_code", code=q["code"], redirect_uri=REDIRECT,
                       code_verifier=verifier)
        self.assert_oauth_error(t, "invalid_grant")

    def test_token_endpoint_errors(self):
        self.assert_oauth_error(self.token(grant_type="password"), "unsupported_grant_type")
        self.assert_oauth_error(self.token(), "invalid_request")
        self.assert_oauth_error(self.main("POST", "/token", form={"grant_type": "refresh_token",
                                                                  "refresh_token": "rt-x"}),
                                "invalid_client", 401)
        r = self.main("POST", "/token", body="grant_type=refresh_token&grant_type=refresh_token",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assert_oauth_error(r, "invalid_request")
        self.assertEqual(self.main("GET", "/token").status, 405)


class Refresh(Base):
    def refresh(self, rt, **form):
        return self.token(grant_type="refresh_token", refresh_token=rt, **form)

    def test_rotation_and_reuse_detection(self):
        t1 = self.device_login()
        r = self.refresh(t1["refresh_token"])
        self.assertEqual(r.status, 200, r.body)
        t2 = r.json()
        self.assertNotEqual(t2["refresh_token"], t1["refresh_token"])
        self.assertIn("id_token", t2)
        _, claims, _, _ = decode_jwt(t2["id_token"])
        self.assertNotIn("nonce", claims)
        self.assertEqual(self.ctl("POST", "/check-token", {"refresh_token": t1["refresh_token"]})["state"],
                         "rotated")
        self.assertTrue(self.check(t2["access_token"])["valid"])
        # Reuse of the rotated token: invalid_grant and the whole grant dies.
        self.assert_oauth_error(self.refresh(t1["refresh_token"]), "invalid_grant")
        self.assertEqual(self.check(t2["access_token"])["reason"], "grant revoked")
        self.assertEqual(self.check(t1["access_token"])["reason"], "grant revoked")
        self.assert_oauth_error(self.refresh(t2["refresh_token"]), "invalid_grant")
        g = self.ctl("GET", "/grants")["grants"][0]
        self.assertTrue(g["revoked"])
        self.assertEqual(g["refreshes"], 1)

    def test_grace_window(self):
        self.settings(rotation_grace=30)
        t1 = self.device_login()
        t2 = self.refresh(t1["refresh_token"]).json()
        again = self.refresh(t1["refresh_token"])
        self.assertEqual(again.status, 200, again.body)
        self.assertNotEqual(again.json()["refresh_token"], t2["refresh_token"])
        self.assertTrue(self.check(t2["access_token"])["valid"])
        self.settings(clock_offset=31)
        self.assert_oauth_error(self.refresh(t1["refresh_token"]), "invalid_grant")
        self.assertFalse(self.check(t2["access_token"])["valid"])

    def test_no_rotation(self):
        self.settings(rotate_refresh=False, id_token_on_refresh=False)
        t1 = self.device_login()
        t2 = self.refresh(t1["refresh_token"]).json()
        self.assertEqual(t2["refresh_token"], t1["refresh_token"])
        self.assertNotIn("id_token", t2)
        self.settings(omit_unrotated_refresh=True)
        self.assertNotIn("refresh_token", self.refresh(t1["refresh_token"]).json())

    def test_scope_resource_and_client(self):
        t1 = self.device_login("openid profile api")
        r = self.refresh(t1["refresh_token"], scope="api", resource="https://api.example/")
        self.assertEqual(r.status, 200, r.body)
        t2 = r.json()
        self.assertEqual(t2["scope"], "api")
        self.assertNotIn("id_token", t2)  # no openid in the narrowed scope
        info = self.check(t2["access_token"])
        self.assertEqual((info["aud"], info["scope"]), ("https://api.example/", "api"))
        self.assert_oauth_error(self.refresh(t2["refresh_token"], scope="openid admin"), "invalid_scope")
        self.assert_oauth_error(self.refresh(t2["refresh_token"], client_id="other"), "invalid_grant")
        self.assert_oauth_error(self.refresh(t2["refresh_token"], resource="not-absolute"), "invalid_target")
        self.assert_oauth_error(self.refresh("rt-unknown"), "invalid_grant")

    def test_access_token_expiry_by_clock(self):
        t = self.device_login()
        self.assertTrue(self.check(t["access_token"])["valid"])
        self.settings(clock_offset=3601)
        self.assertEqual(self.check(t["access_token"])["reason"], "token expired")
        self.assertEqual(self.refresh(t["refresh_token"]).status, 200)

    def test_refresh_token_lifetime(self):
        self.settings(refresh_token_lifetime=100)
        t = self.device_login()
        self.settings(clock_offset=101)
        self.assert_oauth_error(self.refresh(t["refresh_token"]), "invalid_grant")


class Tokens(Base):
    def test_revoke_refresh_token_revokes_grant(self):
        t = self.device_login()
        r = self.main("POST", "/revoke", form={"token": t["refresh_token"], "client_id": CLIENT,
                                               "token_type_hint": "refresh_token"})
        self.assertEqual(r.status, 200)
        self.assertFalse(self.check(t["access_token"])["valid"])
        rec = self.ctl("GET", "/revocations")["revocations"]
        self.assertEqual((rec[0]["kind"], rec[0]["token_type_hint"]), ("refresh_token", "refresh_token"))

    def test_revoke_access_token_and_unknown(self):
        t = self.device_login()
        self.assertEqual(self.main("POST", "/revoke", form={"token": t["access_token"],
                                                            "client_id": CLIENT}).status, 200)
        self.assertEqual(self.check(t["access_token"])["reason"], "token revoked")
        self.assertEqual(self.token(grant_type="refresh_token", refresh_token=t["refresh_token"]).status, 200)
        self.assertEqual(self.main("POST", "/revoke", form={"token": "at-unknown",
                                                            "client_id": CLIENT}).status, 200)
        self.assertEqual(self.ctl("GET", "/revocations")["revocations"][-1]["kind"], "unknown")

    def test_userinfo(self):
        t = self.device_login()
        r = self.main("GET", "/userinfo", headers={"Authorization": "Bearer " + t["access_token"]})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["sub"], "user-alice-0001")
        r = self.main("GET", "/userinfo", headers={"Authorization": "Bearer at-bogus"})
        self.assertEqual(r.status, 401)
        self.assertIn('error="invalid_token"', r.headers["www-authenticate"])
        r = self.main("GET", "/userinfo")
        self.assertEqual(r.status, 401)
        self.assertTrue(r.headers["www-authenticate"].startswith("Bearer"))

    def test_change_user_and_revoke_grants(self):
        a = self.device_login()
        self.settings(user={"sub": "user-bob-0002", "name": "Bob"})
        b = self.device_login()
        _, claims, _, _ = decode_jwt(b["id_token"])
        self.assertEqual((claims["sub"], claims["name"], claims["email"]),
                         ("user-bob-0002", "Bob", "alice@example.test"))
        self.assertEqual(self.ctl("POST", "/revoke-grants", {"sub": "user-bob-0002"})["revoked"], 1)
        self.assertTrue(self.check(a["access_token"])["valid"])
        self.assertFalse(self.check(b["access_token"])["valid"])

    def test_bad_id_tokens(self):
        def claims_for(kind):
            self.settings(bad_id_token=kind)
            r, params, verifier = self.authorize()
            q = self.redirect_params(r)
            t = self.token(grant_type="authorization_code", code=q["code"], redirect_uri=REDIRECT,
                           code_verifier=verifier).json()
            header, claims, signing_input, sig = decode_jwt(t["id_token"])
            return header, claims, signing_input, sig, params

        jwk = self.main("GET", "/jwks").json()["keys"][0]
        now = time.time()
        self.assertNotEqual(claims_for("wrong_iss")[1]["iss"], MOCK.issuer)
        self.assertNotEqual(claims_for("wrong_aud")[1]["aud"], CLIENT)
        self.assertLess(claims_for("expired")[1]["exp"], now)
        self.assertGreater(claims_for("iat_future")[1]["iat"], now + 600)
        self.assertNotEqual(claims_for("wrong_sub")[1]["sub"], "user-alice-0001")
        header, claims, _, _, params = claims_for("wrong_nonce")
        self.assertNotEqual(claims["nonce"], params["nonce"])
        header, claims, signing_input, sig, _ = claims_for("bad_signature")
        self.assertEqual(claims["iss"], MOCK.issuer)
        self.assertFalse(rsa_verify(jwk, signing_input, sig))
        self.assertEqual(claims_for("alg_none")[0]["alg"], "none")
        self.assertNotEqual(claims_for("unknown_kid")[0]["kid"], jwk["kid"])
        # One-shot: the next token is good again.
        header, claims, signing_input, sig, params = claims_for(None)
        self.assertTrue(rsa_verify(jwk, signing_input, sig))
        self.assertEqual(claims["nonce"], params["nonce"])

    def test_settings_validation(self):
        self.ctl("POST", "/settings", {"no_such_setting": 1}, status=400)
        self.ctl("POST", "/settings", {"token_lifetime": "long"}, status=400)
        self.ctl("POST", "/faults", {"target": "token", "kind": "explode"}, status=400)
        self.assertEqual(self.ctl("GET", "/settings")["token_lifetime"], 3600)


class Api(Base):
    def call(self, token, method="POST", path="/api/v1/items", body=b'{"x":1}', key=None, **kw):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        if key:
            headers["Idempotency-Key"] = key
        return self.main(method, path, body=body, headers=headers, **kw)

    def test_bearer_check(self):
        r = self.call(None)
        self.assertEqual(r.status, 401)
        self.assertIn("www-authenticate", r.headers)
        r = self.call("at-forged")
        self.assertEqual(r.status, 401)
        self.assertIn('error="invalid_token"', r.headers["www-authenticate"])
        t = self.device_login()
        self.ctl("POST", "/revoke-grants", {})
        self.assertEqual(self.call(t["access_token"]).status, 401)
        reqs = self.ctl("GET", "/api-requests")["requests"]
        self.assertEqual([x["outcome"] for x in reqs],
                         ["invalid_token: no token", "invalid_token: unknown token",
                          "invalid_token: grant revoked"])
        self.assertEqual(self.ctl("GET", "/api-deliveries")["deliveries"], [])

    def test_success_idempotency_and_logging(self):
        t = self.device_login()
        r = self.call(t["access_token"], key="k-1")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"ok": True, "method": "POST", "path": "/api/v1/items",
                                    "sub": "user-alice-0001", "idempotency_key": "k-1",
                                    "duplicate": False})
        r = self.call(t["access_token"], key="k-1")
        self.assertTrue(r.json()["duplicate"])
        self.call(t["access_token"], key="k-2", method="PUT", path="/api/v1/other?q=1", body=b"\xff\xfe")
        self.call(t["access_token"], method="DELETE", path="/api/v1/items/3", body=None)
        d = self.ctl("GET", "/api-deliveries")["deliveries"]
        self.assertEqual([(x["idempotency_key"], x["count"]) for x in d], [("k-1", 2), ("k-2", 1), (None, 1)])
        self.assertEqual(d[0]["body"], '{"x":1}')
        self.assertEqual(d[1]["body_encoding"], "base64")
        reqs = self.ctl("GET", "/api-requests")["requests"]
        self.assertEqual(len(reqs), 4)
        self.assertEqual(reqs[0]["headers"]["authorization"], "Bearer " + t["access_token"])
        self.assertEqual(reqs[0]["headers"]["idempotency-key"], "k-1")
        self.assertEqual([x["duplicate"] for x in reqs], [False, True, False, False])
        self.assertEqual(reqs[2]["query"], {"q": "1"})
        self.assertEqual(base64.b64decode(reqs[2]["body"]), b"\xff\xfe")
        self.assertEqual(reqs[0]["sub"], "user-alice-0001")
        log = self.ctl("GET", "/log?target=api")["entries"]
        self.assertEqual([e["method"] for e in log], ["POST", "POST", "PUT", "DELETE"])
        self.assertEqual(self.ctl("GET", "/log?since=%d" % log[-1]["seq"])["entries"], [])
        self.assertEqual(self.ctl("GET", "/stats")["counts"]["api"], 4)

    def test_status_script(self):
        t = self.device_login()
        self.ctl("POST", "/api-script", {"statuses": [{"status": 503, "retry_after": 2},
                                                      {"status": 429, "retry_after": 1}, 200]})
        r1 = self.call(t["access_token"], key="k")
        r2 = self.call(t["access_token"], key="k")
        r3 = self.call(t["access_token"], key="k")
        r4 = self.call(t["access_token"], key="k")
        self.assertEqual([r1.status, r2.status, r3.status, r4.status], [503, 429, 200, 200])
        self.assertEqual((r1.headers["retry-after"], r2.headers["retry-after"]), ("2", "1"))
        self.assertEqual((r3.json()["duplicate"], r4.json()["duplicate"]), (False, True))
        d = self.ctl("GET", "/api-deliveries")["deliveries"]
        self.assertEqual([(x["idempotency_key"], x["count"]) for x in d], [("k", 2)])
        self.settings(api_success_status=201)
        self.assertEqual(self.call(t["access_token"]).status, 201)


class Faults(Base):
    def discovery(self, **kw):
        return self.main("GET", "/.well-known/openid-configuration", **kw)

    def test_status_fault_with_count(self):
        self.fault(target="discovery", kind="status", status=503, retry_after=7, count=2)
        r = self.discovery()
        self.assertEqual((r.status, r.headers["retry-after"]), (503, "7"))
        self.assertEqual(self.discovery().status, 503)
        self.assertEqual(self.discovery().status, 200)
        log = self.ctl("GET", "/log?target=discovery")["entries"]
        self.assertEqual([e["fault_applied"] for e in log], ["status", "status", None])

    def test_oauth_error_and_invalid_grant(self):
        t = self.device_login()
        self.fault(target="token", kind="status", status=503, oauth_error="temporarily_unavailable")
        r = self.token(grant_type="refresh_token", refresh_token=t["refresh_token"])
        self.assert_oauth_error(r, "temporarily_unavailable", 503)
        self.fault(target="token", kind="invalid_grant")
        self.assert_oauth_error(self.token(grant_type="refresh_token", refresh_token=t["refresh_token"]),
                                "invalid_grant")
        # Neither was processed: the original refresh token is still current.
        self.assertEqual(self.ctl("POST", "/check-token", {"refresh_token": t["refresh_token"]})["state"],
                         "active")

    def test_delay(self):
        self.fault(target="jwks", kind="delay", seconds=0.6)
        result = {}
        start = time.time()
        slow = threading.Thread(target=lambda: result.update(r=self.main("GET", "/jwks")))
        slow.start()
        time.sleep(0.1)
        # A slow answer must not hold up other requests.
        self.assertEqual(self.discovery().status, 200)
        self.assertLess(time.time() - start, 0.5)
        slow.join()
        self.assertEqual(result["r"].status, 200)
        self.assertGreaterEqual(time.time() - start, 0.55)

    def test_slowloris(self):
        self.fault(target="discovery", kind="slowloris", seconds=0.6, interval=0.2)
        start = time.time()
        r = self.discovery()
        self.assertGreaterEqual(time.time() - start, 0.55)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body.strip(), b"{}")
        # A client with a short timeout gives up.
        self.fault(target="discovery", kind="slowloris", seconds=5, interval=1)
        with self.assertRaises(socket.timeout):
            self.discovery(timeout=0.5)
        # process=true dribbles the real answer.
        self.fault(target="discovery", kind="slowloris", seconds=0.3, interval=0.1, process=True)
        self.assertEqual(self.discovery().json()["issuer"], MOCK.issuer)

    def test_drop_before_response_processes(self):
        t = self.device_login()
        self.fault(target="token", kind="drop_before_response")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.token(grant_type="refresh_token", refresh_token=t["refresh_token"])
        # The refresh happened server-side: the old token is now rotated.
        self.assertEqual(self.ctl("POST", "/check-token", {"refresh_token": t["refresh_token"]})["state"],
                         "rotated")
        entry = self.ctl("GET", "/log?target=token")["entries"][-1]
        self.assertEqual((entry["status"], entry["fault_applied"]), (None, "drop_before_response"))
        self.assertIn("rt-", entry["response"])  # the lost answer, for the test to inspect

    def test_drop_before_response_on_api_then_retry(self):
        t = self.device_login()
        self.fault(target="api", kind="drop_before_response")
        headers = {"Authorization": "Bearer " + t["access_token"], "Idempotency-Key": "once"}
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.main("POST", "/api/send", body=b"hello", headers=headers)
        r = self.main("POST", "/api/send", body=b"hello", headers=headers)
        self.assertTrue(r.json()["duplicate"])
        d = self.ctl("GET", "/api-deliveries")["deliveries"]
        self.assertEqual([(x["idempotency_key"], x["count"]) for x in d], [("once", 2)])

    def test_drop_immediately_does_not_process(self):
        t = self.device_login()
        self.fault(target="token", kind="drop_immediately")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.token(grant_type="refresh_token", refresh_token=t["refresh_token"])
        self.assertEqual(self.ctl("POST", "/check-token", {"refresh_token": t["refresh_token"]})["state"],
                         "active")
        self.assertEqual(self.ctl("GET", "/log?target=token")["entries"][-1]["fault_applied"],
                         "drop_immediately")

    def test_oversized(self):
        size = 5 * 1024 * 1024
        self.fault(target="jwks", kind="oversized", bytes=size)
        r = self.main("GET", "/jwks")
        self.assertEqual((r.status, len(r.body)), (200, size))
        self.assertTrue(r.body.startswith(b'{"pad": "'))
        self.assertEqual(self.main("GET", "/jwks").status, 200)
        # A client that gives up early must not hurt the server.
        self.fault(target="jwks", kind="oversized", bytes=50 * 1024 * 1024)
        conn = http.client.HTTPConnection("127.0.0.1", MOCK.port, timeout=5)
        conn.request("GET", "/jwks")
        resp = conn.getresponse()
        self.assertEqual(resp.getheader("Content-Length"), str(50 * 1024 * 1024))
        resp.read(1000)
        conn.close()
        self.assertEqual(self.main("GET", "/jwks").status, 200)

    def test_garbage(self):
        self.fault(target="token", kind="garbage")
        self.fault(target="token", kind="garbage", style="html")
        for _ in range(2):
            r = self.token(grant_type="refresh_token", refresh_token="rt-x")
            self.assertEqual(r.status, 200)
            with self.assertRaises(ValueError):
                json.loads(r.body)

    def test_until_cleared_all_target_filter_and_skip(self):
        self.fault(target="all", kind="status", status=500, count=-1)
        self.assertEqual(self.main("GET", "/jwks").status, 500)
        self.assertEqual(self.discovery().status, 500)
        self.assertEqual(len(self.ctl("GET", "/faults")["faults"]), 1)
        self.ctl("DELETE", "/faults")
        self.assertEqual(self.main("GET", "/jwks").status, 200)
        # grant_type filter: only refreshes fail; skip lets the first one pass.
        self.fault(target="token", kind="status", status=502, grant_type="refresh_token", skip=1)
        t = self.device_login()
        self.assertEqual(self.token(grant_type="refresh_token", refresh_token=t["refresh_token"]).status, 200)
        self.assertEqual(self.token(grant_type="refresh_token", refresh_token="rt-x").status, 502)
        self.ctl("POST", "/faults/clear")
        self.assertEqual(self.ctl("GET", "/faults")["faults"], [])

    def test_fault_on_api_is_recorded(self):
        t = self.device_login()
        self.fault(target="api", kind="status", status=503)
        r = self.main("GET", "/api/x", headers={"Authorization": "Bearer " + t["access_token"]})
        self.assertEqual(r.status, 503)
        self.assertEqual(self.ctl("GET", "/api-requests")["requests"][0]["outcome"], "fault:status")


class Connections(Base):
    def test_keep_alive_and_connection_close(self):
        conn = http.client.HTTPConnection("127.0.0.1", MOCK.port, timeout=5)
        try:
            a = request(MOCK.port, "GET", "/jwks", conn=conn)
            b = request(MOCK.port, "GET", "/jwks", conn=conn)
            self.assertEqual((a.status, b.status), (200, 200))
            self.assertEqual(int(a.headers["content-length"]), len(a.body))
        finally:
            conn.close()
        log = self.ctl("GET", "/log?target=jwks")["entries"]
        self.assertEqual(log[0]["client_port"], log[1]["client_port"])  # same connection
        r = self.main("GET", "/jwks", headers={"Connection": "close"})
        self.assertEqual(r.headers.get("connection"), "close")

    def test_offline_online(self):
        conn = http.client.HTTPConnection("127.0.0.1", MOCK.port, timeout=5)
        self.assertEqual(request(MOCK.port, "GET", "/jwks", conn=conn).status, 200)
        self.ctl("POST", "/offline")
        with self.assertRaises(ConnectionRefusedError):
            self.main("GET", "/jwks")
        # The established keep-alive connection was cut as well.
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError, BrokenPipeError)):
            request(MOCK.port, "GET", "/jwks", conn=conn)
        conn.close()
        self.assertFalse(self.ctl("GET", "/health")["online"])
        self.ctl("POST", "/online")
        self.assertEqual(self.main("GET", "/jwks").status, 200)
        # reset also brings the port back
        self.ctl("POST", "/offline")
        self.ctl("POST", "/reset")
        self.assertEqual(self.main("GET", "/jwks").status, 200)

    def test_reset(self):
        t = self.device_login()
        self.settings(token_lifetime=5, device_interval=1)
        self.fault(target="jwks", kind="status", status=500)
        self.ctl("POST", "/api-script", {"statuses": [503]})
        self.ctl("POST", "/reset")
        self.assertEqual(self.ctl("GET", "/grants")["grants"], [])
        self.assertEqual(self.ctl("GET", "/log")["entries"], [])
        self.assertEqual(self.ctl("GET", "/faults")["faults"], [])
        self.assertEqual(self.ctl("GET", "/api-script")["statuses"], [])
        self.assertEqual(self.ctl("GET", "/settings")["token_lifetime"], 3600)
        self.assertEqual(self.ctl("GET", "/stats")["counts"], {})
        self.assertFalse(self.check(t["access_token"])["valid"])
        self.assertEqual(self.main("GET", "/jwks").status, 200)

    def test_sigterm_and_port_file(self):
        other = MockProcess("--alg", "EdDSA")
        try:
            with open(other.port_file) as fh:
                info = json.load(fh)
            self.assertEqual(info["issuer"], "http://127.0.0.1:%d" % info["port"])
            self.assertEqual(self.ctl_other(other), {"ok": True, "online": True})
        finally:
            rc, output = other.stop()
        self.assertEqual(rc, 0)
        self.assertIn(b"mock-provider: issuer", output)

    def ctl_other(self, other):
        return request(other.control_port, "GET", "/health").json()


if __name__ == "__main__":
    unittest.main()
