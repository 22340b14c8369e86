"""The core's internal error codes (1.6 error.h).

An action that fails returns one of these (and leaves it in
`ctx.ser_error`); `sl_reply_error()` turns it into a SIP reply
(core/reply.py, err2reason).
"""

from __future__ import annotations

E_UNSPEC = -1
E_OUT_OF_MEM = -2
E_BAD_RE = -3
E_BUG = -5
E_CFG = -6
E_NO_SOCKET = -7
E_BAD_VIA = -8
E_BAD_TUPEL = -9
E_SCRIPT = -10
E_EXEC = -11
E_TOO_MANY_BRANCHES = -12
E_BAD_TO = -13
E_INVALID_PARAMS = -14
E_Q_INV_CHAR = -15
E_Q_EMPTY = -16
E_Q_TOO_BIG = -17
E_Q_DEC_MISSING = -18
E_NO_DESTINATION = -19
E_IP_BLOCKED = -473
E_BAD_PROTO = -474
E_BAD_URI = -475
E_BAD_ADDRESS = -476
E_SEND = -477
E_BAD_REQ = -400
E_BAD_SERVER = -500
E_FWD_FAILED = E_UNSPEC  # no socket for the destination, or every send failed
