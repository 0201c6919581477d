"""Every default of the library, once: the client, the command line and the sandbox read
them from here."""

from __future__ import annotations

__all__ = ["ACCOUNT_RATE", "BULK_WORKERS", "MAX_ATTEMPTS", "MAX_REPLY_BYTES", "POOL_SIZE",
           "THROTTLE_BACKOFF", "TIMEOUT"]

#: The deadline in seconds of one attempt (name resolution to the last byte of the reply).
TIMEOUT = 30.0
#: Tries of one call, the first included (reads freely, writes only when nothing was sent).
MAX_ATTEMPTS = 3
#: The account's ceiling in calls per second: the client paces at it, the sandbox
#: throttles above it.
ACCOUNT_RATE = 10.0
#: Seconds to hold every call after the vendor's throttle fault (the vendor asks for 30).
THROTTLE_BACKOFF = 30.0
#: The cap of one reply after decompression.
MAX_REPLY_BYTES = 8 * 1024 * 1024
#: Kept-alive connections per origin; more threads open extra ones.
POOL_SIZE = 32
#: Calls a bulk job keeps in flight at once (enough for the account's rate at ~0.8 s a call).
BULK_WORKERS = 8
