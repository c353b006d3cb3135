/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The walk's hooks over the datapath maps, shared by the XDP program and the
 * TC programs, then the walk itself (pyflow/walk.h). Include after
 * pyflow/datapath_maps.h, with these defined by the program:
 *   PF_WALK_CTX, PF_WALK_TRACE_HOP, pf_walk_count_dpi, pf_walk_observe (see walk.h)
 *   PF_WALK_LEN(ctx)      the frame's length, as the entry counters count it
 *   PF_WALK_HOP_FN        the name of the program's hop (a global function)
 *   PF_WALK_ACTIONS_FN    the name of the program's actions (a global function)
 *   PF_WALK_LOOKUP_CTX(ctx, w)   what pf_lookup_masked hands to PF_RESOLVE_MPEGTS (default: ctx)
 */
#ifndef PYFLOW_WALK_BPF_H
#define PYFLOW_WALK_BPF_H

struct pf_walk;
__noinline int PF_WALK_HOP_FN(PF_WALK_CTX *ctx, struct pf_pkt *pkt, struct pf_walk *w);
#define PF_WALK_HOP(c, pkt, w) PF_WALK_HOP_FN((c), (pkt), (w))

/* Actions and each hop are global functions: verified once each, so the
 * verifier's work stays linear in the pipe depth. */
__noinline int PF_WALK_ACTIONS_FN(PF_WALK_CTX *ctx, struct pf_pkt *pkt, const struct pf_actions *act)
{
	if (!pkt || !act)
		return PF_ACT_ERR_NO_HEADER;
	return pf_apply_actions(ctx, pkt, act);
}

static __always_inline int pf_walk_actions(PF_WALK_CTX *ctx, struct pf_pkt *pkt, const struct pf_actions *act)
{
	return PF_WALK_ACTIONS_FN(ctx, pkt, act);
}

static __always_inline const struct pf_pipe *pf_walk_pipe_cfg(PF_WALK_CTX *ctx, __u32 pipe)
{
	return bpf_map_lookup_elem(&pipes, &pipe);
}

#ifndef PF_WALK_LOOKUP_CTX
#define PF_WALK_LOOKUP_CTX(ctx, w) (ctx)
#endif

static __always_inline const struct pf_entry *pf_walk_lookup(PF_WALK_CTX *ctx, struct pf_pkt *pkt, struct pf_walk *w,
							     __u32 pipe, const struct pf_pipe *cfg)
{
	struct pf_flow_key *key;
	__u32 zero = 0;

	if (cfg->type == PF_PIPE_LPM || cfg->type == PF_PIPE_HASH)
		return pf_lookup_lpm_hash(pkt, pipe, cfg);
	/* the key is 104 bytes: a per-CPU buffer, not the stack */
	key = bpf_map_lookup_elem(&scratch_key, &zero);
	if (!key)
		return NULL;
	return pf_lookup_masked(PF_WALK_LOOKUP_CTX(ctx, w), pkt, pipe, cfg, key);
}

static __always_inline void pf_walk_count_pipe(PF_WALK_CTX *ctx, __u32 pipe, int hit)
{
	pf_count_pipe(pipe, hit);
}

static __always_inline void pf_walk_count_entry(PF_WALK_CTX *ctx, const struct pf_entry *e)
{
	pf_count_entry(pf_memo(), e->id, PF_WALK_LEN(ctx));
}

static __always_inline const struct pf_port *pf_walk_port_cfg(PF_WALK_CTX *ctx, __u32 port)
{
	return bpf_map_lookup_elem(&ports, &port);
}

#include "pyflow/walk.h"

/* The hit entry is used in place: a map value stays valid for the whole run. */
__noinline int PF_WALK_HOP_FN(PF_WALK_CTX *ctx, struct pf_pkt *pkt, struct pf_walk *w)
{
	if (!pkt || !w)
		return PF_HOP_BAD_PIPE;
	return pf_walk_hop(ctx, pkt, w);
}

#endif
