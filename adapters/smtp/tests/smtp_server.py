"""The SMTP server the bazaar-smtp tests deliver to (aiosmtpd).

Usage: python smtp_server.py PORT MAILDIR

Accepts every recipient and writes each accepted message to MAILDIR as
one .eml file (written aside, then renamed, so a reader never sees half a
message), except:
  - a recipient whose local part starts with "bounce" is refused with
    550 (permanent);
  - a recipient whose local part starts with "busy", or for whom the file
    MAILDIR/refuse-<local part> exists, is deferred with 451 (transient).

Prints READY once it listens, and exits when its standard input closes,
so it never outlives the test process that started it.
"""

import os
import sys
import threading
import time

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, maildir):
        self.maildir = maildir
        self.lock = threading.Lock()
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("bounce"):
            return "550 5.1.1 No such mailbox here"
        if local.startswith("busy") or os.path.exists(os.path.join(self.maildir, "refuse-" + local)):
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            name = "%d-%06d.eml" % (time.time_ns(), self.count)
        tmp = os.path.join(self.maildir, "." + name)
        with open(tmp, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.maildir, name))
        return "250 2.0.0 Message accepted for delivery"


def main():
    port, maildir = int(sys.argv[1]), sys.argv[2]
    os.makedirs(maildir, exist_ok=True)
    controller = Controller(Handler(maildir), hostname="127.0.0.1", port=port)
    controller.start()
    print("READY", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
