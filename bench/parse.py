#!/usr/bin/env python3
"""µs per message for the SIP layer: parse, touch every header, build.

    .venv/bin/python bench/parse.py [--rounds N]

Prints the median and the minimum over N rounds of 2,000 messages each, in CPU time of this
process (steadier than wall time on a shared box). A figure, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time

from sipserver.sip import parse_message
from sipserver.sip.builders import add_via, build_reply, make_branch, make_via

# A typical ~1 KB INVITE as a softphone sends it through one proxy.
INVITE = (
    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n"
    "Max-Forwards: 70\r\n"
    "To: Bob <sip:bob@biloxi.example.com>\r\n"
    'From: "Alice Liddell" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    "Call-ID: a84b4c76e66710f2a1c9d7@192.0.2.10\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:alice@192.0.2.10:5060;transport=udp>\r\n"
    "Route: <sip:proxy.atlanta.example.com;lr>\r\n"
    "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO\r\n"
    "Supported: replaces, timer, 100rel\r\n"
    "User-Agent: Softphone 1.2.3 (Linux)\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: {n}\r\n"
    "\r\n"
)
SDP = (
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\n"
    "m=audio 49170 RTP/AVP 0 8 18 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:18 G729/8000\r\n"
    "a=fmtp:18 annexb=no\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n"
)
DATA = (INVITE.format(n=len(SDP)) + SDP).encode()


def parse_only() -> None:
    parse_message(DATA)


def touch_all() -> None:
    m = parse_message(DATA)
    m.vias  # noqa: B018
    m.from_.uri  # noqa: B018
    m.to.uri  # noqa: B018
    m.contacts[0].uri  # noqa: B018
    m.routes[0].uri  # noqa: B018
    m.content_type  # noqa: B018
    m.token_list("allow")
    m.token_list("supported")
    m.header_value("user-agent")
    m.body  # noqa: B018


def build_two_lumps() -> None:
    m = parse_message(DATA)
    add_via(m, make_via("UDP", "192.0.2.1", 5060, make_branch(m)))
    m.lumps.add_header("Record-Route: <sip:192.0.2.1;lr>")
    m.build()


def reply_404() -> None:
    m = parse_message(DATA)
    build_reply(m, 404, "Not Found", to_tag="abc", source=("192.0.2.10", 5060))


CASES = {
    "parse (first line, Via, mandatory headers)": parse_only,
    "parse + every header touched": touch_all,
    "parse + build with two lumps (Via, Record-Route)": build_two_lumps,
    "parse + build a 404 reply": reply_404,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--per-round", type=int, default=2000)
    args = ap.parse_args()
    print(f"message: {len(DATA)} bytes INVITE; median of {args.rounds} x {args.per_round}")
    for label, fn in CASES.items():
        fn()
        samples = []
        for _ in range(args.rounds):
            t0 = time.process_time()
            for _ in range(args.per_round):
                fn()
            samples.append((time.process_time() - t0) / args.per_round * 1e6)
        print(f"{statistics.median(samples):8.1f} µs median {min(samples):8.1f} µs min  {label}")


if __name__ == "__main__":
    main()
