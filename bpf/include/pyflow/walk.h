/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The pipe walk, written once for every backend: XDP (datapath.bpf.c), the TC
 * egress pipes of replicated frames (tc_replicate.bpf.c) and the DPDK software
 * pipes (native/src/dpdk/pipeline.c). It decides, hop by hop, which pipe runs,
 * when counting starts, hit or miss, which forward applies, which clone session
 * is pending, the chosen port's egress pipe and the depth limit, and ends in one
 * verdict (enum pf_walk_verdict). The backend only carries the verdict out.
 *
 * Include after pyflow/packet.h, with PF_WALK_CTX defined as the backend's
 * context type and these defined (static, inlined):
 *
 *   const struct pf_pipe *pf_walk_pipe_cfg(PF_WALK_CTX *c, uint32_t pipe)      NULL: no such pipe
 *   const struct pf_entry *pf_walk_lookup(PF_WALK_CTX *c, struct pf_pkt *pkt, struct pf_walk *w,
 *                                         uint32_t pipe, const struct pf_pipe *cfg)   the entry hit or NULL;
 *        classifies a deferred MPEG-TS payload when the pipe's masks use it, then calls
 *        pf_walk_classified (so the fast path, which needs no class, pays nothing for DPI)
 *   void pf_walk_count_pipe(PF_WALK_CTX *c, uint32_t pipe, int hit)
 *   void pf_walk_count_entry(PF_WALK_CTX *c, const struct pf_entry *e)
 *   void pf_walk_count_dpi(PF_WALK_CTX *c, uint32_t cls, int dropped)
 *   int pf_walk_actions(PF_WALK_CTX *c, struct pf_pkt *pkt, const struct pf_actions *act)
 *   const struct pf_port *pf_walk_port_cfg(PF_WALK_CTX *c, uint32_t port)     NULL: no such port
 *   void pf_walk_observe(PF_WALK_CTX *c, struct pf_pkt *pkt, const struct pf_walk *w, uint32_t pipe,
 *                        const struct pf_entry *e)   after each lookup (capture points; not of a trace)
 *   PF_WALK_HOP(c, pkt, w)              one hop: pf_walk_hop, behind a global function on BPF
 *   PF_WALK_TRACE_HOP(c, pkt, w, hop, ret)   record a traced hop (pf_walk_trace_hop into the record)
 */
#ifndef PYFLOW_WALK_H
#define PYFLOW_WALK_H

#ifndef PF_NO_ENTRY
#define PF_NO_ENTRY 0xffffffffu
#endif
#ifndef PF_NO_PORT
#define PF_NO_PORT 0xffffffffu
#endif
/* a resubmit whose missed pipe is not known: counting starts at the first pipe whose misses go to the handler */
#define PF_RESUBMIT_PIPE_UNKNOWN 0xffffu
/* a copy of a copy may clone once more, then no more */
#ifndef PF_MAX_CLONE_DEPTH
#define PF_MAX_CLONE_DEPTH 2
#endif

/* What the walk asks of the original when clone copies are pending (pf_handoff.flags on ebpf). */
enum pf_walk_clone_flag {
	PF_WALK_EGRESS_DONE = 1,        /* the out port's egress pipe already ran */
	PF_WALK_DROP_ORIGINAL = 2,      /* only the copies leave */
	PF_WALK_TO_KERNEL = 4,          /* the original goes to the host stack */
};

enum pf_walk_dpi {
	PF_WALK_DPI_OFF = 0,            /* traced, resubmitted or replicated: the class is not counted */
	PF_WALK_DPI_ON = 1,             /* counted when the first lookup that needs the class classifies it */
	PF_WALK_DPI_COUNTED = 2,
};

/* State of one frame's walk; bytes where possible: on BPF it sits next to the
 * parse state on the 512-byte stack. */
struct pf_walk {
	uint32_t pipe;                  /* the pipe to run next / that ran last */
	uint32_t entry_id;              /* last entry hit, PF_NO_ENTRY if none */
	/* a resubmitted frame was already counted up to the pipe that missed, and
	 * already carries the actions of the pipes before it: it replays the walk
	 * silently until that pipe and counts (and acts) from there on */
	uint8_t counting;
	uint8_t egress_done;            /* the chosen port's egress pipe is running / ran */
	uint8_t trace;                  /* count nothing, record the walk */
	uint8_t hop_flags;              /* out: enum pf_trace_flag of this hop */
	uint8_t dpi;                    /* enum pf_walk_dpi */
	uint8_t clone_flags;            /* out, with PF_WALK_CLONES: enum pf_walk_clone_flag */
	uint8_t hops;                   /* out: pipes the verdict counts */
	uint8_t _pad;
	uint32_t resubmit_pipe;
	uint32_t out_port;              /* the port ingress chose (while its egress pipe runs), then the verdict's */
	/* clone session + 1 (0 = none) asked by an ingress / egress pipe's clone action: the last one wins */
	uint16_t clone_i2e;
	uint16_t clone_e2e;
	struct pf_fwd fwd;              /* out: where the pipe sends the frame */
	uint32_t drop_reason;           /* out: with PF_HOP_DROP / PF_WALK_DROP */
};

enum pf_hop_result {
	PF_HOP_FWD = 0,                 /* w->fwd says where to */
	PF_HOP_DROP = 1,                /* drop for w->drop_reason, this pipe included */
	PF_HOP_BAD_PIPE = 2,            /* no such pipe or not in use: PF_DROP_ACTION_FAIL, this pipe not included */
};

enum pf_walk_verdict {
	PF_WALK_CONTINUE = 0,           /* w->pipe runs next */
	PF_WALK_TX,                     /* to w->out_port */
	PF_WALK_DROP,                   /* for w->drop_reason */
	PF_WALK_MISS,                   /* to the miss handler, missed in w->pipe */
	PF_WALK_KERNEL,                 /* to the host stack */
	PF_WALK_FLOOD,                  /* to every member of session w->fwd.target but the ingress port */
	/* the copies of session w->clone_i2e - 1 (else w->clone_e2e - 1) are taken now, from the frame as
	 * it is; the original then does what w->clone_flags say, to w->out_port */
	PF_WALK_CLONES,
};

/* A walk from the root of the pipeline. */
PF_INLINE void pf_walk_init(struct pf_walk *w, uint32_t root, int trace, int resubmit,
					 uint32_t resubmit_pipe)
{
	__builtin_memset(w, 0, sizeof(*w));
	w->pipe = root;
	w->entry_id = PF_NO_ENTRY;
	w->trace = trace ? 1 : 0;
	w->counting = resubmit ? 0 : 1;
	w->dpi = trace || resubmit ? PF_WALK_DPI_OFF : PF_WALK_DPI_ON;
	w->resubmit_pipe = resubmit ? resubmit_pipe : PF_RESUBMIT_PIPE_UNKNOWN;
}

/* A replicated frame (a copy, or the original after its copies were taken) through the egress pipe of
 * port: counted, never traced, its MPEG-TS class already counted or not to be. */
PF_INLINE void pf_walk_init_egress(struct pf_walk *w, uint32_t port, uint32_t egress_pipe)
{
	pf_walk_init(w, egress_pipe, 0, 0, 0);
	w->dpi = PF_WALK_DPI_OFF;
	w->egress_done = 1;
	w->out_port = port;
}

PF_INLINE int pf_walk_is_trace(const struct pf_walk *w)
{
	return w->trace;
}

/* A lookup just classified the frame's deferred MPEG-TS payload: the class is counted once per frame. */
PF_INLINE void pf_walk_classified(PF_WALK_CTX *c, const struct pf_pkt *pkt, struct pf_walk *w)
{
	if (w->dpi == PF_WALK_DPI_ON) {
		pf_walk_count_dpi(c, pkt->f.mpegts_frame, 0);
		w->dpi = PF_WALK_DPI_COUNTED;
	}
}

/* Run pipe w->pipe on the frame: look up, count, note the clone, apply the entry's actions, decide the
 * forward. The hit entry is used in place (on BPF a map value stays valid for the whole run). */
PF_INLINE int pf_walk_hop(PF_WALK_CTX *c, struct pf_pkt *pkt, struct pf_walk *w)
{
	const struct pf_pipe *pipe_cfg;
	const struct pf_entry *ent;
	uint32_t pipe = w->pipe;
	int ret;

	w->hop_flags = 0;
	pipe_cfg = pf_walk_pipe_cfg(c, pipe);
	if (!pipe_cfg || !(pipe_cfg->flags & PF_PIPE_IN_USE))
		return PF_HOP_BAD_PIPE;
	/* the handler does not always say which pipe missed: then it is the
	 * first pipe on the way whose misses go to the handler */
	if (!w->counting && (pipe == w->resubmit_pipe ||
			     (w->resubmit_pipe == PF_RESUBMIT_PIPE_UNKNOWN && pipe_cfg->fwd_miss.type == PF_FWD_MISS)))
		w->counting = 1;
	ent = pf_walk_lookup(c, pkt, w, pipe, pipe_cfg);
	if (w->counting && !w->trace)
		pf_walk_count_pipe(c, pipe, ent != NULL);
	pf_walk_observe(c, pkt, w, pipe, ent);
	if (!ent) {
		w->fwd = pipe_cfg->fwd_miss;
		return PF_HOP_FWD;
	}
	w->entry_id = ent->id;
	w->hop_flags = PF_TRACE_HIT;
	w->fwd = ent->fwd.type == PF_FWD_DEFAULT ? pipe_cfg->fwd : ent->fwd;
	/* noted even while replaying: the copies are taken where the walk ends, and the first pass of a
	 * resubmitted frame ended at the miss handler, which takes none */
	if ((ent->act.flags & PF_ACT_CLONE) && ent->act.session < PF_MAX_SESSIONS) {
		if (pipe_cfg->domain == PF_DOMAIN_EGRESS || w->egress_done)
			w->clone_e2e = (uint16_t)(ent->act.session + 1);
		else
			w->clone_i2e = (uint16_t)(ent->act.session + 1);
	}
	if (!w->counting)
		return PF_HOP_FWD;
	if (!w->trace)
		pf_walk_count_entry(c, ent);
	if (!(ent->act.flags & ~(uint32_t)PF_ACT_CLONE))
		return PF_HOP_FWD;
	ret = pf_walk_actions(c, pkt, &ent->act);
	if (!ret)
		return PF_HOP_FWD;
	if (ret == PF_ACT_SAMPLED_DROP) {
		/* a trace shows the frame that is kept, and says it may be dropped */
		if (w->trace) {
			w->hop_flags |= PF_TRACE_SAMPLED;
			return PF_HOP_FWD;
		}
		if (w->dpi == PF_WALK_DPI_COUNTED)
			pf_walk_count_dpi(c, pkt->f.mpegts_frame, 1);
	}
	w->drop_reason = ret == PF_ACT_SAMPLED_DROP ? PF_DROP_SAMPLED : PF_DROP_ACTION_FAIL;
	return PF_HOP_DROP;
}

/* The frame leaves for w->out_port, with its E2E copies if one is pending. */
PF_INLINE int pf_walk_leave(struct pf_walk *w, uint32_t port)
{
	w->out_port = port;
	if (w->clone_e2e) {
		w->clone_flags = PF_WALK_EGRESS_DONE;
		return PF_WALK_CLONES;
	}
	return PF_WALK_TX;
}

/* Where w->fwd takes the frame after a hop: the next pipe, or the verdict. */
PF_INLINE int pf_walk_step(PF_WALK_CTX *c, struct pf_walk *w)
{
	const struct pf_port *port_cfg;
	uint32_t out;

	switch (w->fwd.type) {
	case PF_FWD_PIPE:
		w->pipe = w->fwd.target;
		return PF_WALK_CONTINUE;
	case PF_FWD_PORT:
		out = w->fwd.target;
		/* I2E copies are the frame as ingress leaves it: taken before the chosen port's egress pipe,
		 * which then runs for the original and each copy runs its own member port's */
		if (w->clone_i2e) {
			w->out_port = out;
			w->clone_flags = 0;
			return PF_WALK_CLONES;
		}
		if (!w->egress_done && out < PF_MAX_PORTS) {
			port_cfg = pf_walk_port_cfg(c, out);
			if (port_cfg && (port_cfg->flags & PF_PORT_EGRESS_PIPE)) {
				w->egress_done = 1;
				w->out_port = out;
				w->pipe = port_cfg->egress_pipe;
				return PF_WALK_CONTINUE;
			}
		}
		return pf_walk_leave(w, out);
	case PF_FWD_DEFAULT:
		/* an egress pipe without its own forward lets the frame go where ingress sent it */
		if (w->egress_done)
			return pf_walk_leave(w, w->out_port);
		/* fall through - no forward is a drop, but clones still leave (PSA) */
	case PF_FWD_DROP:
		if (w->clone_i2e || w->clone_e2e) {
			w->out_port = PF_NO_PORT;
			w->clone_flags = PF_WALK_DROP_ORIGINAL;
			return PF_WALK_CLONES;
		}
		w->drop_reason = PF_DROP_ACTION;
		return PF_WALK_DROP;
	case PF_FWD_MISS:
		return PF_WALK_MISS;
	case PF_FWD_KERNEL:
		if (w->clone_i2e || w->clone_e2e) {
			w->out_port = PF_NO_PORT;
			w->clone_flags = PF_WALK_TO_KERNEL;
			return PF_WALK_CLONES;
		}
		return PF_WALK_KERNEL;
	case PF_FWD_SESSION:
		return PF_WALK_FLOOD;
	default:
		w->drop_reason = PF_DROP_ACTION;
		return PF_WALK_DROP;
	}
}

/* The whole walk from w->pipe: at most PF_MAX_PIPE_DEPTH pipes, then the verdict; w->hops, w->pipe and
 * w->entry_id say where it ended. */
PF_INLINE int pf_walk_run(PF_WALK_CTX *c, struct pf_pkt *pkt, struct pf_walk *w)
{
	uint32_t hop;
	int ret;

	for (hop = 0; hop < PF_MAX_PIPE_DEPTH; hop++) {
		ret = PF_WALK_HOP(c, pkt, w);
		if (w->trace)
			PF_WALK_TRACE_HOP(c, pkt, w, hop, ret);
		if (ret != PF_HOP_FWD) {
			/* a pipe not in use is not counted in the hops */
			w->hops = ret == PF_HOP_BAD_PIPE ? hop : hop + 1;
			if (ret == PF_HOP_BAD_PIPE)
				w->drop_reason = PF_DROP_ACTION_FAIL;
			return PF_WALK_DROP;
		}
		ret = pf_walk_step(c, w);
		if (ret != PF_WALK_CONTINUE) {
			w->hops = hop + 1;
			return ret;
		}
	}
	w->hops = hop;
	w->drop_reason = PF_DROP_DEPTH;
	return PF_WALK_DROP;
}

/* One hop of a traced walk, into h (the record's hops[hop]). */
PF_INLINE void pf_walk_trace_hop(struct pf_trace_hop *h, const struct pf_pkt *pkt,
					      const struct pf_walk *w, int ret)
{
	h->pipe = w->pipe;
	h->entry_id = (w->hop_flags & PF_TRACE_HIT) ? w->entry_id : PF_NO_ENTRY;
	h->result = (uint32_t)ret;
	h->flags = w->hop_flags | (w->egress_done ? PF_TRACE_EGRESS : 0);
	if (ret == PF_HOP_BAD_PIPE)
		__builtin_memset(&h->fwd, 0, sizeof(h->fwd));
	else
		h->fwd = w->fwd;
	h->drop_reason = ret == PF_HOP_DROP ? w->drop_reason : ret == PF_HOP_BAD_PIPE ? PF_DROP_ACTION_FAIL : 0;
	h->_pad = 0;
	__builtin_memcpy(&h->after, &pkt->f, sizeof(h->after));
}

#endif
