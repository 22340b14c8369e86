"""The messages TCP main exchanges with the other processes (unix SOCK_SEQPACKET).

Two kinds of channel:

- the control channel: any process connects to TCP main's unix socket the
  first time it sends over TCP and asks it to send (`SEND`); TCP main
  answers each request that wants it with `ACK` (sent or not, and on which
  connection);
- one worker channel per TCP worker (a socket pair made before forking):
  TCP main hands over a connection's file descriptor with `NEW` (SCM_RIGHTS);
  the worker reports `CLOSED` connections, `ACTIVITY` (for the idle
  lifetime) and `ALIAS` ports (Via `alias`, with tcp_accept_aliases).

Any process may also send `LIFETIME` on the control channel: keep a
connection open at least that many seconds from now, idle or not
(registrar's tcp_persistent_flag, 1.6 `tcpconn->lifetime`).

Every message is one datagram: a one-byte kind, a fixed struct, then bytes.
"""

from __future__ import annotations

import struct

__all__ = [
    "ACK", "ACTIVITY", "ALIAS", "CLOSED", "LIFETIME", "MAX_DATA", "MAX_DATAGRAM", "NEW", "SEND",
    "decode_ack", "decode_new", "decode_send", "encode_ack", "encode_new", "encode_send",
]

SEND = b"S"
ACK = b"A"
NEW = b"N"
CLOSED = b"C"
ACTIVITY = b"T"
ALIAS = b"L"
LIFETIME = b"E"

# SEND: seq, conn id (0 = by address), socket index (-1 = any), port, want ack, ip length
_SEND = struct.Struct("!IQhHBB")
# ACK: seq, ok, conn id
_ACK = struct.Struct("!IBQ")
# NEW: conn id, socket index, port (the ip follows)
_NEW = struct.Struct("!QhH")
# CLOSED / ACTIVITY: conn id; ALIAS: conn id, port
CONN = struct.Struct("!Q")
CONN_PORT = struct.Struct("!QH")
# LIFETIME: conn id, seconds
CONN_SECS = struct.Struct("!QI")

SEND_OVERHEAD = 1 + _SEND.size + 46  # kind, struct, longest IPv6 text
MAX_DATAGRAM = 1 << 18  # TCP main reads control messages up to this size
MAX_DATA = MAX_DATAGRAM - SEND_OVERHEAD  # the largest message a SEND carries


def encode_send(seq: int, conn_id: int, sock_index: int, ip: str, port: int,
                want_ack: bool, data: bytes) -> bytes:
    raw_ip = ip.encode("ascii")
    return b"".join((SEND, _SEND.pack(seq, conn_id, sock_index, port, int(want_ack),
                                      len(raw_ip)), raw_ip, data))


def decode_send(msg: bytes) -> tuple[int, int, int, str, int, bool, bytes]:
    """(seq, conn_id, sock_index, ip, port, want_ack, data); ValueError if malformed."""
    try:
        seq, conn_id, index, port, ack, iplen = _SEND.unpack_from(msg, 1)
    except struct.error as e:
        raise ValueError(str(e)) from None
    start = 1 + _SEND.size
    ip = msg[start:start + iplen].decode("ascii")
    return seq, conn_id, index, ip, port, bool(ack), msg[start + iplen:]


def encode_ack(seq: int, ok: bool, conn_id: int) -> bytes:
    return ACK + _ACK.pack(seq, int(ok), conn_id)


def decode_ack(msg: bytes) -> tuple[int, bool, int]:
    seq, ok, conn_id = _ACK.unpack_from(msg, 1)
    return seq, bool(ok), conn_id


def encode_new(conn_id: int, sock_index: int, ip: str, port: int) -> bytes:
    return NEW + _NEW.pack(conn_id, sock_index, port) + ip.encode("ascii")


def decode_new(msg: bytes) -> tuple[int, int, str, int]:
    """(conn_id, sock_index, ip, port)."""
    conn_id, index, port = _NEW.unpack_from(msg, 1)
    return conn_id, index, msg[1 + _NEW.size:].decode("ascii"), port


def encode_lifetime(conn_id: int, seconds: int) -> bytes:
    return LIFETIME + CONN_SECS.pack(conn_id, max(0, min(int(seconds), 0xFFFFFFFF)))
