#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A keyring unlock prompt that nobody answers.

gnome-keyring-daemon shows its prompts through org.gnome.keyring.SystemPrompter
(gcr's prompter protocol). This stand-in owns that name on the session bus
and accepts every call, but never reports the prompt as ready, as when the
user walks away from an unlock dialog: whoever asked the keyring for a
secret in a locked collection waits until the prompter goes away (EOF on
stdin), which dismisses the prompt.

Prints "ready" once the name is owned and "prompt" when a prompt begins.
"""

import sys

from gi.repository import Gio, GLib

PROMPTER_XML = """
<node>
  <interface name="org.gnome.keyring.internal.Prompter">
    <method name="BeginPrompting">
      <arg name="callback" type="o" direction="in"/>
    </method>
    <method name="PerformPrompt">
      <arg name="callback" type="o" direction="in"/>
      <arg name="type" type="s" direction="in"/>
      <arg name="properties" type="a{sv}" direction="in"/>
      <arg name="exchange" type="s" direction="in"/>
    </method>
    <method name="StopPrompting">
      <arg name="callback" type="o" direction="in"/>
    </method>
  </interface>
</node>
"""


def on_call(connection, sender, path, interface, method, parameters, invocation):
    if method == "BeginPrompting":
        print("prompt", flush=True)
    invocation.return_value(None)


def main():
    loop = GLib.MainLoop()
    bus = Gio.bus_get_sync(Gio.BusType.SESSION)
    node = Gio.DBusNodeInfo.new_for_xml(PROMPTER_XML)
    bus.register_object("/org/gnome/keyring/Prompter", node.interfaces[0], on_call)
    Gio.bus_own_name_on_connection(bus, "org.gnome.keyring.SystemPrompter",
                                   Gio.BusNameOwnerFlags.NONE,
                                   lambda *args: print("ready", flush=True),
                                   lambda *args: loop.quit())
    stdin = GLib.IOChannel.unix_new(sys.stdin.fileno())
    GLib.io_add_watch(stdin, GLib.PRIORITY_DEFAULT, GLib.IOCondition.IN | GLib.IOCondition.HUP,
                      lambda *args: loop.quit() or False)
    loop.run()


if __name__ == "__main__":
    main()
