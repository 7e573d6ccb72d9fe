#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Gets an access token from keyhold through GObject Introspection and calls
an API with it.

    get-token.py ACCOUNT URL

The token goes straight from libkeyhold into the request's Authorization
header, inside this process: never on a command line or in the environment.
Python strings cannot be wiped, so the token is fetched right before the
request and not kept after it.
"""

import sys
import urllib.error
import urllib.request

import gi

gi.require_version("Keyhold", "1")
from gi.repository import GLib, Keyhold  # noqa: E402


def call_api(account, url):
    token = account.get_token_sync(None, None, 0, None)
    request = urllib.request.Request(
        url, headers={"Authorization": "Bearer " + token.get_value()})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def main(argv):
    if len(argv) != 3:
        print("Usage: get-token.py ACCOUNT URL", file=sys.stderr)
        return 2
    account_name, url = argv[1], argv[2]

    try:
        client = Keyhold.Client.new_sync(None)
        account = client.lookup_account(account_name)
        if account is None:
            print(f"get-token.py: keyhold has no account named {account_name!r}",
                  file=sys.stderr)
            return 1
        status, body = call_api(account, url)
    except GLib.Error as error:
        # Errors from the agent carry Keyhold.Error codes.
        if error.matches(Keyhold.error_quark(), Keyhold.Error.NOT_SIGNED_IN):
            print(f"get-token.py: sign in first: keyhold login {account_name}",
                  file=sys.stderr)
        else:
            print(f"get-token.py: {error.message}", file=sys.stderr)
        return 1

    print(f"HTTP {status}")
    print(body.decode("utf-8", errors="replace"))
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
