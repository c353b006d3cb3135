"""Observability commands: `pyflow trace`, `pyflow capture`, `pyflow exporter`.

Registered on the main group by pyflow/cli.py; kept here so the datapath-debugging
commands live together.
"""
from __future__ import annotations

import sys

import click

from .cli import INSTANCE, OUTPUT, _default_instance, _emit, cli
from .errors import UsageError


def _frame(hex_text, pcap, index, fields, ports=None) -> bytes:
    from .frames import build_frame, frame_from_hex, frame_from_pcap

    given = [x for x in (hex_text, pcap, " ".join(fields) if fields else None) if x]
    if len(given) != 1:
        raise UsageError("packet: give exactly one of FIELD=VALUE..., --hex HEX or --pcap FILE [--index N]")
    if hex_text:
        return frame_from_hex(hex_text)
    if pcap:
        return frame_from_pcap(pcap, index)
    return build_frame(" ".join(fields), ports)


@cli.command(context_settings={"ignore_unknown_options": False})
@INSTANCE
@click.option("-j", "--config", "config_path", default=None, metavar="FILE",
              help="Trace on a throwaway instance of this config instead of a running one (ebpf, root).")
@click.option("-p", "--port", required=True, metavar="NAME|ID", help="Ingress port of the frame.")
@click.option("--hex", "hex_text", default=None, metavar="HEX", help="The frame as hex bytes.")
@click.option("--pcap", default=None, metavar="FILE", help="Take the frame from a pcap/pcapng file.")
@click.option("--index", type=int, default=0, show_default=True, help="Which frame of --pcap (from 0).")
@OUTPUT
@click.argument("fields", nargs=-1)
def trace(instance, config_path, port, hex_text, pcap, index, output, fields):
    """What the loaded datapath does with one frame, pipe by pipe (counts nothing, learns nothing).

    The frame is FIELD=VALUE... with the config's field names (e.g. ipv4.dst=10.0.0.2 l4.dport=80
    mpegts=psi), --hex, or --pcap FILE --index N.
    """
    from . import trace as trace_mod

    frame = _frame(hex_text, pcap, index, fields)
    if config_path:
        if instance:
            raise UsageError("trace: give --instance (a running instance) or --config (a throwaway one), not both")
        result = trace_mod.trace_config(config_path, port, frame)
    else:
        from .control import ControlClient

        result = ControlClient(_default_instance(instance)).request("trace", port=port, frame=frame.hex())
    _emit(result, output, trace_mod.format_text(result))


@cli.command()
@INSTANCE
@click.option("--listen", default="127.0.0.1:9464", show_default=True, metavar="ADDR:PORT",
              help="Where to serve /metrics.")
@click.option("-d", "--duration", type=float, default=None, metavar="S", help="Stop after S seconds.")
def exporter(instance, listen, duration):
    """Serve a running instance's counters as Prometheus metrics (read over its control socket)."""
    from .metrics import parse_listen, serve_remote

    parse_listen(listen)
    serve_remote(_default_instance(instance), listen, duration)


@cli.command()
@INSTANCE
@click.option("-w", "--write", "path", required=True, metavar="FILE", help="pcap file to write (- for stdout).")
@click.option("--at", "points", multiple=True, metavar="POINT",
              help="ingress, egress, drop, hit:PIPE, miss:PIPE (repeatable; default ingress).")
@click.option("--entry", default=None, metavar="NAME", help="Only frames that hit this entry.")
@click.option("-c", "--count", type=int, default=None, help="Stop after this many frames.")
@click.option("-d", "--duration", type=float, default=None, metavar="S", help="Stop after S seconds.")
@click.option("--snaplen", type=int, default=2048, show_default=True, help="Bytes kept of each frame.")
@click.option("--format", "fmt", type=click.Choice(["pcap", "pcapng"]), default="pcapng", show_default=True)
def capture(instance, path, points, entry, count, duration, snaplen, fmt):
    """Capture frames at pipe points of a running instance (ebpf) into a pcap/pcapng file."""
    from .capture import capture_remote

    n = capture_remote(_default_instance(instance), path, list(points) or ["ingress"], entry, count, duration,
                       snaplen, fmt)
    print(f"capture: {n} frame(s) written to {path}", file=sys.stderr)
