#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Keeps the agent's layers pointing down, from its #include lines.

Usage: check-layers.py [AGENT_DIR]      (default: agent/ next to tests/)
       check-layers.py --self-test

The agent lives in one folder per layer; includes are written
layer-qualified ("base/secret.h") and resolved against the agent folder, as
the build does (include_directories('.') in agent/meson.build).

Three rules, each violation printed with the file, line and include:
  1. a file includes only from its own layer and the layers LAYERS allows it;
  2. no file outside agent/bus/ includes a header from agent/bus/ (implied
     by 1, reported on its own because it is the mistake that matters most:
     D-Bus leaking into the core);
  3. no include cycle between modules. A module is a .c/.h pair (agent
     path without the extension, e.g. "accounts/token-cache"); its edges
     are the includes of both files, so "a.h includes b.h, b.c includes
     a.h" is a cycle even though the preprocessor would not loop. One
     object split over several files is one module: its private header
     X-private.h, and every file that includes it, belong to module X
     (the outbox's parts share outbox-private.h).

Exit status: 0 clean, 1 on any violation, 2 on bad usage.
"""

import os
import re
import sys
import tempfile

# ---- the architecture --------------------------------------------------------
#
# Layers, bottom to top. A layer may include from itself and from the layers
# listed for it; nothing else. "context" and "daemon" are the top-level
# files (see TOP_LEVEL): context.h is the bundle of shared services handed
# to accounts, outbox and bus, so it may only use what those layers share;
# daemon.c, daemon.h and main.c wire everything together.
LAYERS = {
    "base": [],
    "net": ["base"],
    "system": ["base"],
    "storage": ["base"],
    "oidc": ["base", "net", "storage"],
    "context": ["base", "net", "storage", "oidc"],
    # system sits below accounts; nothing in accounts needs it today, but
    # reacting to resume or connectivity there would not invert the layers.
    "accounts": ["base", "net", "storage", "oidc", "system", "context"],
    "outbox": ["base", "net", "storage", "oidc", "accounts", "context"],
    "bus": ["base", "net", "system", "storage", "oidc", "accounts", "outbox", "context"],
    "daemon": ["base", "net", "system", "storage", "oidc", "accounts", "outbox", "bus",
               "context"],
}

# Files directly in the agent folder and the layer each belongs to. A new
# top-level file must be added here (the check says so).
TOP_LEVEL = {
    "context.h": "context",
    "daemon.h": "daemon",
    "daemon.c": "daemon",
    "main.c": "daemon",
}

# Quoted includes that are not files in the agent folder. None: any layer
# may include it (the build's configuration header, and the D-Bus contract
# in dbus/, which sits below every layer); otherwise the layer the
# generated file belongs to.
GENERATED = {
    "config.h": None,
    "keyhold-contract.h": None,
    "bus/keyhold-dbus-generated.h": "bus",
}

PRIVATE_SUFFIX = "-private"

BUS = "bus"

# ---- the check -------------------------------------------------------------------

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')

# GDBus by name: a call or a type. gio.h brings it into every file, so the
# includes alone cannot show that a layer below bus/ speaks D-Bus.
GDBUS_RE = re.compile(r'\bg_dbus_[a-z_]+\s*\(|\bGDBus[A-Z]\w*')
# Layers that may use GDBus: the bus layer, logind on the system bus, and
# the daemon that wires them.
GDBUS_LAYERS = ("bus", "system", "daemon")


def layer_of(rel):
    """Layer of an agent-relative path, or None if it is in no layer."""
    parts = rel.split("/")
    if len(parts) == 1:
        return TOP_LEVEL.get(rel)
    if len(parts) == 2 and parts[0] in LAYERS and parts[0] not in ("context", "daemon"):
        return parts[0]
    return None


def module_of(rel):
    module = os.path.splitext(rel)[0]
    if module.endswith(PRIVATE_SUFFIX):
        return module[: -len(PRIVATE_SUFFIX)]
    return module


def parts_of_split_objects(agent_dir, files):
    """File -> module for the files that include some X-private.h: they are
    parts of module X."""
    parts = {}
    for rel in files:
        for _, name in read_includes(os.path.join(agent_dir, rel)):
            if os.path.splitext(name)[0].endswith(PRIVATE_SUFFIX):
                parts[rel] = module_of(name)
    return parts


def read_includes(path):
    """(line number, included name) for each quoted include, in order."""
    found = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            m = INCLUDE_RE.match(line)
            if m:
                found.append((number, m.group(1)))
    return found


def source_files(agent_dir):
    for dirpath, dirnames, filenames in os.walk(agent_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith((".c", ".h")):
                full = os.path.join(dirpath, name)
                yield os.path.relpath(full, agent_dir).replace(os.sep, "/")


def find_cycles(graph):
    """Strongly connected components with more than one module (or a module
    including itself), via Tarjan; each returned as a sorted list."""
    index, low, on_stack, stack, sccs = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        # Iterative, so that a deep graph cannot hit the recursion limit.
        work = [(v, iter(sorted(graph.get(v, ()))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            advanced = False
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    advanced = True
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                scc = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    scc.append(w)
                    if w == node:
                        break
                if len(scc) > 1 or node in graph.get(node, ()):
                    sccs.append(sorted(scc))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sccs


def shortest_cycle(graph, members):
    """One concrete cycle through the first member, staying inside the SCC."""
    start = members[0]
    inside = set(members)
    previous = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for w in sorted(graph.get(node, ())):
            if w == start:
                path = [node]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return list(reversed(path)) + [start]
            if w in inside and w not in previous:
                previous[w] = node
                queue.append(w)
    return members + [start]


def check(agent_dir, out=sys.stdout):
    """Prints every violation; returns how many there were."""
    problems = []
    graph = {}
    # (from module, to module) -> first "file:line: include" that makes the edge
    witness = {}

    files = list(source_files(agent_dir))
    known = set(files)
    parts = parts_of_split_objects(agent_dir, files)
    for rel in files:
        layer = layer_of(rel)
        if layer is None:
            problems.append(f"agent/{rel}: not in any layer; move it into a layer folder "
                            f"or add it to TOP_LEVEL in {os.path.basename(__file__)}")
            continue
        module = parts.get(rel, module_of(rel))
        graph.setdefault(module, set())
        for number, name in read_includes(os.path.join(agent_dir, rel)):
            where = f"agent/{rel}:{number}: #include \"{name}\""
            if name in GENERATED:
                target_layer = GENERATED[name]
                target_module = None
            elif name in known:
                target_layer = layer_of(name)
                target_module = parts.get(name, module_of(name))
            else:
                sibling = os.path.normpath(os.path.join(os.path.dirname(rel), name))
                if sibling.replace(os.sep, "/") in known:
                    problems.append(f"{where}: write it layer-qualified, as "
                                    f"\"{sibling.replace(os.sep, '/')}\"")
                else:
                    problems.append(f"{where}: no such file in agent/ (a generated header "
                                    f"belongs in GENERATED)")
                continue
            if target_layer is None:
                if target_module is None:
                    continue  # config.h and the like: anyone may include them
                problems.append(f"{where}: the included file is in no layer")
                continue
            if target_module is not None and target_module != module:
                graph[module].add(target_module)
                witness.setdefault((module, target_module), where)
            if target_layer == layer or target_layer in LAYERS[layer]:
                continue
            if target_layer == BUS:
                problems.append(f"{where}: only agent/bus/ and the daemon may include "
                                f"D-Bus headers; layer '{layer}' must not depend on bus/")
            else:
                allowed = ", ".join([layer] + LAYERS[layer])
                problems.append(f"{where}: layer '{layer}' must not include from layer "
                                f"'{target_layer}' (allowed: {allowed})")

    for members in find_cycles(graph):
        cycle = shortest_cycle(graph, members)
        lines = [f"include cycle between modules: {' -> '.join(cycle)}"]
        for a, b in zip(cycle, cycle[1:]):
            lines.append(f"    {witness[(a, b)]}")
        problems.append("\n".join(lines))

    for rel in files:
        if layer_of(rel) in GDBUS_LAYERS or layer_of(rel) is None:
            continue
        with open(os.path.join(agent_dir, rel), encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                if GDBUS_RE.search(line):
                    problems.append(f"agent/{rel}:{number}: uses GDBus; only bus/, system/ and "
                                    f"the daemon may speak D-Bus")

    for problem in problems:
        print(problem, file=out)
    if problems:
        print(f"check-layers: {len(problems)} violation(s); the allowed directions are the "
              f"LAYERS table at the top of {__file__}", file=out)
    return len(problems)


# ---- self-test -------------------------------------------------------------------

def self_test():
    """Runs check() on small synthetic trees; exits non-zero on a mismatch."""
    cases = [
        # (description, {path: contents}, expected substrings, in order of output)
        ("clean tree", {
            "base/secret.h": '#include "config.h"\n',
            "base/secret.c": '#include "base/secret.h"\n',
            "net/http.h": '#include "base/secret.h"\n',
            "oidc/oauth.h": '#include "net/http.h"\n#include "storage/store.h"\n',
            "storage/store.h": '#include "base/secret.h"\n',
            "context.h": '#include "oidc/oauth.h"\n',
            "accounts/account.h": '#include "context.h"\n#include "system/events.h"\n',
            "system/events.h": "",
            "bus/service.h": '#include "accounts/account.h"\n',
            "bus/service.c": '#include "bus/service.h"\n#include "bus/keyhold-dbus-generated.h"\n',
            "daemon.c": '#include "bus/service.h"\n#include "daemon.h"\n',
            "daemon.h": "",
            "main.c": '#include "daemon.h"\n',
        }, []),
        ("upward include and bus include", {
            "base/secret.h": '#include "net/http.h"\n',
            "net/http.h": "",
            "accounts/account.c": '#include "bus/service.h"\n',
            "bus/service.h": "",
            "bus/service.c": '#include "daemon.h"\n',
            "daemon.h": "",
        }, [
            "agent/accounts/account.c:1: #include \"bus/service.h\": only agent/bus/",
            "agent/base/secret.h:1: #include \"net/http.h\": layer 'base' must not include "
            "from layer 'net'",
            "agent/bus/service.c:1: #include \"daemon.h\": layer 'bus' must not include from "
            "layer 'daemon'",
        ]),
        ("cycle through a .c file", {
            "accounts/cache.h": '#include "bus/fast.h"\n',
            "accounts/cache.c": '#include "accounts/cache.h"\n',
            "bus/fast.h": "",
            "bus/fast.c": '#include "accounts/cache.h"\n',
        }, [
            "agent/accounts/cache.h:1: #include \"bus/fast.h\": only agent/bus/",
            "include cycle between modules: accounts/cache -> bus/fast -> accounts/cache",
            "    agent/accounts/cache.h:1",
            "    agent/bus/fast.c:1",
        ]),
        ("one object split over files is one module", {
            "outbox/outbox.h": "",
            "outbox/outbox.c": '#include "outbox/outbox-key.h"\n',
            "outbox/outbox-private.h": '#include "outbox/outbox.h"\n',
            "outbox/outbox-key.h": '#include "outbox/outbox-private.h"\n',
            "outbox/outbox-key.c": '#include "outbox/outbox-key.h"\n',
            "outbox/crypto.h": '#include "outbox/outbox.h"\n',
            "outbox/crypto.c": '#include "outbox/crypto.h"\n',
            "outbox/outbox-sender.c": ('#include "outbox/outbox-private.h"\n'
                                       '#include "outbox/crypto.h"\n'),
        }, ["include cycle between modules: outbox/crypto -> outbox/outbox -> outbox/crypto"]),
        ("GDBus below the bus layer", {
            "accounts/account.c": 'name = g_dbus_error_encode_gerror (error);\n',
            "bus/service.c": 'g_dbus_connection_emit_signal (c, NULL);\n',
            "system/events.c": 'GDBusConnection *bus;\n',
        }, ["agent/accounts/account.c:1: uses GDBus"]),
        ("cycle inside one layer, three modules", {
            "oidc/a.h": '#include "oidc/b.h"\n',
            "oidc/b.h": "",
            "oidc/b.c": '#include "oidc/b.h"\n#include "oidc/c.h"\n',
            "oidc/c.h": '#include "oidc/a.h"\n',
        }, ["include cycle between modules: oidc/a -> oidc/b -> oidc/c -> oidc/a"]),
        ("unqualified, unknown and unplaced files", {
            "base/clock.h": "",
            "base/backoff.c": '#include "clock.h"\n#include "nowhere.h"\n',
            "tools/x.c": "",
            "extra.c": "",
        }, [
            "agent/extra.c: not in any layer",
            "agent/base/backoff.c:1: #include \"clock.h\": write it layer-qualified, "
            "as \"base/clock.h\"",
            "agent/base/backoff.c:2: #include \"nowhere.h\": no such file",
            "agent/tools/x.c: not in any layer",
        ]),
    ]
    failures = 0
    for description, tree, expected in cases:
        with tempfile.TemporaryDirectory() as tmp:
            for rel, text in tree.items():
                path = os.path.join(tmp, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write(text)

            class Capture:
                def __init__(self):
                    self.text = ""

                def write(self, s):
                    self.text += s

            capture = Capture()
            count = check(tmp, out=capture)
            position = 0
            ok = (count == 0) == (not expected)
            for want in expected:
                found = capture.text.find(want, position)
                if found < 0:
                    ok = False
                    break
                position = found + len(want)
            print(f"{'ok' if ok else 'FAIL'}: {description}")
            if not ok:
                failures += 1
                print("  expected, in order: " + repr(expected))
                print("  got:\n" + capture.text)
    return 1 if failures else 0


def main(argv):
    if len(argv) > 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    if len(argv) == 2 and argv[1] == "--self-test":
        return self_test()
    if len(argv) == 2:
        agent_dir = argv[1]
    else:
        agent_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "agent")
    if not os.path.isdir(agent_dir):
        print(f"check-layers: {agent_dir} is not a directory", file=sys.stderr)
        return 2
    return 1 if check(agent_dir) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
