"""The messages between TCP main and the other processes."""

from __future__ import annotations

import os
import socket

import pytest

from sipserver.core.runtime import Destination, SocketInfo
from sipserver.net import tcp_ipc as ipc
from sipserver.net.tcp import StreamSender
from sipserver.net.tcp_main import norm_ip


def test_send_round_trip() -> None:
    data = b"INVITE sip:x SIP/2.0\r\n\r\n" + bytes(range(256))
    msg = ipc.encode_send(7, 12345678901, 2, "2001:db8::1", 5061, True, data)
    assert msg[:1] == ipc.SEND
    assert ipc.decode_send(msg) == (7, 12345678901, 2, "2001:db8::1", 5061, True, data)
    msg = ipc.encode_send(0, 0, -1, "", 0, False, b"\r\n")
    assert ipc.decode_send(msg) == (0, 0, -1, "", 0, False, b"\r\n")
    with pytest.raises(ValueError):
        ipc.decode_send(b"S\x00")


def test_ack_and_new_round_trip() -> None:
    assert ipc.decode_ack(ipc.encode_ack(4294967295, True, 3)) == (4294967295, True, 3)
    assert ipc.decode_ack(ipc.encode_ack(1, False, 0)) == (1, False, 0)
    assert ipc.decode_new(ipc.encode_new(9, 1, "127.0.0.1", 40000)) == (9, 1, "127.0.0.1", 40000)


def test_norm_ip() -> None:
    assert norm_ip("10.0.0.1") == "10.0.0.1"
    assert norm_ip("[2001:DB8:0:0::1]") == "2001:db8::1"


def test_sender_asks_tcp_main_and_waits_for_the_answer() -> None:
    """The sender side against a fake TCP main on a socket pair."""
    ours, main = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    tcp_sock = SocketInfo("tcp", "127.0.0.1", 5060)
    sender = StreamSender(b"\0unused", [SocketInfo("udp", "127.0.0.1", 5060), tcp_sock], 2.0)
    sender._sock, sender._pid = ours, os.getpid()
    with main:
        # a stale answer (an earlier request that timed out) is skipped
        main.send(ipc.encode_ack(99, True, 1))
        main.send(ipc.encode_ack(1, False, 0))
        assert sender(tcp_sock, Destination("tcp", "10.0.0.2", 5070), b"hello") is False
        seq, conn_id, index, ip, port, want, data = ipc.decode_send(main.recv(1000))
        assert (seq, conn_id, index, ip, port, want, data) == (1, 0, 1, "10.0.0.2", 5070,
                                                               True, b"hello")
        # while a worker handles a request, replies to its source or Via port take its
        # connection; other destinations on the same host do not
        sender.hint = (42, "10.0.0.9", 33000, 5060)
        main.send(ipc.encode_ack(2, True, 42))
        assert sender(tcp_sock, Destination("tcp", "10.0.0.9", 5060), b"r") is True
        assert ipc.decode_send(main.recv(1000))[1] == 42
        main.send(ipc.encode_ack(3, True, 7))
        assert sender(tcp_sock, Destination("tcp", "10.0.0.9", 5080), b"r") is True
        assert ipc.decode_send(main.recv(1000))[1] == 0
        sender.hint = None
        # UDP is not ours; keep-alive answers do not wait
        assert sender(tcp_sock, Destination("udp", "10.0.0.9", 5060), b"x") is False
        sender.send_on(42, b"\r\n")
        seq, conn_id, _, _, _, want, data = ipc.decode_send(main.recv(1000))
        assert (conn_id, want, data) == (42, False, b"\r\n")
    # TCP main gone: a failure, not an exception
    assert sender(tcp_sock, Destination("tcp", "10.0.0.2", 5070), b"x") is False
