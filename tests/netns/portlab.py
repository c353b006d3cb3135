"""One namespace per config port: a veth whose root end pyflow binds and whose namespace end sends
and captures real frames. Used by the trace, capture and metrics tests, which run the shipped
configs as they are (their port names differ from the built-in lab topologies)."""
from __future__ import annotations

import os
import socket
import subprocess
import threading

from tests.pyflow_testing import wait_until


def _sh(*args, check=True):
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


class PortLab:
    def __init__(self, prefix: str, ports: list[str]):
        from pyflow.lab import load_xdp_pass

        self.prefix = prefix
        self.ports = {}
        self.created_ns: list[str] = []
        self.created_links: list[str] = []
        prog = load_xdp_pass()
        try:
            for i, port in enumerate(ports):
                ns, root = f"{prefix}n{i}", f"{prefix}r{i}"
                _sh("ip", "netns", "add", ns)
                self.created_ns.append(ns)
                _sh("ip", "link", "add", root, "type", "veth", "peer", "name", "eth0", "netns", ns)
                self.created_links.append(root)
                with open(f"/proc/sys/net/ipv6/conf/{root}/disable_ipv6", "w") as f:
                    f.write("1")
                _sh("ip", "link", "set", root, "up")
                for cmd in (["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
                            ["ip", "link", "set", "eth0", "up"], ["ethtool", "-K", "eth0", "tx", "off"]):
                    _sh("ip", "netns", "exec", ns, *cmd)
                # XDP_REDIRECT into a veth needs an XDP program on the receiving end
                from pyroute2 import NetNS
                with NetNS(ns, flags=0) as nsr:
                    nsr.link("set", index=nsr.link_lookup(ifname="eth0")[0], xdp_fd=prog)
                self.ports[port] = (ns, root)
        except BaseException:
            self.down()
            raise
        finally:
            os.close(prog)

    def port_args(self) -> list[str]:
        out = []
        for port, (_ns, root) in self.ports.items():
            out += ["--port", f"{port}={root}"]
        return out

    def _socket(self, port: str) -> socket.socket:
        from pyroute2 import netns

        s = netns.create_socket(self.ports[port][0], socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003),
                                flags=0)
        s.bind(("eth0", 0))
        return s

    def send(self, port: str, frames: list[bytes]) -> None:
        with self._socket(port) as s:
            for f in frames:
                s.send(f)

    def capture(self, ports=None) -> "Captures":
        return Captures(self, list(ports or self.ports))

    def down(self) -> None:
        for link in self.created_links:
            _sh("ip", "link", "del", link, check=False)
        for ns in self.created_ns:
            _sh("ip", "netns", "del", ns, check=False)
        self.created_links, self.created_ns = [], []


class Captures:
    """Frames arriving at each port's namespace end, collected on background threads."""

    def __init__(self, lab: PortLab, ports: list[str]):
        self.frames: dict[str, list[bytes]] = {p: [] for p in ports}
        self._stop = threading.Event()
        self._threads = []
        for p in ports:
            s = lab._socket(p)
            s.settimeout(0.05)
            t = threading.Thread(target=self._run, args=(s, self.frames[p]), daemon=True)
            t.start()
            self._threads.append((t, s))

    def _run(self, sock, sink):
        while not self._stop.is_set():
            try:
                data, addr = sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if addr[2] != socket.PACKET_OUTGOING:
                sink.append(data)

    def wait(self, want: dict[str, int], timeout: float = 5.0) -> None:
        """Until each port in `want` has received at least that many frames."""
        wait_until(lambda: {p: len(self.frames[p]) for p in want}, timeout,
                   until=lambda got: all(got[p] >= n for p, n in want.items()), what=f"frames per port {want}")

    def stop(self) -> dict[str, list[bytes]]:
        self._stop.set()
        for t, s in self._threads:
            t.join(timeout=2)
            s.close()
        return self.frames
