#!/usr/bin/env python3
"""usrloc: shared memory per contact and µs per save / lookup / timer pass.

    .venv/bin/python bench/usrloc.py [--contacts N] [--mb M]

Registers N AORs with one contact each (a typical REGISTER: contact URI
with the phone's address, a 32-character Call-ID, a User-Agent, the
receiving socket) in db_mode 0, the way registrar saves them: lock the AOR,
get the record, insert the contact, write it back, unlock. Prints:

* shared-memory bytes per contact: what the segment's `real_used` grew by
  (blocks with their headers, the hash buckets, the domain's locks and
  statistics), divided by N;
* µs per save of a new AOR (insert), per re-REGISTER (get + update of the
  existing contact + write back), per lookup (lock, get, valid contacts,
  unlock) on random AORs;
* ms per timer pass over all records when nothing is due (8 bytes read per
  record), and the MI ul_dump brief time.

Figures are wall time (time.perf_counter) in one process. A figure, not a test.
"""

from __future__ import annotations

import argparse
import random
import time

from sipserver.core.runtime import L_ERR, Runtime, SocketInfo
from sipserver.core.stats import Statistics
from sipserver.mi.tree import MINodeArg
from sipserver.modules.usrloc import ContactInfo, Usrloc
from sipserver.modules.usrloc import exports as ul_exports
from sipserver.modules.usrloc.mi import mi_ul_dump
from sipserver.shm import Segment

SOCK = SocketInfo("udp", "192.0.2.1", 5060)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--mb", type=int, default=96, help="shared memory segment size")
    o = ap.parse_args()
    n = o.contacts

    seg = Segment(o.mb * 1024 * 1024)
    rt = Runtime(sockets=[SOCK], logger=lambda level, text: print(text) if level <= L_ERR else None)
    rt.shm = seg
    rt.stats = Statistics(seg)
    before = seg.real_used
    params = {p.name: p.default for p in ul_exports.params}
    ul = Usrloc(params)
    ul.init(rt)
    dom = ul.register_udomain("location")
    now = ul.now()
    aors = [f"user{i:06d}" for i in range(n)]
    infos = [ContactInfo(expires=now + 3600, callid=f"{random.getrandbits(128):032x}", cseq=1,
                         user_agent="Phone/2.1.3", sock=SOCK, last_modified=now)
             for _ in range(n)]

    t0 = time.perf_counter()
    for i, aor in enumerate(aors):
        dom.lock(aor)
        try:
            r = dom.get_urecord(aor) or dom.insert_urecord(aor)
            r.insert_ucontact(f"sip:{aor}@198.51.{i >> 8 & 255}.{i & 255}:5060;transport=udp",
                              infos[i])
            dom.release_urecord(r)
        finally:
            dom.unlock(aor)
    t_insert = (time.perf_counter() - t0) / n * 1e6
    used = seg.real_used - before

    rnd = random.Random(7)
    picks = [rnd.randrange(n) for _ in range(min(n, 20_000))]
    t0 = time.perf_counter()
    for i in picks:
        aor = aors[i]
        ci = infos[i]
        ci.cseq += 1
        dom.lock(aor)
        try:
            r = dom.get_urecord(aor)
            contact = r.contacts[0]
            _code, c = r.get_ucontact(contact.contact, ci.callid, ci.cseq)
            r.update_ucontact(c, ci)
            dom.release_urecord(r)
        finally:
            dom.unlock(aor)
    t_update = (time.perf_counter() - t0) / len(picks) * 1e6

    t0 = time.perf_counter()
    found = 0
    for i in picks:
        aor = aors[i]
        dom.lock(aor)
        try:
            r = dom.get_urecord(aor)
            found += len(r.valid_contacts(now))
        finally:
            dom.unlock(aor)
    t_lookup = (time.perf_counter() - t0) / len(picks) * 1e6
    assert found == len(picks)

    t0 = time.perf_counter()
    ul.synchronize_all()
    t_timer = (time.perf_counter() - t0) * 1e3

    t0 = time.perf_counter()
    reply = mi_ul_dump([MINodeArg(None, "brief")], rt, type("M", (), {"state": ul})())
    t_dump = (time.perf_counter() - t0) * 1e3
    assert reply is not None

    print(f"usrloc, {n} AORs x 1 contact, db_mode 0")
    print(f"  shared memory        {used / n:8.1f} bytes/contact ({used / 1024 / 1024:.1f} MB)")
    print(f"  save (new AOR)       {t_insert:8.2f} us")
    print(f"  save (re-REGISTER)   {t_update:8.2f} us")
    print(f"  lookup               {t_lookup:8.2f} us")
    print(f"  timer pass           {t_timer:8.1f} ms (nothing due)")
    print(f"  ul_dump brief        {t_dump:8.1f} ms")


if __name__ == "__main__":
    main()
