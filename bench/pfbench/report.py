"""Text table and PNG plots from a results dict."""
from __future__ import annotations

import os


def _mpps(s: dict | None) -> str:
    if not s or s.get("median") is None:
        return "-"
    return f"{s['median'] / 1e6:6.3f} ({s['min'] / 1e6:.3f}-{s['max'] / 1e6:.3f})"


def render(results: dict) -> str:
    out = [f"pyflow benchmarks {results['timestamp']}  kernel {results['environment']['kernel']}  "
           f"{results['environment']['cpus']} CPUs ({results['environment']['cpu_model']})  "
           f"repeats {results['args']['repeats']}, median (min-max)"]
    parts = results["parts"]
    if "fastpath" in parts:
        out += render_fastpath(parts["fastpath"])
    if "setup" in parts:
        out += render_setup(parts["setup"])
    if "scale" in parts:
        out += render_scale(parts["scale"])
    if "dpdk" in parts:
        out += render_dpdk(parts["dpdk"])
    return "\n".join(out)


def render_fastpath(fp: dict) -> list[str]:
    sizes = [str(s) for s in fp["sizes"]]
    lines = ["", f"Fast path: Mpps through one core (generator + system + sink share it), {fp['flows']} flows, "
                 f"{fp['duration']} s x repeats"]
    head = f"{'system':30s}" + "".join(f"{s + 'B Mpps':>26s}" for s in sizes) + f"{'ns/pkt':>9s}{'vs ceiling':>12s}  rewrites  cores"
    lines += [head, "-" * len(head)]
    ceiling = fp["systems"].get("xdp-redirect-min", {}).get("pps", {}).get(sizes[0], {}).get("median")
    for name, e in fp["systems"].items():
        if e.get("skipped") and not any(e["pps"][s]["n"] for s in sizes):
            lines.append(f"{e['label']:30s} skipped: {e['skipped']}")
            continue
        med = e["pps"][sizes[0]]["median"]
        ns = f"{1e9 / med:9.0f}" if med else f"{'-':>9s}"
        rel = f"{med / ceiling * 100:11.0f}%" if med and ceiling else f"{'-':>12s}"
        rw = e.get("rewritten_frac", {}).get(sizes[0])
        rw_text = "yes" if rw and rw > 0.99 else ("no" if not e["rewrites"] else f"{(rw or 0) * 100:.0f}%!")
        lines.append(f"{e['label']:30s}" + "".join(f"{_mpps(e['pps'][s]):>26s}" for s in sizes)
                     + f"{ns}{rel}  {rw_text:8s}  {e['cores'].split(' ')[0]}")
        if e.get("entries_via"):
            lines.append(f"{'':24s} entries installed via {e['entries_via']}")
    profiled = [(n, e) for n, e in fp["systems"].items() if e.get("profile")]
    if profiled:
        lines += ["", "Where the time goes (bpf_stats run time per program, one extra run; ns/run, xlated insns)"]
        for name, e in profiled:
            progs = ", ".join(f"{p['name']} {p['ns_per_run']:.0f} ns/{p['insns_xlated']} insns"
                              for p in e["profile"]["programs"] if p["ns_per_run"] is not None)
            lines.append(f"  {e['label']:22s} {progs}")
    return lines


def render_setup(st: dict) -> list[str]:
    lines = ["", "Flow setup: first packet of new flows through miss -> install -> resubmit"]
    head = f"{'system':30s}{'flows/s (burst)':>26s}{'delivered':>11s}{'p50 us':>10s}{'p99 us':>10s}{'max us':>10s}"
    lines += [head, "-" * len(head)]
    for name, e in st["systems"].items():
        if e.get("skipped") and not e.get("rate", {}).get("n"):
            lines.append(f"{e['label']:30s} skipped: {e['skipped']}")
            continue
        rate = e.get("rate") or {}
        r = f"{rate['median']:8.0f} ({rate['min']:.0f}-{rate['max']:.0f})" if rate.get("n") else "-"
        lat = e.get("latency_us") or {}
        delivered = e.get("delivered_frac")
        lines.append(f"{e['label']:30s}{r:>26s}{(f'{delivered * 100:.1f}%' if delivered is not None else '-'):>11s}"
                     + "".join(f"{lat.get(k, 0) or 0:10.0f}" if lat.get(k) is not None else f"{'-':>10s}"
                               for k in ("p50", "p99", "max")))
    return lines


def render_scale(sc: dict) -> list[str]:
    lines = ["", "Scale: pyflow eBPF fast path vs installed entries"]
    if sc.get("skipped"):
        return lines + [f"skipped: {sc['skipped']}"]
    head = f"{'entries':>10s}{'64B Mpps':>26s}{'install/s (C API)':>20s}{'install/s (control)':>21s}{'B/entry':>9s}"
    lines += [head, "-" * len(head)]
    for row in sc["rows"]:
        ctl = row.get("install_rate_control")
        lines.append(f"{row['entries']:>10d}{_mpps(row.get('pps')):>26s}{row.get('install_rate_capi') or 0:20.0f}"
                     + (f"{ctl:21.0f}" if ctl else f"{row.get('control_skipped', '-')[:20]:>21s}")
                     + (f"{row['bytes_per_entry']:9.0f}" if row.get("bytes_per_entry") else f"{'-':>9s}"))
        if row.get("skipped"):
            lines.append(f"{'':10s} skipped: {row['skipped']}")
    if sc.get("notes"):
        lines += [f"  {n}" for n in sc["notes"]]
    return lines


def render_dpdk(dp: dict) -> list[str]:
    lines = ["", "DPDK: one lcore, vdev ports (net_pcap replaying the same frames in memory -> net_null)"]
    if dp.get("skipped"):
        return lines + [f"skipped: {dp['skipped']}"]
    for name, e in dp["systems"].items():
        if e.get("skipped"):
            lines.append(f"{e['label']:30s} skipped: {e['skipped']}")
        else:
            lines.append(f"{e['label']:30s}{_mpps(e['pps']):>26s} Mpps")
    return lines


def plots(results: dict, out_dir: str, stamp: str) -> list[str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:
        return []
    written = []
    parts = results["parts"]
    fp = parts.get("fastpath")
    if fp:
        names = [n for n, e in fp["systems"].items() if any(e["pps"][str(s)]["n"] for s in fp["sizes"])]
        if names:
            fig, ax = plt.subplots(figsize=(9, 4.5))
            width = 0.8 / len(fp["sizes"])
            for i, size in enumerate(fp["sizes"]):
                meds, lo, hi = [], [], []
                for n in names:
                    s = fp["systems"][n]["pps"][str(size)]
                    m = (s["median"] or 0) / 1e6
                    meds.append(m)
                    lo.append(m - (s["min"] or 0) / 1e6)
                    hi.append((s["max"] or 0) / 1e6 - m)
                xs = [x + i * width for x in range(len(names))]
                ax.bar(xs, meds, width, yerr=[lo, hi], capsize=3, label=f"{size} B")
            ax.set_xticks([x + width * (len(fp["sizes"]) - 1) / 2 for x in range(len(names))])
            ax.set_xticklabels([fp["systems"][n]["label"] for n in names], rotation=20, ha="right")
            ax.set_ylabel("Mpps (median, min-max)")
            ax.set_title("Fast path, one core shared by generator, system and sink")
            ax.legend()
            fig.tight_layout()
            written.append(_save(fig, out_dir, stamp, "throughput"))
            plt.close(fig)
    st = parts.get("setup")
    if st and any(e.get("latencies_us") for e in st["systems"].values()):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for n, e in st["systems"].items():
            lat = sorted(e.get("latencies_us") or [])
            if lat:
                ax.plot(lat, [(i + 1) / len(lat) for i in range(len(lat))], label=e["label"])
        ax.set_xscale("log")
        ax.set_xlabel("first-packet latency (us, log)")
        ax.set_ylabel("CDF")
        ax.set_title("Flow setup: first packet of a new flow (paced)")
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        written.append(_save(fig, out_dir, stamp, "setup_latency_cdf"))
        plt.close(fig)
    sc = parts.get("scale")
    if sc and sc.get("rows") and any(r.get("pps", {}).get("median") for r in sc["rows"]):
        rows = [r for r in sc["rows"] if r.get("pps", {}).get("median")]
        fig, ax = plt.subplots(figsize=(7, 4.5))
        xs = [r["entries"] for r in rows]
        meds = [r["pps"]["median"] / 1e6 for r in rows]
        ax.errorbar(xs, meds, yerr=[[m - r["pps"]["min"] / 1e6 for m, r in zip(meds, rows)],
                                    [r["pps"]["max"] / 1e6 - m for m, r in zip(meds, rows)]], marker="o", capsize=3)
        ax.set_xscale("log")
        ax.set_xlabel("installed entries (traffic spread over all of them)")
        ax.set_ylabel("Mpps, 64 B")
        ax.set_title("pyflow eBPF: pps vs installed flows")
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        written.append(_save(fig, out_dir, stamp, "scale"))
        plt.close(fig)
    return written


def _save(fig, out_dir, stamp, name) -> str:
    path = os.path.join(out_dir, f"{stamp}-{name}.png")
    fig.savefig(path, dpi=110)
    return path
