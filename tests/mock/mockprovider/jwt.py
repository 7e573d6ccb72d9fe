# SPDX-License-Identifier: LGPL-2.1-or-later
"""JOSE helpers: base64url, signing keys as JWKs, a key store, compact JWS.

Keys are generated lazily per algorithm and cached, because a 2048-bit RSA
key costs a noticeable fraction of a second in pure Python while Ed25519 is
nearly free.  Every key ever generated stays in the JWKS (current key first)
so tokens signed before an algorithm switch or key rotation still verify;
a test can drop old keys with rotate(keep_old=False).
"""

import base64
import hashlib
import json
import os
import threading

from . import crypto_rsa, ed25519


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    if isinstance(text, str):
        text = text.encode("ascii")
    return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))


def _int_b64url(value):
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _thumbprint(required_members):
    """RFC 7638 JWK thumbprint: SHA-256 over the required members, sorted,
    without whitespace.  Gives each key a stable, distinct kid."""
    canonical = json.dumps(required_members, sort_keys=True, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


class RsaSigningKey:
    alg = "RS256"

    def __init__(self):
        self._key = crypto_rsa.generate(2048)
        self._public = {"kty": "RSA", "n": _int_b64url(self._key.n), "e": _int_b64url(self._key.e)}
        self.kid = "rsa-" + _thumbprint(self._public)[:16]

    def jwk(self):
        return dict(self._public, kid=self.kid, alg=self.alg, use="sig")

    def sign(self, data):
        return crypto_rsa.sign_rs256(self._key, data)


class Ed25519SigningKey:
    alg = "EdDSA"

    def __init__(self):
        self._seed = os.urandom(32)
        self._pub = ed25519.public_key(self._seed)
        self._public = {"kty": "OKP", "crv": "Ed25519", "x": b64url(self._pub)}
        self.kid = "ed-" + _thumbprint(self._public)[:16]

    def jwk(self):
        return dict(self._public, kid=self.kid, alg=self.alg, use="sig")

    def sign(self, data):
        return ed25519.sign(self._seed, data, self._pub)


_KEY_CLASSES = {"RS256": RsaSigningKey, "EdDSA": Ed25519SigningKey}
ALGORITHMS = tuple(_KEY_CLASSES)


class KeyStore:
    def __init__(self):
        self._lock = threading.Lock()
        self._keys = []  # oldest first

    def current(self, alg):
        """Newest key for `alg`, generating one on first use."""
        with self._lock:
            for key in reversed(self._keys):
                if key.alg == alg:
                    return key
            key = _KEY_CLASSES[alg]()
            self._keys.append(key)
            return key

    def rotate(self, alg, keep_old=True):
        key = _KEY_CLASSES[alg]()
        with self._lock:
            if not keep_old:
                self._keys = [k for k in self._keys if k.alg != alg]
            self._keys.append(key)
        return key

    def jwks(self, current_alg):
        current = self.current(current_alg)
        with self._lock:
            others = [k for k in reversed(self._keys) if k is not current]
        return {"keys": [current.jwk()] + [k.jwk() for k in others]}


def _json_segment(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def encode(header, claims, key):
    """Compact JWS serialization (RFC 7515 section 7.1)."""
    signing_input = _json_segment(header) + "." + _json_segment(claims)
    return signing_input + "." + b64url(key.sign(signing_input.encode("ascii")))


def encode_unsigned(header, claims):
    """An `alg: none` token, used only to test that clients reject it."""
    return _json_segment(header) + "." + _json_segment(claims) + "."
