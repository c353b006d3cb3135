"""A miss storm generator, run inside a lab namespace: frames whose every source address is new, from one
AF_PACKET socket as fast as it goes, for a number of seconds. Prints the number of frames sent.

usage: storm.py IFNAME SRC_MAC DST_MAC SECONDS [FIRST_INDEX]
"""
import errno
import socket
import struct
import sys
import time


def csum(b: bytes) -> int:
    s = sum(struct.unpack("!10H", b))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def main() -> None:
    ifname, src_mac, dst_mac, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    first = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    eth = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", "")) + b"\x08\x00"
    payload = b"PFMISS" + bytes(22)
    udp = struct.pack("!HHHH", 5000, 5789, 8 + len(payload), 0) + payload
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.bind((ifname, 0))
    sent, end = 0, time.monotonic() + seconds
    while True:
        if sent % 256 == 0 and time.monotonic() >= end:
            break
        i = first + sent
        src = bytes([10, 128 + (i >> 16 & 0x3F), i >> 8 & 0xFF, i & 0xFF])
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0, src, bytes([20, 1, 1, 100]))
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        try:
            s.send(eth + ip + udp)
        except BlockingIOError:
            continue
        except OSError as exc:      # the veth's queue is full for a moment: as fast as it goes means retrying
            if exc.errno != errno.ENOBUFS:
                raise
            continue
        sent += 1
    print(sent, flush=True)


main()
