"""A local WhatsApp Web simulator: the real page markup, a fake phone that scans, faults on demand.

    from continuity.devtools.simulator import Simulator
    with Simulator(port=0, qr_rotate_s=20.0, qr_max_rotations=5) as sim:
        sim.url          # "http://127.0.0.1:PORT/" -> whatsapp.url
        sim.wait_qr()    # the QR payload a page shows (div[data-ref]), waiting for one
        sim.scan()       # the phone links the page showing a QR -> syncing -> main screen
        sim.set_mode("stuck_clock")   # see MODES; sim.set_mode(name, on=False) clears
        sim.set_variant("ticks_renamed")  # see VARIANTS: page markup drift, from each page's next load
        sim.delivered()  # [{"id", "phone", "text", "ts"}], once per message
        sim.logout()     # the phone unlinks every device -> pages go to ?post_logout=1 and a QR
        sim.receive("15557654321", "hi")  # an incoming message: an unread badge until a page opens the chat
        sim.receipts()   # read receipts the pages sent: [{"jid", "ids", "ts"}]
        sim.add_group("Token Alerts")  # a group (chat list row by title) -> its jid "<id>@g.us"
        sim.link_code()  # the phone-number linking code a page shows ("XXXX-XXXX"), or None
        sim.enter_code() # the phone types that code: the page is linked with no QR scanned

`Simulator(variant=NAME)` starts with a markup variant (default "default"); a variant changes only markup,
never the fake phone or the server.

The same over HTTP: GET /__sim__/state,
POST /__sim__/control {"action": "scan"|"logout"|"set_mode"|"set_variant", ...}.
Command line: `continuity simulator [--port N] [--mode NAME[:KEY=VALUE]] [--variant NAME]`.
"""

from ._modes import MODES
from ._simulator import Simulator
from ._state import NoQrShown
from ._variants import VARIANTS

__all__ = ["MODES", "VARIANTS", "NoQrShown", "Simulator"]
