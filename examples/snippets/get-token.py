# SPDX-License-Identifier: LGPL-2.1-or-later
import sys
import urllib.request

import gi

gi.require_version("Keyhold", "1")
from gi.repository import Keyhold

client = Keyhold.Client.new_sync(None)
token = client.lookup_account("work").get_token_sync(None, None, 0, None)
request = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + token.get_value()})
print(urllib.request.urlopen(request).status)
