"""Part 1: single-core fast-path pps through the packet-resubmit pipeline with learned entries vs the peers."""
from __future__ import annotations

from .common import log, summary
from .measure import throughput
from .profile import profile_run
from .traffic import flow_sources


def run_fastpath(ctx) -> dict:
    flows = flow_sources(ctx.args.flows)
    systems = ctx.fastpath_systems()
    results = {"sizes": ctx.sizes, "flows": len(flows), "duration": ctx.args.duration, "batch": ctx.args.batch,
               "systems": {}}
    active = []
    for system in systems:
        entry = {"label": system.label, "description": system.description, "cores": system.cores,
                 "rewrites": system.rewrites, "runs": {str(s): [] for s in ctx.sizes}}
        why = system.unavailable()
        if why:
            entry["skipped"] = why
            log(f"fastpath {system.name}: skipped: {why}")
        else:
            active.append(system)
        results["systems"][system.name] = entry
    # Round-robin over systems inside each repetition so slow drifts of the shared machine hit all alike.
    for rep in range(ctx.args.repeats):
        for system in list(active):
            entry = results["systems"][system.name]
            try:
                system.setup(ctx.lab, flows)
                for size in ctx.sizes:
                    m = throughput(ctx.lab, system, size, len(flows), ctx.args.duration, ctx.args.batch)
                    entry["runs"][str(size)].append(m)
                    log(f"fastpath rep {rep + 1}/{ctx.args.repeats} {system.name:18s} {size:5d}B "
                        f"{m['pps'] / 1e6:7.3f} Mpps (offered {m['offered_pps'] / 1e6:.3f})")
                if getattr(system, "entries_via", None):
                    entry["entries_via"] = system.entries_via
                if rep == ctx.args.repeats - 1 and not ctx.args.no_profile:
                    entry["profile"] = _profile(ctx, system, flows)
            except Exception as exc:
                entry["skipped"] = f"{type(exc).__name__}: {exc}"
                log(f"fastpath {system.name}: skipped: {entry['skipped']}")
                active.remove(system)
            finally:
                try:
                    system.teardown(ctx.lab)
                except Exception as exc:
                    log(f"fastpath {system.name}: teardown: {exc}")
    for entry in results["systems"].values():
        entry["pps"] = {size: summary([m["pps"] for m in runs]) for size, runs in entry["runs"].items()}
        entry["rewritten_frac"] = {size: summary([m["rewritten_frac"] for m in runs])["median"]
                                   for size, runs in entry["runs"].items()}
    return results


def _profile(ctx, system, flows) -> dict | None:
    size = ctx.sizes[0]
    try:
        prof = profile_run(lambda: throughput(ctx.lab, system, size, len(flows), min(1.0, ctx.args.duration),
                                              ctx.args.batch, warmup=0))
    except Exception as exc:
        log(f"profile {system.name}: {exc}")
        return None
    return {"size": size, "pps_with_stats": prof["result"]["pps"], "programs": prof["programs"]}
