# SPDX-License-Identifier: LGPL-2.1-or-later
"""libkeyhold through its typelib, as a Python application uses it.

Run by run-in-env, which starts the private bus, keyring, mock provider and
agent, signs in the account named in KEYHOLD_TEST_ACCOUNT and points
GI_TYPELIB_PATH and LD_LIBRARY_PATH at the build tree.
"""

import json
import os
import time
import unittest
import urllib.request

import gi

gi.require_version("Keyhold", "1")
from gi.repository import GLib, Keyhold  # noqa: E402

ACCOUNT = os.environ["KEYHOLD_TEST_ACCOUNT"]


def mock_ports():
    with open(os.path.join(os.environ["HOME"], "mock.json")) as port_file:
        return json.load(port_file)


def mock_control(path, body):
    url = "http://127.0.0.1:%d%s" % (mock_ports()["control_port"], path)
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def run_until_done(start):
    """Runs a main loop until the callback that start() was given is called."""
    loop = GLib.MainLoop()
    results = []

    def done(source, result, *args):
        results.append((source, result))
        loop.quit()

    start(done)
    GLib.timeout_add_seconds(120, loop.quit)
    loop.run()
    if not results:
        raise AssertionError("the operation did not finish")
    return results[0]


class TypelibTest(unittest.TestCase):
    def setUp(self):
        self.client = Keyhold.Client.new_sync(None)
        self.account = self.client.lookup_account(ACCOUNT)
        self.assertIsNotNone(self.account)

    def test_token_calls_the_api(self):
        token = self.account.get_token_sync(None, None, 0, None)
        self.assertTrue(token.get_value())
        self.assertGreater(token.get_expires_at(), time.time() + 60)
        self.assertTrue(mock_control("/check-token",
                                     {"access_token": token.get_value()})["valid"])

        request = urllib.request.Request(
            mock_ports()["issuer"] + "/api/notes",
            headers={"Authorization": "Bearer " + token.get_value()})
        with urllib.request.urlopen(request, timeout=30) as response:
            self.assertEqual(response.status, 200)

    def test_async_calls(self):
        source, result = run_until_done(lambda done: Keyhold.Client.new(None, done))
        client = Keyhold.Client.new_finish(result)
        account = client.lookup_account(ACCOUNT)

        source, result = run_until_done(
            lambda done: account.get_token(["openid"], None, 120, None, done))
        token = account.get_token_finish(result)
        self.assertTrue(token.get_value())

    def test_properties_and_identity(self):
        self.assertEqual(self.account.get_name(), ACCOUNT)
        self.assertEqual(self.account.props.state, Keyhold.AccountState.SIGNED_IN)
        self.assertEqual(self.account.props.state.value_nick, "signed-in")
        self.assertEqual(self.account.props.subject, "user-alice-0001")
        self.assertIn(mock_ports()["issuer"], self.account.dup_api_origins())

        claims = self.account.get_identity_sync(None).unpack()
        self.assertEqual(claims["sub"], "user-alice-0001")
        self.assertEqual(claims["email"], "alice@example.test")

    def test_errors_carry_keyhold_codes(self):
        issuer = mock_ports()["issuer"]
        account = self.client.add_account_sync("py-unsigned", issuer, "test-client", None,
                                               [issuer], None)
        with self.assertRaises(GLib.Error) as raised:
            account.get_token_sync(None, None, 0, None)
        self.assertTrue(raised.exception.matches(Keyhold.error_quark(),
                                                 Keyhold.Error.NOT_SIGNED_IN))
        self.assertNotIn("GDBus.Error", raised.exception.message)


if __name__ == "__main__":
    unittest.main(verbosity=2)
