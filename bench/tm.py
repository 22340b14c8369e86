#!/usr/bin/env python3
"""The stateful proxy path: CPU µs per call through tm + rr, in one process.

    .venv/bin/python bench/tm.py [--calls N] [--profile]

One call is what the SIPp bench (`../shared/bench`, scenario stateful)
sends through the proxy: INVITE (100 Trying back, relayed downstream),
200 from the UAS (relayed upstream), ACK and BYE loose-routed, 200 for the
BYE; the timer process's work (wait timer, deletion) is run every 100
calls. Every message goes through the real receive path (`Receiver.handle`:
parse, script, tm, rr) with the bench's `sipserver-stateful.cfg` routing
logic; sending is recorded, not done (no socket I/O). Printed: CPU µs per
call (median of rounds) and, with --profile, the top of a cProfile run.
A figure, not a test.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time

from sipserver.core.receive import Receiver
from sipserver.testing import ScriptRunner

CFG = r"""
listen=udp:127.0.0.1:5060
route{
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483","Too Many Hops");
        exit;
    }
    if (has_totag()) {
        if (loose_route()) {
            if (is_method("INVITE")) {
                record_route();
            }
            route(1);
        }
        if (is_method("ACK")) {
            if (t_check_trans()) {
                t_relay();
            }
            exit;
        }
        sl_send_reply("404","Not here");
        exit;
    }
    if (is_method("CANCEL")) {
        if (t_check_trans())
            t_relay();
        exit;
    }
    t_check_trans();
    if (!is_method("REGISTER|MESSAGE"))
        record_route();
    rewritehostport("127.0.0.1:5070");
    route(1);
}
route[1] {
    if (!t_relay()) {
        sl_reply_error();
    }
    exit;
}
"""

SDP = (b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n"
       b"c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")

UAC = ("127.0.0.1", 5061)
UAS = ("127.0.0.1", 5070)


def invite(n: int) -> bytes:
    return (f"INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{n}-1-0\r\n"
            f"From: sipp <sip:sipp@127.0.0.1:5061>;tag={n}SIPpTag001\r\n"
            f"To: service <sip:service@127.0.0.1:5060>\r\n"
            f"Call-ID: {n}-bench@127.0.0.1\r\nCSeq: 1 INVITE\r\n"
            f"Contact: sip:sipp@127.0.0.1:5061\r\nMax-Forwards: 70\r\n"
            f"Subject: Performance Test\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(SDP)}\r\n\r\n").encode() + SDP


def uas_reply(request: bytes, n: int, with_rr: bool, body: bytes = b"") -> bytes:
    """The bench UAS's 200: the request's Via/RR/From/To/Call-ID/CSeq echoed."""
    head = request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    keep = []
    for line in head:
        name = line.split(b":", 1)[0].lower()
        if name == b"to" and b";tag=" not in line:
            line += f";tag={n}SIPpTag011".encode()
        if name in (b"via", b"from", b"to", b"call-id", b"cseq") or (with_rr and name == b"record-route"):
            keep.append(line)
    ctype = b"Content-Type: application/sdp\r\n" if body else b""
    return (b"SIP/2.0 200 OK\r\n" + b"\r\n".join(keep)
            + b"\r\nContact: <sip:127.0.0.1:5070;transport=UDP>\r\n" + ctype
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def in_dialog(method: str, n: int, cseq: int, route: str) -> bytes:
    return (f"{method} sip:127.0.0.1:5070;transport=UDP SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{n}-{cseq}-{method}\r\n"
            f"Route: {route}\r\n"
            f"From: sipp <sip:sipp@127.0.0.1:5061>;tag={n}SIPpTag001\r\n"
            f"To: service <sip:service@127.0.0.1:5060>;tag={n}SIPpTag011\r\n"
            f"Call-ID: {n}-bench@127.0.0.1\r\nCSeq: {cseq} {method}\r\n"
            f"Contact: sip:sipp@127.0.0.1:5061\r\nMax-Forwards: 70\r\n"
            f"Subject: Performance Test\r\nContent-Length: 0\r\n\r\n").encode()


class Bench:
    def __init__(self) -> None:
        self.runner = ScriptRunner(CFG, modules=["sl", "tm", "rr", "maxfwd", "textops", "uri"],
                                   stats=True, shm_mb=64)
        self.runner.rt.debug = -1
        self.rx = Receiver(self.runner.rt)
        self.sock = self.runner.transport.sockets[0]
        self.tm = self.runner.compiled.registry.modules["tm"].state
        self.n = 0

    def call(self) -> None:
        """One call; the messages are built before each step (outside nothing)."""
        self.n += 1
        n = self.n
        sent = self.runner.transport.sent
        sent.clear()
        rx = self.rx.handle
        rx(invite(n), *UAC, self.sock)
        fwd = sent[-1][2]
        rr = [line for line in fwd.split(b"\r\n") if line.startswith(b"Record-Route:")]
        route = rr[0].split(b":", 1)[1].strip().decode() if rr else ""
        rx(uas_reply(fwd, n, True, SDP), *UAS, self.sock)
        rx(in_dialog("ACK", n, 1, route), *UAC, self.sock)
        rx(in_dialog("BYE", n, 2, route), *UAC, self.sock)
        rx(uas_reply(sent[-1][2], n, False), *UAS, self.sock)
        if n % 100 == 0:
            self.timers()

    def timers(self) -> None:
        """What the timer process does meanwhile: run tm's due timers."""
        rt = self.runner.rt
        for _name, _interval, fn in getattr(rt, "timers", []):
            fn()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--sort", default="tottime")
    args = ap.parse_args()
    b = Bench()
    for _ in range(200):  # warm-up
        b.call()
    sent = b.runner.transport.sent
    assert sent and sent[-1][2].startswith(b"SIP/2.0 200 OK"), sent[-1][2][:80]
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(args.calls):
            b.call()
        prof.disable()
        pstats.Stats(prof).sort_stats(args.sort).print_stats(30)
        return
    per_call = []
    for _ in range(args.rounds):
        t0 = time.process_time()
        for _ in range(args.calls):
            b.call()
        per_call.append((time.process_time() - t0) / args.calls * 1e6)
    print(f"stateful call (INVITE/200/ACK/BYE/200 through tm+rr): "
          f"median {statistics.median(per_call):.0f} µs CPU, min {min(per_call):.0f} µs "
          f"({args.rounds} rounds of {args.calls} calls; includes building the test messages)")


if __name__ == "__main__":
    main()
