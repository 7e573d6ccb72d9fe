# SPDX-License-Identifier: LGPL-2.1-or-later
"""Wires state, keys, faults and both listening ports together."""

from . import control, main_port
from .faults import FaultQueue
from .httpbase import Server
from .jwt import KeyStore
from .state import Store


class Provider:
    def __init__(self, alg="RS256", port=0, control_port=0, verbose=False):
        self.store = Store(alg)
        self.keys = KeyStore()
        self.keys.current(alg)  # only the startup algorithm's key is made eagerly
        self.faults = FaultQueue()
        self.main = main_port.MainPort(self, port, verbose)
        # The issuer is fixed for the life of the process, even across
        # offline/online, because MainPort reopens the same port.
        self.issuer = "http://127.0.0.1:%d" % self.main.port
        self.control = Server(("127.0.0.1", control_port), control.ControlHandler, self,
                              "control", verbose)
        self.control_port = self.control.server_address[1]

    def serve_control_forever(self):
        self.control.serve_forever(poll_interval=0.1)

    def reset(self):
        """Back to a fresh start; generated keys survive because making a
        new RSA key would slow every test's setUp."""
        self.faults.clear()
        self.store.reset()
        self.main.go_online()

    def close(self):
        self.control.server_close()
        self.main.close()
