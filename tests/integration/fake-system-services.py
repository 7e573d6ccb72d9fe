#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Stand-ins for logind and NetworkManager on a private "system" bus.

The agent watches org.freedesktop.login1 (PrepareForSleep) and GLib's
NetworkManager network monitor on the system bus. Tests point the agent's
DBUS_SYSTEM_BUS_ADDRESS at their private bus and run this service there, so
the agent's real code paths see a suspend, a resume and connectivity changes.

Commands, one per line on stdin:
  network full|limited|portal|none   set NetworkManager's connectivity
  sleep | resume                     emit PrepareForSleep(true | false)
  spoof-resume                       emit PrepareForSleep(false) from
                                     another connection, which does not own
                                     org.freedesktop.login1 (as any local
                                     user can): broadcast, and sent directly
                                     to every other connection on the bus
Prints "ready" once both names are owned, and "ok" after each command.
"""

import sys

from gi.repository import Gio, GLib

NM_XML = """
<node>
  <interface name="org.freedesktop.NetworkManager">
    <property name="State" type="u" access="read"/>
    <property name="Connectivity" type="u" access="read"/>
    <property name="Metered" type="u" access="read"/>
  </interface>
</node>
"""

# NetworkManager's NMState and NMConnectivityState values.
NETWORKS = {
    "full": (70, 4),     # CONNECTED_GLOBAL, FULL
    "limited": (60, 3),  # CONNECTED_SITE, LIMITED
    "portal": (60, 2),   # CONNECTED_SITE, PORTAL
    "none": (20, 1),     # DISCONNECTED, NONE
}


class FakeSystemServices:
    def __init__(self, bus, spoofer):
        self.bus = bus
        self.spoofer = spoofer
        self.state, self.connectivity = NETWORKS["full"]
        nm_info = Gio.DBusNodeInfo.new_for_xml(NM_XML).interfaces[0]
        bus.register_object("/org/freedesktop/NetworkManager", nm_info, None,
                            self.get_nm_property, None)
        self.owned = set()
        for name in ("org.freedesktop.NetworkManager", "org.freedesktop.login1"):
            Gio.bus_own_name_on_connection(bus, name, Gio.BusNameOwnerFlags.NONE,
                                           self.on_name_acquired, None)

    def on_name_acquired(self, connection, name):
        self.owned.add(name)
        if len(self.owned) == 2:
            print("ready", flush=True)

    def get_nm_property(self, connection, sender, path, interface, name):
        values = {"State": self.state, "Connectivity": self.connectivity, "Metered": 0}
        return GLib.Variant("u", values[name])

    def set_network(self, kind):
        self.state, self.connectivity = NETWORKS[kind]
        changed = {"State": GLib.Variant("u", self.state),
                   "Connectivity": GLib.Variant("u", self.connectivity)}
        self.bus.emit_signal(None, "/org/freedesktop/NetworkManager",
                             "org.freedesktop.DBus.Properties", "PropertiesChanged",
                             GLib.Variant("(sa{sv}as)",
                                          ("org.freedesktop.NetworkManager", changed, [])))

    def prepare_for_sleep(self, start):
        self.bus.emit_signal(None, "/org/freedesktop/login1", "org.freedesktop.login1.Manager",
                             "PrepareForSleep", GLib.Variant("(b)", (start,)))

    def spoof_resume(self):
        names = self.spoofer.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "ListNames", None,
                                       GLib.VariantType("(as)"), Gio.DBusCallFlags.NONE, -1,
                                       None).unpack()[0]
        own = (self.bus.get_unique_name(), self.spoofer.get_unique_name())
        destinations = [None] + [n for n in names if n.startswith(":") and n not in own]
        for destination in destinations:
            self.spoofer.emit_signal(destination, "/org/freedesktop/login1",
                                     "org.freedesktop.login1.Manager", "PrepareForSleep",
                                     GLib.Variant("(b)", (False,)))
        self.spoofer.flush_sync(None)

    def on_command(self, channel, condition):
        line = sys.stdin.readline()
        if not line:
            loop.quit()
            return False
        words = line.split()
        if words[:1] == ["network"] and len(words) == 2 and words[1] in NETWORKS:
            self.set_network(words[1])
        elif words == ["sleep"]:
            self.prepare_for_sleep(True)
        elif words == ["resume"]:
            self.prepare_for_sleep(False)
        elif words == ["spoof-resume"]:
            self.spoof_resume()
        else:
            print("unknown command: " + line.strip(), flush=True)
            return True
        self.bus.flush_sync(None)
        print("ok", flush=True)
        return True


def connect(address):
    return Gio.DBusConnection.new_for_address_sync(
        address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)


if __name__ == "__main__":
    address = GLib.getenv("DBUS_SYSTEM_BUS_ADDRESS")
    services = FakeSystemServices(connect(address), connect(address))
    loop = GLib.MainLoop()
    GLib.io_add_watch(GLib.IOChannel.unix_new(sys.stdin.fileno()), GLib.PRIORITY_DEFAULT,
                      GLib.IOCondition.IN | GLib.IOCondition.HUP, services.on_command)
    loop.run()
