# SPDX-License-Identifier: LGPL-2.1-or-later
"""Ed25519 (RFC 8032 section 5.1) in pure Python.

Points use extended homogeneous coordinates (X, Y, Z, T) with x=X/Z,
y=Y/Z, x*y=T/Z, which avoids a modular inversion per addition and keeps
one signature in the low milliseconds.  Not constant time: this is a test
fixture, not a production signer.
"""

import hashlib

P = 2 ** 255 - 19
L = 2 ** 252 + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
_IDENTITY = (0, 1, 1, 0)


def _inv(x):
    return pow(x, P - 2, P)


def _recover_x(y, sign):
    """RFC 8032 section 5.1.3, steps 2-4."""
    if y >= P:
        return None
    x2 = (y * y - 1) * _inv(D * y * y + 1) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


def _add(p1, p2):
    """Point addition, RFC 8032 section 5.1.4 (complete formula)."""
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * t1 * t2 * D % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _double(p1):
    """Dedicated doubling, RFC 8032 section 5.1.4."""
    x1, y1, z1, _ = p1
    a = x1 * x1 % P
    b = y1 * y1 % P
    c = 2 * z1 * z1 % P
    h = a + b
    e = h - (x1 + y1) * (x1 + y1)
    g = a - b
    f = c + g
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, point):
    q = _IDENTITY
    while s:
        if s & 1:
            q = _add(q, point)
        point = _double(point)
        s >>= 1
    return q


def _equal(p1, p2):
    x1, y1, z1, _ = p1
    x2, y2, z2, _ = p2
    return (x1 * z2 - x2 * z1) % P == 0 and (y1 * z2 - y2 * z1) % P == 0


_BY = 4 * _inv(5) % P
_BX = _recover_x(_BY, 0)
BASE = (_BX, _BY, 1, _BX * _BY % P)


def _encode(point):
    x, y, z, _ = point
    zi = _inv(z)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _decode(data):
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def _expand(seed):
    """RFC 8032 section 5.1.5: hash the 32-byte seed, clamp the scalar."""
    if len(seed) != 32:
        raise ValueError("Ed25519 private key must be 32 bytes")
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]


def _hint(data):
    return int.from_bytes(hashlib.sha512(data).digest(), "little")


def public_key(seed):
    a, _ = _expand(seed)
    return _encode(_mul(a, BASE))


def sign(seed, message, public=None):
    """RFC 8032 section 5.1.6.  Pass `public` to skip recomputing it."""
    a, prefix = _expand(seed)
    if public is None:
        public = _encode(_mul(a, BASE))
    r = _hint(prefix + message) % L
    r_enc = _encode(_mul(r, BASE))
    k = _hint(r_enc + public + message) % L
    s = (r + k * a) % L
    return r_enc + s.to_bytes(32, "little")


def verify(public, message, signature):
    """RFC 8032 section 5.1.7 (cofactorless check [S]B == R + [k]A)."""
    if len(public) != 32 or len(signature) != 64:
        return False
    a_pt = _decode(public)
    r_pt = _decode(signature[:32])
    if a_pt is None or r_pt is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        return False
    k = _hint(signature[:32] + public + message) % L
    return _equal(_mul(s, BASE), _add(r_pt, _mul(k, a_pt)))
