# SPDX-License-Identifier: LGPL-2.1-or-later
"""Mock OAuth 2.0 / OpenID Connect provider + protected API for keyhold tests.

    mock-provider.py --port-file FILE [--port N] [--control-port N]
                     [--alg RS256|EdDSA] [--verbose]

Listens on 127.0.0.1 only: a MAIN port (issuer + /api) and a CONTROL port
(test scripting, see README.md).  Once both listen, FILE is written
atomically with {"port", "control_port", "issuer"}, so a harness can wait
for the file to appear instead of polling ports.
"""

import argparse
import json
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mockprovider.app import Provider  # noqa: E402


def write_port_file(path, data):
    # Write then rename: a reader never sees a half-written file.
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.write("\n")
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description="keyhold mock OAuth/OIDC provider")
    parser.add_argument("--port-file", required=True, help="where to write the ports as JSON")
    parser.add_argument("--port", type=int, default=0, help="main port (0 = ephemeral)")
    parser.add_argument("--control-port", type=int, default=0, help="control port (0 = ephemeral)")
    parser.add_argument("--alg", choices=("RS256", "EdDSA"), default="RS256",
                        help="initial ID token signing algorithm")
    parser.add_argument("--verbose", action="store_true",
                        help="terse request lines on stderr (paths only, no query strings)")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    provider = Provider(alg=args.alg, port=args.port, control_port=args.control_port,
                        verbose=args.verbose)
    threading.Thread(target=provider.serve_control_forever, name="control-port",
                     daemon=True).start()
    write_port_file(args.port_file, {"port": provider.main.port,
                                     "control_port": provider.control_port,
                                     "issuer": provider.issuer})
    sys.stderr.write("mock-provider: issuer %s, control port %d\n"
                     % (provider.issuer, provider.control_port))
    sys.stderr.flush()

    # Wait in short slices so the signal handler runs promptly.
    while not stop.wait(0.2):
        pass
    provider.close()
    sys.stdout.flush()
    sys.stderr.flush()
    # Handler threads may be mid-sleep in a fault; do not wait for them.
    os._exit(0)


if __name__ == "__main__":
    main()
