"""tm when shared memory runs out, on the wire: t_relay fails before it sends
anything (as in 1.6, the script answers), what was stored goes on normally,
and new calls are stateful again once memory comes back."""

from __future__ import annotations

from pathlib import Path

from .server import SipServer
from .test_tm import Peer, first, reply, request

CFG = """
log_stderror=yes
debug=1
children=2
listen=udp:127.0.0.1:@PORT@
loadmodule "sl.so"
loadmodule "tm.so"
modparam("tm", "wt_timer", 1)
route {
    if (method == "OPTIONS") {
        sl_send_reply("200", "Alive");
        exit;
    }
    if (!t_relay()) {
        sl_reply_error();
    }
}
"""


def test_full_shared_memory_fails_new_transactions_cleanly(tmp_path: Path) -> None:
    server = SipServer(tmp_path, CFG, args=["-m", "2"]).start()
    uac, uas = Peer(), Peer()
    try:
        ruri = f"sip:bob@127.0.0.1:{uas.port}"
        forwarded: dict[str, str] = {}  # Call-ID -> the INVITE the UAS got
        refused: list[str] = []
        n = 0
        while len(refused) < 5 and n < 3000:
            n += 1
            call_id = f"mem-{n}"
            uac.send(request("INVITE", ruri, uac, call_id=call_id, branch=f"z9hG4bK-mem-{n}"),
                     server.port)
            answer = first(uac.recv(3.0))
            if answer.startswith("SIP/2.0 500 "):
                refused.append(call_id)
                continue
            assert answer == "SIP/2.0 100 Giving a try", (call_id, answer)
            inv = uas.recv(3.0)
            assert inv is not None and header_value(inv, "Call-ID") == call_id, (call_id, inv)
            forwarded[call_id] = inv
        assert len(refused) == 5 and len(forwarded) > 50, f"2 MB held {n} open INVITEs"
        assert uas.drain() == []  # nothing refused went out
        assert "out of shared memory" in server.log()
        # the stored transactions work on: each 486 is ACKed and relayed up
        for call_id, inv in forwarded.items():
            uas.send(reply(inv, 486, "Busy Here", to_tag="u"), server.port)
            ack = uas.recv(3.0)
            assert first(ack).startswith("ACK "), (call_id, ack)
            busy = uac.recv(3.0)
            assert first(busy) == "SIP/2.0 486 Busy Here", (call_id, busy)
            n = int(call_id.split("-")[1])
            uac.send(request("ACK", ruri, uac, call_id=call_id, branch=f"z9hG4bK-mem-{n}",
                             to_tag="u"), server.port)
        # wt_timer (1 s) after the ACKs gives their memory back: a new call is stateful again
        assert uac.drain(1.5) == [] and uas.drain(0.1) == []
        uac.send(request("INVITE", ruri, uac, call_id="after", branch="z9hG4bK-after"), server.port)
        assert first(uac.recv(3.0)) == "SIP/2.0 100 Giving a try"
        assert header_value(uas.recv(3.0) or "", "Call-ID") == "after"
        assert server.proc is not None and server.proc.poll() is None
    finally:
        uac.close()
        uas.close()
        server.stop()


def header_value(msg: str, name: str) -> str:
    for line in msg.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return ""
