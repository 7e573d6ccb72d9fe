# SPDX-License-Identifier: LGPL-2.1-or-later
"""RSA key generation and RS256 signatures in pure Python.

The mock must not depend on the `cryptography` package, so we generate a
fresh key at startup with Miller-Rabin and sign with RSASSA-PKCS1-v1_5 /
SHA-256 (RFC 8017 section 8.2 + EMSA-PKCS1-v1_5, section 9.2).  Python's
built-in big integers and three-argument pow() make this fast enough: a
2048-bit key takes well under a second.
"""

import hashlib
import secrets

# DER encoding of DigestInfo for SHA-256 minus the digest itself
# (RFC 8017 section 9.2, note 1).
SHA256_DIGESTINFO_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def _small_primes(limit):
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(limit ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytearray(len(sieve[i * i::i]))
    return [i for i in range(limit) if sieve[i]]


# Trial division by small primes rejects most candidates far more cheaply
# than a Miller-Rabin round, which is what keeps key generation quick.
_SMALL_PRIMES = _small_primes(2000)
_rng = secrets.SystemRandom()


def is_probable_prime(n, rounds=8):
    """Miller-Rabin with random bases; 8 rounds on 1024-bit random candidates
    gives an error probability far below anything that matters for a mock."""
    if n < 2:
        return False
    for sp in _SMALL_PRIMES:
        if n % sp == 0:
            return n == sp
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):
        a = _rng.randrange(2, n - 1)
        x = pow(a, d, n)
        if x == 1 or x == n - 1:
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _generate_prime(bits, e):
    while True:
        # The top two bits are forced on so that the product of two such
        # primes always has exactly 2*bits bits.
        cand = secrets.randbits(bits) | (3 << (bits - 2)) | 1
        # e is prime, so gcd(e, p-1) == 1 iff e does not divide p-1;
        # otherwise d would not exist.
        if (cand - 1) % e == 0:
            continue
        if is_probable_prime(cand):
            return cand


class RsaPrivateKey:
    """An RSA private key with CRT parameters (signing via CRT is ~3x faster)."""

    def __init__(self, p, q, e=65537):
        self.p, self.q, self.e = p, q, e
        self.n = p * q
        phi = (p - 1) * (q - 1)
        self.d = pow(e, -1, phi)
        self.dp = self.d % (p - 1)
        self.dq = self.d % (q - 1)
        self.qinv = pow(q, -1, p)
        self.size = (self.n.bit_length() + 7) // 8

    def raw_sign(self, m):
        """RSASP1 (RFC 8017 section 5.2.1) using the CRT."""
        m1 = pow(m, self.dp, self.p)
        m2 = pow(m, self.dq, self.q)
        h = (self.qinv * (m1 - m2)) % self.p
        return m2 + h * self.q


def generate(bits=2048, e=65537):
    half = bits // 2
    while True:
        p = _generate_prime(half, e)
        q = _generate_prime(bits - half, e)
        if p != q:
            key = RsaPrivateKey(p, q, e)
            if key.n.bit_length() == bits:
                return key


def emsa_pkcs1_v15_sha256(message, em_len):
    """EMSA-PKCS1-v1_5 encoding (RFC 8017 section 9.2) with SHA-256."""
    t = SHA256_DIGESTINFO_PREFIX + hashlib.sha256(message).digest()
    if em_len < len(t) + 11:
        raise ValueError("intended encoded message length too short")
    return b"\x00\x01" + b"\xff" * (em_len - len(t) - 3) + b"\x00" + t


def sign_rs256(key, message):
    em = emsa_pkcs1_v15_sha256(message, key.size)
    s = key.raw_sign(int.from_bytes(em, "big"))
    return s.to_bytes(key.size, "big")


def verify_rs256(n, e, message, signature):
    """RSASSA-PKCS1-v1_5 verification (used by self-tests only)."""
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:
        return False
    em = pow(s, e, n).to_bytes(k, "big")
    return secrets.compare_digest(em, emsa_pkcs1_v15_sha256(message, k))
