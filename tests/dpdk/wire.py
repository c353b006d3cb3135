#!/usr/bin/env python3
"""Send or capture raw Ethernet frames on one interface (run inside a namespace with ip netns exec).

  wire.py send IFNAME HEXFRAME[,HEXFRAME...] [GAP_S]
  wire.py capture IFNAME SECONDS ETHERTYPE_HEX    -> one hex frame per line on stdout
Capture prints "ready" on stderr once the socket is bound.
"""
from __future__ import annotations

import socket
import sys
import time


def main() -> int:
    mode, ifname = sys.argv[1], sys.argv[2]
    if mode == "send":
        gap = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
            s.bind((ifname, 0))
            for frame in sys.argv[3].split(","):
                s.send(bytes.fromhex(frame))
                if gap:
                    time.sleep(gap)
        return 0
    seconds, ethertype = float(sys.argv[3]), int(sys.argv[4], 16)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype)) as s:
        s.bind((ifname, 0))
        s.settimeout(0.1)
        print("ready", file=sys.stderr, flush=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data, addr = s.recvfrom(65535)
            except socket.timeout:
                continue
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            print(data.hex(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
