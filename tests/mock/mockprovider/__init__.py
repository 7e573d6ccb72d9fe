# SPDX-License-Identifier: LGPL-2.1-or-later
"""Mock OAuth 2.0 / OpenID Connect provider and protected API for keyhold tests.

Standard library only, so the test suite runs on any machine with Python 3.
Module map:
  crypto_rsa   RSA key generation and RS256 (RSASSA-PKCS1-v1_5/SHA-256) signing
  ed25519      Ed25519 per RFC 8032
  jwt          base64url, JWK/JWKS, compact JWS encoding, key store
  state        settings, grants, tokens, request log (all shared mutable state)
  faults       scripted fault queue and how each fault is acted out on the wire
  httpbase     HTTP/1.1 plumbing shared by both ports
  oauth        OIDC/OAuth endpoints on the main port
  api          the protected API (/api/...) on the main port
  main_port    main-port routing, fault application, offline/online switching
  control      the test-control port
  app          wires the pieces together
"""
