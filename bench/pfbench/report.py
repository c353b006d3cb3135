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
    if "doca" in parts:
        from .pyflow_doca import render_doca
        out += render_doca(parts["doca"])
    out += render_targets(parts)
    return "\n".join(out)


def _median(d: dict | None) -> float | None:
    return d.get("median") if d else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


# (figure, what it is measured against, target, higher is better); each value comes from the same run.
def target_rows(parts: dict) -> list[tuple[str, str, float | None, float, bool, str]]:
    rows = []
    fp = parts.get("fastpath")
    if fp:
        size = str(fp["sizes"][0])
        pps = {n: _median(e.get("pps", {}).get(size)) for n, e in fp["systems"].items()}
        rows.append((f"eBPF fast path, {size} B, {fp['flows']} flows", "/ XDP redirect (ceiling)",
                     _ratio(pps.get("pyflow-ebpf"), pps.get("xdp-redirect-min")), 0.80, True, "ratio"))
    sc = parts.get("scale")
    if sc and sc.get("rows"):
        by = {r["entries"]: _median(r.get("pps")) for r in sc["rows"]}
        lo, hi = min(by), max(by)
        if hi > lo:
            rows.append((f"eBPF fast path at {hi:,} entries", f"/ at {lo:,} entries", _ratio(by[hi], by[lo]), 0.75,
                         True, "ratio"))
        sampled = next((r for r in sc["rows"] if "install_rate_capi_batch" in r or "install_rate_control_batch" in r),
                       None)
        if sampled:
            rows.append(("installs, batched C API", "entries/s", sampled.get("install_rate_capi_batch"), 1e6, True,
                         "rate"))
            rows.append(("installs, control API batched (validated)", "entries/s",
                         sampled.get("install_rate_control_batch"), 2e5, True, "rate"))
    st = parts.get("setup")
    if st:
        for name, label in (("pyflow-ebpf", "eBPF"), ("pyflow-dpdk", "DPDK")):
            e = st["systems"].get(name)
            if not e:
                continue
            delivered = e.get("delivered_frac")
            note = f"{delivered * 100:.1f}% of first packets forwarded" if delivered is not None else "new flows/s"
            rate = _median(e.get("rate")) if delivered == 1.0 else None
            rows.append((f"new flows/s, one learner core, {label}", note, rate, 2.5e5, True, "rate"))
            rows.append((f"first-packet latency p99 (paced), {label}", "us", (e.get("latency_us") or {}).get("p99"),
                         100.0, False, "us"))
    dp = parts.get("dpdk")
    if dp:
        pps = {n: _median(e.get("pps")) for n, e in dp["systems"].items()}
        rows.append(("DPDK software pipes", "/ testpmd io", _ratio(pps.get("pyflow-dpdk"), pps.get("testpmd-io")),
                     0.5, True, "ratio"))
        rows.append(("DPDK software pipes", "/ testpmd mac", _ratio(pps.get("pyflow-dpdk"), pps.get("testpmd-mac")),
                     0.8, True, "ratio"))
    return rows


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if unit == "ratio" else f"{value:,.0f}"


def render_targets(parts: dict) -> list[str]:
    rows = target_rows(parts)
    if not rows:
        return []
    lines = ["", "Targets: each figure against its reference in this run (medians)"]
    head = f"{'figure':46s}{'against':>38s}{'now':>12s}{'target':>14s}  met"
    lines += [head, "-" * len(head)]
    for figure, against, value, target, higher, unit in rows:
        met = "-" if value is None else ("yes" if (value >= target if higher else value <= target) else "no")
        bound = ">=" if higher else "<="
        lines.append(f"{figure:46s}{against:>38s}{_fmt(value, unit):>12s}{bound + ' ' + _fmt(target, unit):>14s}  {met}")
    return lines


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


INSTALL_LABELS = (("capi_single", "C API, one pf_entry_add per entry"),
                  ("capi_batch", "C API, entry_add_batch (one call)"),
                  ("control_connect", "control API, one connection per request"),
                  ("control_persistent", "control API, one connection, one request per entry"),
                  ("control_batch", "control API, one batched entry_add request"))


def render_scale(sc: dict) -> list[str]:
    lines = ["", "Scale: pyflow eBPF fast path vs installed entries"]
    if sc.get("skipped"):
        return lines + [f"skipped: {sc['skipped']}"]
    head = f"{'entries':>10s}{'64B Mpps':>26s}{'install/s':>12s}{'B/entry':>9s}"
    lines += [head, "-" * len(head)]
    for row in sc["rows"]:
        lines.append(f"{row['entries']:>10d}{_mpps(row.get('pps')):>26s}{row.get('install_rate_capi') or 0:12.0f}"
                     + (f"{row['bytes_per_entry']:9.0f}" if row.get("bytes_per_entry") else f"{'-':>9s}"))
        if row.get("skipped"):
            lines.append(f"{'':10s} skipped: {row['skipped']}")
    if sc.get("notes"):
        lines += [f"  {n}" for n in sc["notes"]]
    sampled = next((r for r in sc["rows"] if any(f"install_rate_{k}" in r or f"install_skipped_{k}" in r
                                                 for k, _ in INSTALL_LABELS)), None)
    if sampled:
        lines += ["", f"Install rate, {sc.get('install_sample', 1000)} entries each way, same instance "
                      f"({sampled['entries']} entries installed)"]
        for key, label in INSTALL_LABELS:
            rate = sampled.get(f"install_rate_{key}")
            text = f"{rate:10.0f} /s" if rate else f"skipped: {sampled.get(f'install_skipped_{key}', '-')}"
            lines.append(f"  {label:52s} {text}")
    return lines


def render_dpdk(dp: dict) -> list[str]:
    lines = ["", "DPDK: one lcore, vdev ports (net_pcap replaying the same frames in memory -> net_null)"]
    if dp.get("skipped"):
        return lines + [f"skipped: {dp['skipped']}"]
    io = dp["systems"].get("testpmd-io", {}).get("pps", {}).get("median")
    for name, e in dp["systems"].items():
        if e.get("skipped") and not e.get("runs"):
            lines.append(f"{e['label']:30s} skipped: {e['skipped']}")
            continue
        med = e["pps"]["median"]
        rel = f"{med / io * 100:5.0f}% of io" if med and io else ""
        lines.append(f"{e['label']:30s}{_mpps(e['pps']):>26s} Mpps {1e9 / med if med else 0:7.1f} ns/pkt  {rel}")
        if e.get("learned") is not None:
            lines.append(f"{'':30s} packet-resubmit pipeline, {e['learned']}/{dp.get('flows')} flows learned through the "
                         f"miss path, {e['learned_hit_frac'] * 100:.1f}% of frames hit a learned entry")
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
        _plain_log_ticks(ax.xaxis)
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
        _plain_log_ticks(ax.xaxis)
        ax.set_xlabel("installed entries (traffic spread over all of them)")
        ax.set_ylabel("Mpps, 64 B")
        ax.set_title("pyflow eBPF: pps vs installed flows")
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        written.append(_save(fig, out_dir, stamp, "scale"))
        plt.close(fig)
    if sc and sc.get("rows"):
        sampled = next((r for r in sc["rows"] if any(f"install_rate_{k}" in r for k, _ in INSTALL_LABELS)), None)
        ways = [(label, sampled.get(f"install_rate_{k}")) for k, label in INSTALL_LABELS] if sampled else []
        if any(rate for _, rate in ways):
            fig, ax = plt.subplots(figsize=(8, 4))
            ys = list(range(len(ways)))
            rates = [rate or 0 for _, rate in ways]
            ax.barh(ys, rates, color=["#4c72b0" if "C API" in label else "#dd8452" for label, _ in ways])
            for y, (label, rate) in zip(ys, ways):
                ax.text(rate * 1.1 if rate else 1.5, y, f"{rate:,.0f}/s" if rate else "not available", va="center",
                        fontsize=8)
            ax.set_yticks(ys)
            ax.set_yticklabels([label for label, _ in ways], fontsize=8)
            ax.invert_yaxis()
            ax.set_xscale("log")
            _plain_log_ticks(ax.xaxis)
            ax.set_xlim(1, max(rates) * 8)
            ax.set_xlabel("entries installed per second (log)")
            ax.set_title(f"Install rate, {sc.get('install_sample', 1000)} entries each way, one instance")
            ax.grid(True, axis="x", which="both", alpha=0.3)
            fig.tight_layout()
            written.append(_save(fig, out_dir, stamp, "install_rate"))
            plt.close(fig)
    dp = parts.get("dpdk")
    if dp and any(e.get("pps", {}).get("median") for e in dp.get("systems", {}).values()):
        names = [n for n, e in dp["systems"].items() if e.get("pps", {}).get("median")]
        fig, ax = plt.subplots(figsize=(7, 4))
        meds = [dp["systems"][n]["pps"]["median"] / 1e6 for n in names]
        lo = [m - dp["systems"][n]["pps"]["min"] / 1e6 for m, n in zip(meds, names)]
        hi = [dp["systems"][n]["pps"]["max"] / 1e6 - m for m, n in zip(meds, names)]
        ax.bar(range(len(names)), meds, yerr=[lo, hi], capsize=3,
               color=["#dd8452" if n.startswith("pyflow") else "#4c72b0" for n in names])
        for x, (m, up) in enumerate(zip(meds, hi)):
            ax.text(x, m + up, f"{m:.1f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([dp["systems"][n]["label"] for n in names], rotation=15, ha="right")
        ax.set_ylabel("Mpps (median, min-max)")
        ax.set_title("DPDK, one forwarding lcore: net_pcap replay -> net_null")
        fig.tight_layout()
        written.append(_save(fig, out_dir, stamp, "dpdk"))
        plt.close(fig)
    return written


def _plain_log_ticks(axis) -> None:
    """Decades as plain numbers (10, 100, 1000) and no labels on the minor ticks, which otherwise collide."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _save(fig, out_dir, stamp, name) -> str:
    path = os.path.join(out_dir, f"{stamp}-{name}.png")
    fig.savefig(path, dpi=110)
    return path
