"""Network-namespace labs: real veth topologies to run pyflow against.

A lab is a set of namespaces, each behind one veth pair whose root-namespace
end is what pyflow binds (``--port NAME=IFNAME``). Everything a lab creates is
named with its prefix and recorded in /run/pyflow/labs/<prefix>.json, so
``pyflow lab down`` from another shell removes exactly that and nothing else.

XDP_REDIRECT into a veth is dropped unless the receiving end runs NAPI, which
it does only with an XDP program attached or GRO enabled (both verified on
kernel 6.18). The lab attaches a two-instruction XDP_PASS program to every
namespace end (``peer_mode="xdp"``, the default); ``peer_mode="gro"`` enables
GRO instead (it may coalesce TCP, so tests that count frames prefer XDP).

Namespace ends send with TX checksum offload off: a veth passes
CHECKSUM_PARTIAL skbs to its peer, and once XDP redirects such a frame the
"finish the checksum later" state is gone, so it would leave with a partial
L4 checksum. A real wire never carries those.
"""
from __future__ import annotations

import ctypes
import errno
import ipaddress
import json
import os
import socket
import struct
import subprocess
import time
from dataclasses import asdict, dataclass, field

from .errors import PyflowError, UsageError
from .paths import LAB_STATE_DIR, ensure_private_dir
NETNS_DIR = "/run/netns"
TOPOLOGIES = ("resubmit", "three-host", "ports")     # ports: one host per port of a config
MAX_IFNAME = 15
MAX_PREFIX = 8


class LabError(PyflowError):
    exit_code = 1


@dataclass
class Host:
    """One namespace and the veth pair that connects it to the root namespace."""

    name: str            # logical name: "user", "net", "h1"
    port: str            # config port name the root end is bound to
    netns: str           # namespace name
    ifname: str          # interface inside the namespace
    mac: str             # MAC of the namespace end
    ips: list[str]       # addresses of the namespace end (first is primary)
    root_ifname: str     # root-namespace end (what pyflow binds)
    root_mac: str = ""
    root_ifindex: int = 0

    @property
    def ip(self) -> str:
        """The primary address, without its prefix length."""
        return self.ips[0].split("/")[0]


@dataclass
class LabState:
    prefix: str
    topology: str
    peer_mode: str
    hosts: dict[str, Host] = field(default_factory=dict)
    created_netns: list[str] = field(default_factory=list)
    created_links: list[str] = field(default_factory=list)  # root-namespace ends
    created_at: float = 0.0


# ---------------------------------------------------------------------------
# A minimal XDP_PASS program, loaded with the bpf syscall directly: the lab must
# work before (and independently of) any compiled object in the package.

_SYS_BPF = 321  # x86_64
_BPF_PROG_LOAD = 5
_BPF_PROG_TYPE_XDP = 6
_XDP_PASS = 2
# r0 = XDP_PASS; exit
_XDP_PASS_INSNS = struct.pack("<BBhi", 0xB7, 0, 0, _XDP_PASS) + struct.pack("<BBhi", 0x95, 0, 0, 0)


def load_xdp_pass() -> int:
    """Load an XDP program that passes every frame; return its fd."""
    libc = ctypes.CDLL(None, use_errno=True)
    insns = ctypes.create_string_buffer(_XDP_PASS_INSNS)
    license_ = ctypes.create_string_buffer(b"GPL")
    name = b"pf_lab_pass"
    # union bpf_attr for BPF_PROG_LOAD, up to prog_name (offset 48, 16 bytes).
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<IIQQIIQII", attr, 0, _BPF_PROG_TYPE_XDP, len(_XDP_PASS_INSNS) // 8,
                     ctypes.addressof(insns), ctypes.addressof(license_), 0, 0, 0, 0, 0)
    attr[48:48 + len(name)] = name
    fd = libc.syscall(_SYS_BPF, _BPF_PROG_LOAD, attr, 128)
    if fd < 0:
        e = ctypes.get_errno()
        raise LabError(f"lab: cannot load the XDP_PASS program for veth peers: {os.strerror(e)}")
    return fd


# ---------------------------------------------------------------------------


def _ipr():
    from pyroute2 import IPRoute

    return IPRoute()


def _nsr(netns: str):
    from pyroute2 import NetNS

    return NetNS(netns, flags=0)


def _run(args: list[str]) -> None:
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode:
        raise LabError(f"lab: '{' '.join(args)}' failed: {r.stderr.strip()}")


def _netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def _state_path(prefix: str) -> str:
    return os.path.join(LAB_STATE_DIR, f"{prefix}.json")


def _topology_hosts(topology: str, prefix: str, ports: list[str] | None = None) -> list[Host]:
    if topology == "resubmit":
        users = [f"192.168.99.{i}/24" for i in range(101, 111)]
        return [
            Host("user", "vf0", f"{prefix}-user", "eth0", "", users, f"{prefix}-vf0"),
            Host("net", "uplink", f"{prefix}-net", "eth0", "", ["20.1.1.100/24"], f"{prefix}-up"),
        ]
    if topology == "three-host":
        return [Host(f"h{i}", f"p{i}", f"{prefix}-h{i}", "eth0", "", [f"10.0.0.{i}/24"], f"{prefix}-h{i}")
                for i in (1, 2, 3)]
    if topology == "ports":
        if not ports or len(ports) > 250:
            raise UsageError("lab: the ports topology needs 1..250 port names")
        hosts = []
        for i, port in enumerate(ports, 1):
            # interface names are at most 15 characters: a long port name becomes p<N>
            tail = port if len(f"{prefix}-{port}") <= MAX_IFNAME and port.replace("_", "").isalnum() else f"p{i}"
            hosts.append(Host(port, port, f"{prefix}-{tail}", "eth0", "", [f"10.0.0.{i}/24"], f"{prefix}-{tail}"))
        return hosts
    raise UsageError(f"--topology: expected one of {', '.join(TOPOLOGIES)}, got {topology!r}")


def check_prefix(prefix: str) -> None:
    if not prefix or len(prefix) > MAX_PREFIX or not prefix.replace("_", "").isalnum() or not prefix[0].isalpha():
        raise UsageError(f"--prefix: expected 1-{MAX_PREFIX} letters/digits starting with a letter, got {prefix!r}")


class Lab:
    """A namespace topology. Use as a context manager, or up()/down()."""

    def __init__(self, topology: str = "resubmit", prefix: str = "pfl", peer_mode: str = "xdp",
                 ports: list[str] | None = None):
        check_prefix(prefix)
        if peer_mode not in ("xdp", "gro"):
            raise UsageError(f"peer mode: expected xdp or gro, got {peer_mode!r}")
        self.state = LabState(prefix, topology, peer_mode)
        self._owns_state = False
        for h in _topology_hosts(topology, prefix, ports):
            if len(h.root_ifname) > MAX_IFNAME:
                raise UsageError(f"--prefix: {h.root_ifname!r} is longer than {MAX_IFNAME} characters")
            self.state.hosts[h.name] = h

    # -- accessors ---------------------------------------------------------
    @property
    def prefix(self) -> str:
        return self.state.prefix

    @property
    def hosts(self) -> dict[str, Host]:
        return self.state.hosts

    def host(self, name: str) -> Host:
        return self.state.hosts[name]

    @property
    def ports(self) -> dict[str, str]:
        """Config port name -> root-namespace interface."""
        return {h.port: h.root_ifname for h in self.state.hosts.values()}

    def port_args(self) -> list[str]:
        args = []
        for port, ifname in self.ports.items():
            args += ["--port", f"{port}={ifname}"]
        return args

    def describe(self) -> dict:
        return {"prefix": self.prefix, "topology": self.state.topology, "peer_mode": self.state.peer_mode,
                "ports": self.ports, "hosts": {k: asdict(v) for k, v in self.state.hosts.items()}}

    # -- lifecycle ---------------------------------------------------------
    def __enter__(self) -> "Lab":
        self.up()
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    def up(self) -> "Lab":
        if os.path.exists(_state_path(self.prefix)):
            raise LabError(f"lab: a lab with prefix {self.prefix!r} is already up "
                           f"(pyflow lab down --prefix {self.prefix})")
        for h in self.hosts.values():
            if _netns_exists(h.netns):
                raise LabError(f"lab: namespace {h.netns} already exists and is not ours; choose another --prefix")
        ensure_private_dir(LAB_STATE_DIR, "lab state directory")
        self._owns_state = True
        self.state.created_at = time.time()
        self._save()
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        self._save()
        return self

    def down(self) -> None:
        """Remove exactly what this lab created; safe to call twice."""
        errors = []
        with _ipr() as ipr:
            for ifname in list(self.state.created_links):
                idx = ipr.link_lookup(ifname=ifname)
                try:
                    if idx:
                        ipr.link("del", index=idx[0])
                except Exception as exc:  # keep removing the rest
                    errors.append(f"{ifname}: {exc}")
        for ns in list(self.state.created_netns):
            if _netns_exists(ns):
                try:
                    from pyroute2 import netns

                    netns.remove(ns)
                except Exception as exc:
                    errors.append(f"{ns}: {exc}")
        self.state.created_links.clear()
        self.state.created_netns.clear()
        if self._owns_state:
            try:
                os.unlink(_state_path(self.prefix))
            except FileNotFoundError:
                pass
        if errors:
            raise LabError("lab down: could not remove " + "; ".join(errors))

    def _save(self) -> None:
        tmp = _state_path(self.prefix) + ".tmp"
        with open(tmp, "w") as f:
            json.dump(asdict(self.state), f, indent=1)
        os.replace(tmp, _state_path(self.prefix))

    def _build(self) -> None:
        from pyroute2 import netns

        for h in self.hosts.values():
            netns.create(h.netns)
            self.state.created_netns.append(h.netns)
            self._save()
            # No IPv6 autoconfiguration noise (RS, DAD, MLD): counters must equal what tests send.
            _run(["ip", "netns", "exec", h.netns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                  "net.ipv6.conf.default.disable_ipv6=1"])
        with _ipr() as ipr:
            for h in self.hosts.values():
                ipr.link("add", ifname=h.root_ifname, kind="veth",
                         peer={"ifname": h.ifname, "net_ns_fd": h.netns})
                self.state.created_links.append(h.root_ifname)
                self._save()
                _write_sysctl(f"/proc/sys/net/ipv6/conf/{h.root_ifname}/disable_ipv6", "1")
                idx = ipr.link_lookup(ifname=h.root_ifname)[0]
                ipr.link("set", index=idx, state="up")
                link = ipr.get_links(idx)[0]
                h.root_mac = link.get("IFLA_ADDRESS")
                h.root_ifindex = idx
        prog_fd = load_xdp_pass() if self.state.peer_mode == "xdp" else -1
        try:
            for h in self.hosts.values():
                with _nsr(h.netns) as ns:
                    idx = ns.link_lookup(ifname=h.ifname)[0]
                    h.mac = ns.get_links(idx)[0].get("IFLA_ADDRESS")
                    ns.link("set", index=idx, state="up")
                    lo = ns.link_lookup(ifname="lo")[0]
                    ns.link("set", index=lo, state="up")
                    for cidr in h.ips:
                        addr, plen = cidr.split("/")
                        ns.addr("add", index=idx, address=addr, prefixlen=int(plen))
                    if prog_fd >= 0:
                        ns.link("set", index=idx, xdp_fd=prog_fd)
                # A veth hands the peer CHECKSUM_PARTIAL skbs; once XDP redirects the frame that state is
                # lost and the L4 checksum is never completed. Checksum in software, as a real wire would.
                features = ["tx", "off"] + (["gro", "on"] if self.state.peer_mode == "gro" else [])
                _run(["ip", "netns", "exec", h.netns, "ethtool", "-K", h.ifname, *features])
        finally:
            if prog_fd >= 0:
                os.close(prog_fd)  # the attachments keep the program alive
        self._routes()

    def _routes(self) -> None:
        """Static routes and neighbours so no ARP has to cross the datapath."""
        if self.state.topology == "resubmit":
            user, net = self.host("user"), self.host("net")
            with _nsr(user.netns) as ns:
                idx = ns.link_lookup(ifname=user.ifname)[0]
                ns.route("add", dst="20.0.0.0/8", oif=idx, scope="link")
                ns.neigh("add", dst="20.1.1.100", lladdr=net.mac, ifindex=idx, state="permanent")
            with _nsr(net.netns) as ns:
                idx = ns.link_lookup(ifname=net.ifname)[0]
                ns.route("add", dst="192.168.99.0/24", oif=idx, scope="link")
                for cidr in user.ips:
                    ns.neigh("add", dst=cidr.split("/")[0], lladdr=user.mac, ifindex=idx, state="permanent")
        else:
            for h in self.hosts.values():
                with _nsr(h.netns) as ns:
                    idx = ns.link_lookup(ifname=h.ifname)[0]
                    for other in self.hosts.values():
                        if other is not h:
                            ns.neigh("add", dst=other.ip, lladdr=other.mac,
                                     ifindex=idx, state="permanent")

    # -- traffic helpers (sockets created inside a namespace) ---------------
    def socket(self, host: str, family=socket.AF_INET, type_=socket.SOCK_DGRAM, proto=0) -> socket.socket:
        from pyroute2 import netns

        return netns.create_socket(self.host(host).netns, family, type_, proto, flags=0)

    def capture_socket(self, host: str) -> socket.socket:
        """A raw AF_PACKET socket bound to the host's interface: sees every frame that arrives."""
        h = self.host(host)
        s = self.socket(host, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        s.bind((h.ifname, 0))
        return s

    def send_frames(self, host: str, frames: list[bytes]) -> None:
        """Transmit raw Ethernet frames out of the host's interface."""
        h = self.host(host)
        with self.socket(host, socket.AF_PACKET, socket.SOCK_RAW, 0) as s:
            s.bind((h.ifname, 0))
            for f in frames:
                s.send(f)

    # -- recorded labs ------------------------------------------------------
    @classmethod
    def load(cls, prefix: str) -> "Lab":
        check_prefix(prefix)
        try:
            with open(_state_path(prefix)) as f:
                data = json.load(f)
        except FileNotFoundError:
            raise LabError(f"lab: no lab with prefix {prefix!r} is up (see 'pyflow lab list')") from None
        lab = cls.__new__(cls)
        hosts = {k: Host(**v) for k, v in data.pop("hosts").items()}
        lab.state = LabState(**data, hosts=hosts)
        lab._owns_state = True
        return lab


def list_labs() -> list[dict]:
    out = []
    try:
        names = sorted(os.listdir(LAB_STATE_DIR))
    except FileNotFoundError:
        return out
    for n in names:
        if n.endswith(".json"):
            try:
                lab = Lab.load(n[:-5])
            except (LabError, ValueError, TypeError, KeyError):
                continue
            d = lab.describe()
            d["alive"] = all(_netns_exists(h.netns) for h in lab.hosts.values())
            out.append(d)
    return out


def _write_sysctl(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def ip_add(addr: str, delta: str) -> str:
    """Bytewise add with carry, as the miss policy's `src + 1.1.1.1` does."""
    return str(ipaddress.IPv4Address((int(ipaddress.IPv4Address(addr)) + int(ipaddress.IPv4Address(delta)))
                                     & 0xFFFFFFFF))


# ---------------------------------------------------------------------------
# Frames: what tests and the demo check on the far side.

def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def parse_frame(frame: bytes) -> dict | None:
    """Ethernet (+VLAN/MPLS) / IPv4 / UDP|TCP|ICMP fields, with checksum verdicts. None if not IPv4."""
    if len(frame) < 14:
        return None
    out: dict = {"eth_dst": frame[0:6].hex(":"), "eth_src": frame[6:12].hex(":"), "vlans": [], "mpls": []}
    etype, off = struct.unpack("!H", frame[12:14])[0], 14
    while etype in (0x8100, 0x88A8) and len(frame) >= off + 4:
        tci, etype = struct.unpack("!HH", frame[off:off + 4])
        out["vlans"].append(tci & 0x0FFF)
        off += 4
    if etype == 0x8847:
        while len(frame) >= off + 4:
            word = struct.unpack("!I", frame[off:off + 4])[0]
            out["mpls"].append({"label": word >> 12, "tc": (word >> 9) & 7, "s": (word >> 8) & 1, "ttl": word & 0xFF})
            off += 4
            if word & 0x100:
                break
        etype = 0x0800 if len(frame) > off and frame[off] >> 4 == 4 else 0
    out["eth_type"] = etype
    if etype != 0x0800 or len(frame) < off + 20:
        return out if out["mpls"] or out["vlans"] else None
    ihl = (frame[off] & 0x0F) * 4
    ip = frame[off:off + ihl]
    total_len = struct.unpack("!H", ip[2:4])[0]
    out.update(ip_src=socket.inet_ntoa(ip[12:16]), ip_dst=socket.inet_ntoa(ip[16:20]), ttl=ip[8], proto=ip[9],
               dscp=ip[1] >> 2, ip_csum_ok=_csum(ip) == 0xFFFF)
    l4 = frame[off + ihl:off + total_len]
    if ip[9] in (6, 17) and len(l4) >= 8:
        out["sport"], out["dport"] = struct.unpack("!HH", l4[:4])
        pseudo = ip[12:20] + struct.pack("!BBH", 0, ip[9], len(l4))
        stored = struct.unpack("!H", l4[6:8])[0] if ip[9] == 17 else None
        out["l4_csum_ok"] = (stored == 0) or _csum(pseudo + l4) == 0xFFFF
        out["udp_csum"] = stored
        out["payload"] = l4[8:] if ip[9] == 17 else l4[(l4[12] >> 4) * 4:]
    elif ip[9] == 1:
        out["l4_csum_ok"] = _csum(l4) == 0xFFFF
        out["payload"] = l4[8:]
    return out


class Capture:
    """Collect frames arriving at a namespace interface on a background thread."""

    def __init__(self, lab: "Lab", host: str):
        import threading

        self.sock = lab.capture_socket(host)
        self.sock.settimeout(0.1)
        self.frames: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if addr[2] != socket.PACKET_OUTGOING:
                self.frames.append(data)

    def stop(self) -> list[bytes]:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
        return self.frames

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------------------
# Frame builders (correct checksums) for tests and the demo.

def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of data, as written into a header."""
    return ~_csum(data) & 0xFFFF


def mac_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def ipv4_udp(src: str, dst: str, payload: bytes, sport: int = 5000, dport: int = 6000, ttl: int = 64,
             ident: int = 1) -> bytes:
    """An IPv4/UDP packet with correct checksums."""
    udp_len = 8 + len(payload)
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    udp = udp[:6] + struct.pack("!H", checksum(s + d + struct.pack("!BBH", 0, 17, udp_len) + udp) or 0xFFFF) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, ident & 0xFFFF, 0, ttl, 17, 0, s, d)
    return ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:] + udp


def eth(dst_mac: str, src_mac: str, ethertype: int, body: bytes) -> bytes:
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + struct.pack("!H", ethertype) + body


def mpls(labels: list[int], body: bytes, ttl: int = 64) -> bytes:
    out = b""
    for i, label in enumerate(labels):
        bottom = 1 if i == len(labels) - 1 else 0
        out += struct.pack("!I", (label << 12) | (bottom << 8) | ttl)
    return out + body


def payload_tag(tag: str, seq: int) -> bytes:
    return f"pfl {tag} {seq:06d}".encode().ljust(32, b".")


def read_tag(parsed: dict) -> tuple[str, int] | None:
    data = parsed.get("payload", b"")
    if not data.startswith(b"pfl "):
        return None
    _, tag, seq = data.split(b".")[0].split(b" ")[:3]
    return tag.decode(), int(seq)


class UdpSink:
    """A bound UDP socket in a namespace: the host stack accepts the frames instead of answering ICMP."""

    def __init__(self, lab, host: str, port: int):
        self.sock = lab.socket(host)
        self.sock.bind((lab.host(host).ip, port))

    def close(self):
        self.sock.close()
