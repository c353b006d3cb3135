// SPDX-License-Identifier: BSD-2-Clause
/*
 * The pipe walk of the software pipes: parse, look up, apply actions, forward.
 * The packet semantics come from bpf/include/pyflow/packet.h (the same code
 * the XDP datapath runs); only the frame handle is an mbuf here.
 */
#ifdef PF_HAVE_DPDK
#include <rte_mbuf.h>
#include <rte_random.h>
#include "dpdk.h"

/* packet.h's frame hooks for mbufs: the frame is one contiguous segment. */
static inline int pfd_mbuf_adjust_head(struct rte_mbuf *m, int delta)
{
	if (delta < 0)
		return rte_pktmbuf_prepend(m, (uint16_t)-delta) ? 0 : -1;
	if (delta > 0)
		return rte_pktmbuf_adj(m, (uint16_t)delta) ? 0 : -1;
	return 0;
}

#define PF_PKT_CTX struct rte_mbuf
#define PF_PKT_DATA(m) rte_pktmbuf_mtod((m), uint8_t *)
#define PF_PKT_DATA_END(m) (rte_pktmbuf_mtod((m), uint8_t *) + rte_pktmbuf_data_len(m))
#define PF_PKT_ADJUST_HEAD(m, d) pfd_mbuf_adjust_head((m), (d))
#define PF_PKT_RANDOM() ((uint32_t)rte_rand())
/* DSCP -> MPLS TC as on XDP (pf_dscp_tc in datapath.bpf.c): 0 = class selector, tc + 1 otherwise.
 * Process-wide: the EAL allows one DPDK instance per process. */
static uint8_t pfd_dscp_tc[64];
#define PF_DSCP_TO_TC(dscp) \
	(pfd_dscp_tc[(dscp) & 63] ? (uint32_t)pfd_dscp_tc[(dscp) & 63] - 1 : ((uint32_t)(dscp) >> 3) & 0x7)
#include "pyflow/packet.h"

int pfd_dscp_tc_set(pf_instance *inst, const uint8_t *map, struct pf_error *err)
{
	(void)inst;
	for (int d = 0; d < 64; d++)
		if (map[d] != 0xff && map[d] > 7)
			return pf_err(err, -EINVAL, "dscp %d: traffic class %u out of range 0..7", d, map[d]);
	for (int d = 0; d < 64; d++)
		pfd_dscp_tc[d] = map[d] == 0xff ? 0 : map[d] + 1;
	return 0;
}

/* The walk's context on the software pipes (PF_WALK_CTX of pyflow/walk.h). */
struct walk {
	struct pfd *d;
	struct pfd_slot_counters *c;
	struct pfd_outputs *out;
	struct pf_verdict *v;
	struct rte_mbuf *m;             /* the frame being walked */
	uint32_t in_port;               /* where it came in */
	uint32_t cport;                 /* the port its drops are counted on: in_port, or the port a copy leaves */
	uint64_t now;
	struct pf_trace *trace;         /* pyflow trace: count nothing, record the walk */
};

struct pf_walk;
static void pfd_trace_hop(struct walk *c, const struct pf_pkt *pkt, const struct pf_walk *w, uint32_t hop, int ret);

#define PF_WALK_CTX struct walk
#define PF_WALK_HOP(c, pkt, w) pf_walk_hop((c), (pkt), (w))
#define PF_WALK_TRACE_HOP(c, pkt, w, hop, ret) pfd_trace_hop((c), (pkt), (w), (hop), (ret))

static inline const struct pf_pipe *pf_walk_pipe_cfg(struct walk *c, uint32_t pipe)
{
	return pipe < PF_MAX_PIPES ? &c->d->pipes[pipe].cfg : NULL;
}

/* As the XDP lookup: a deferred MPEG-TS payload is classified when the pipe's masks use the class. */
static inline void pf_walk_classified(struct walk *c, const struct pf_pkt *pkt, struct pf_walk *w);

static inline const struct pf_entry *pf_walk_lookup(struct walk *c, struct pf_pkt *pkt, struct pf_walk *w,
						    uint32_t pipe, const struct pf_pipe *cfg)
{
	const struct pfd_pipe *pp = &c->d->pipes[pipe];
	uint32_t id;

	if (pkt->mpegts_deferred && (cfg->type == PF_PIPE_BASIC || cfg->type == PF_PIPE_CONTROL)) {
		for (uint32_t k = 0; k < pp->nmasks && k < PF_MAX_MASKS; k++) {
			if (pp->masks[k].mpegts_frame) {
				pf_pkt_mpegts(PF_PKT_DATA(c->m), PF_PKT_DATA_END(c->m), pkt);
				pf_walk_classified(c, pkt, w);
				break;
			}
		}
	}
	id = pfd_lookup(c->d, pipe, &pkt->f, cfg->type == PF_PIPE_HASH ? pf_flow_hash(&pkt->f) : 0);
	return id == PFD_NO_ENTRY ? NULL : &c->d->entries[id].e;
}

static inline void pf_walk_count_pipe(struct walk *c, uint32_t pipe, int hit)
{
	if (hit)
		c->c->pipes[pipe].hits++;
	else
		c->c->pipes[pipe].misses++;
}

static inline void pf_walk_count_entry(struct walk *c, const struct pf_entry *e)
{
	struct pfd_entry *pe = &c->d->entries[e->id];

	c->c->entries[e->id].packets++;
	c->c->entries[e->id].bytes += rte_pktmbuf_pkt_len(c->m);
	if (!c->now)
		c->now = pf_now_ns();
	/* a shared line: write at most once per millisecond, and only forward (another lcore's burst may be
	 * stamped later than this one) */
	if ((int64_t)(c->now - pe->last_seen_ns) > 1000000)
		pe->last_seen_ns = c->now;
}

static inline void pf_walk_count_dpi(struct walk *c, uint32_t cls, int dropped)
{
	if (dropped)
		c->c->dpi.dropped[cls & 3]++;
	else
		c->c->dpi.frames[cls & 3]++;
}

static inline int pf_walk_actions(struct walk *c, struct pf_pkt *pkt, const struct pf_actions *act)
{
	return pf_apply_actions(c->m, pkt, act);
}

static inline const struct pf_port *pf_walk_port_cfg(struct walk *c, uint32_t port)
{
	return port < PF_MAX_PORTS ? &c->d->ports[port].cfg : NULL;
}

static inline void pf_walk_observe(struct walk *c, struct pf_pkt *pkt, const struct pf_walk *w, uint32_t pipe,
				   const struct pf_entry *e)
{
	(void)c, (void)pkt, (void)w, (void)pipe, (void)e;
}

#include "pyflow/walk.h"

static void pfd_trace_hop(struct walk *c, const struct pf_pkt *pkt, const struct pf_walk *w, uint32_t hop, int ret)
{
	if (!c->trace || hop >= PF_MAX_PIPE_DEPTH)
		return;
	pf_walk_trace_hop(&c->trace->hops[hop], pkt, w, ret);
	c->trace->nhops = hop + 1;
}

/* ---- what the verdicts do with an mbuf ---- */

static void emit(struct walk *w, uint32_t port, struct rte_mbuf *m)
{
	if (w->out->n < RTE_DIM(w->out->mbufs)) {
		w->out->ports[w->out->n] = port;
		w->out->mbufs[w->out->n++] = m;
	} else {
		if (!w->trace)
			w->c->ports[w->cport].drops[PF_DROP_TX_FAIL]++;
		rte_pktmbuf_free(m);
	}
}

static void set_verdict(struct pf_verdict *v, uint32_t kind, uint32_t out_port, uint32_t reason, uint32_t pipe,
			uint32_t entry_id, uint32_t hops)
{
	*v = (struct pf_verdict){ .kind = kind, .out_port = out_port, .drop_reason = reason, .last_pipe = pipe,
				  .entry_id = entry_id, .hops = hops };
}

static void drop(struct walk *w, struct rte_mbuf *m, uint32_t reason, uint32_t pipe, uint32_t entry_id, uint32_t hops)
{
	set_verdict(w->v, PF_VERDICT_DROP, 0, reason, pipe, entry_id, hops);
	if (!w->trace)
		w->c->ports[w->cport].drops[reason]++;
	rte_pktmbuf_free(m);
}

static void tx(struct walk *w, struct rte_mbuf *m, uint32_t out_port, uint32_t pipe, uint32_t entry_id, uint32_t hops)
{
	if (out_port >= PF_MAX_PORTS || !w->d->ports[out_port].in_use) {
		drop(w, m, PF_DROP_TX_FAIL, pipe, entry_id, hops);
		return;
	}
	set_verdict(w->v, PF_VERDICT_TX, out_port, 0, pipe, entry_id, hops);
	emit(w, out_port, m);
}

static void egress_walk(struct walk *parent, struct rte_mbuf *m, uint32_t port, uint8_t path, uint32_t depth,
			uint32_t truncate, bool egress_done);

/* Copies of m (left alone) to the members of a session. A group's (path NORMAL: fwd session:N) go to
 * every member but the ingress port, straight out as XDP's broadcast; a clone session's (path CLONE_*)
 * each run their member port's egress pipe, as TC makes them on ebpf (tc_replicate.bpf.c). */
static void replicate(struct walk *w, const struct rte_mbuf *m, uint32_t session, uint8_t path, uint32_t depth)
{
	const struct pf_session *s;

	if (session >= PF_MAX_SESSIONS)
		return;
	s = &w->d->sessions[session];
	for (uint32_t i = 0; i < s->nmembers && i < PF_MAX_SESSION_MEMBERS; i++) {
		const struct pf_session_member *mb = &s->members[i];
		struct rte_mbuf *copy;

		if (!mb->in_use || mb->port >= PF_MAX_PORTS || (path == PF_PATH_NORMAL && mb->port == w->in_port))
			continue;
		copy = w->d->ports[mb->port].in_use ? rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX) : NULL;
		if (!copy)
			w->c->ports[mb->port].drops[PF_DROP_TX_FAIL]++;
		else if (path == PF_PATH_NORMAL)
			emit(w, mb->port, copy);
		else
			egress_walk(w, copy, mb->port, path, depth, mb->truncate, false);
	}
}

static int parse_mbuf(struct rte_mbuf *m, struct pf_pkt *pkt)
{
	pf_pkt_clear(pkt);
	if (!rte_pktmbuf_is_contiguous(m) && rte_pktmbuf_linearize(m))
		return PF_PARSE_ERR_ETH;
	return pf_parse_ex(PF_PKT_DATA(m), PF_PKT_DATA_END(m), pkt, PF_PARSE_DEFER_MPEGTS);
}

/* A replicated frame (a copy, or the original once its copies are taken) through the egress pipe of the
 * port it leaves by, as pf_tc_egress does on ebpf: counted, not traced, its drops counted on that port;
 * a copy is truncated as it leaves (the egress pipe saw it whole). */
static void egress_walk(struct walk *parent, struct rte_mbuf *m, uint32_t port, uint8_t path, uint32_t depth,
			uint32_t truncate, bool egress_done)
{
	struct pf_verdict v;
	struct walk c = { .d = parent->d, .c = parent->c, .out = parent->out, .v = &v, .m = m,
			  .in_port = parent->in_port, .cport = port, .now = parent->now };
	const struct pfd_port *pp = &c.d->ports[port];
	uint32_t out = port;

	if (!egress_done && (pp->cfg.flags & PF_PORT_EGRESS_PIPE)) {
		struct pf_walk w;
		struct pf_pkt pkt;

		if (parse_mbuf(m, &pkt)) {
			drop(&c, m, PF_DROP_MALFORMED, pp->cfg.egress_pipe, PFD_NO_ENTRY, 0);
			return;
		}
		pkt.f.port = c.in_port;
		pkt.f.packet_path = path;
		pf_walk_init_egress(&w, port, pp->cfg.egress_pipe);
		switch (pf_walk_run(&c, &pkt, &w)) {
		case PF_WALK_CLONES:
			if (depth < PF_MAX_CLONE_DEPTH)
				replicate(&c, m, w.clone_e2e - 1u, PF_PATH_CLONE_E2E, depth + 1);
			if (w.clone_flags & (PF_WALK_DROP_ORIGINAL | PF_WALK_TO_KERNEL)) {
				rte_pktmbuf_free(m);
				return;
			}
			/* fall through */
		case PF_WALK_TX:
			out = w.out_port;
			break;
		case PF_WALK_KERNEL:
			rte_pktmbuf_free(m);            /* there is no host stack behind a DPDK port */
			return;
		case PF_WALK_FLOOD:
			replicate(&c, m, w.fwd.target, PF_PATH_NORMAL, 0);
			rte_pktmbuf_free(m);
			return;
		case PF_WALK_MISS:
			w.drop_reason = PF_DROP_NO_MISS;        /* as in TC: no miss handler behind an egress walk */
			/* fall through */
		default:
			drop(&c, m, w.drop_reason, w.pipe, w.entry_id, w.hops);
			return;
		}
	}
	if (truncate && rte_pktmbuf_pkt_len(m) > truncate)
		rte_pktmbuf_trim(m, rte_pktmbuf_pkt_len(m) - truncate);
	tx(&c, m, out, 0, PFD_NO_ENTRY, 0);
}

/* resubmit_pipe only matters for packet_path RESUBMIT */
static void pipeline_walk(struct pfd *d, uint32_t slot, uint32_t port, uint8_t packet_path, uint32_t start_pipe,
			  uint32_t resubmit_pipe, uint64_t now_ns, struct rte_mbuf *m, struct pfd_outputs *out,
			  struct pf_verdict *verdict, bool to_miss_ring, struct pf_trace *trace);

void pfd_pipeline_trace(struct pfd *d, uint32_t slot, uint32_t port, struct rte_mbuf *m, struct pfd_outputs *out,
			struct pf_verdict *verdict, struct pf_trace *trace)
{
	pipeline_walk(d, slot, port, PF_PATH_NORMAL, d->root_pipe, PF_RESUBMIT_PIPE_UNKNOWN, 0, m, out, verdict,
		      false, trace);
}

void pfd_pipeline_run(struct pfd *d, uint32_t slot, uint32_t port, uint8_t packet_path, struct rte_mbuf *m,
		      struct pfd_outputs *out, struct pf_verdict *verdict, bool to_miss_ring)
{
	pfd_pipeline_run_from(d, slot, port, packet_path, d->root_pipe, 0, m, out, verdict, to_miss_ring);
}

void pfd_pipeline_run_from(struct pfd *d, uint32_t slot, uint32_t port, uint8_t packet_path, uint32_t start_pipe,
			   uint64_t now_ns, struct rte_mbuf *m, struct pfd_outputs *out, struct pf_verdict *verdict,
			   bool to_miss_ring)
{
	pipeline_walk(d, slot, port, packet_path, start_pipe, PF_RESUBMIT_PIPE_UNKNOWN, now_ns, m, out, verdict,
		      to_miss_ring, NULL);
}

void pfd_pipeline_resubmit(struct pfd *d, uint32_t slot, uint32_t port, uint32_t missed_pipe, struct rte_mbuf *m,
			   struct pfd_outputs *out, struct pf_verdict *verdict)
{
	pipeline_walk(d, slot, port, PF_PATH_RESUBMIT, d->root_pipe,
		      missed_pipe < PF_MAX_PIPES ? missed_pipe : PF_RESUBMIT_PIPE_UNKNOWN, 0, m, out, verdict, false, NULL);
}

/* The walk itself is pyflow/walk.h, as on XDP; this carries out its verdict on an mbuf. */
static void pipeline_walk(struct pfd *d, uint32_t slot, uint32_t port, uint8_t packet_path, uint32_t start_pipe,
			  uint32_t resubmit_pipe, uint64_t now_ns, struct rte_mbuf *m, struct pfd_outputs *out,
			  struct pf_verdict *verdict, bool to_miss_ring, struct pf_trace *trace)
{
	struct walk c = { .d = d, .c = &d->counters[slot], .out = out, .v = verdict, .m = m, .in_port = port,
			  .cport = port, .now = now_ns, .trace = trace };
	struct pf_walk w;
	struct pf_pkt pkt;
	int parse_ret;

	set_verdict(verdict, PF_VERDICT_DROP, 0, 0, d->root_pipe, PFD_NO_ENTRY, 0);
	if (!d->root_set) {
		/* nothing programmed: as XDP, the frame goes to the host stack uncounted, and there is none
		 * behind a DPDK port */
		set_verdict(verdict, PF_VERDICT_PASS, 0, 0, 0, PFD_NO_ENTRY, 0);
		rte_pktmbuf_free(m);
		return;
	}
	pf_walk_init(&w, start_pipe, trace != NULL, packet_path == PF_PATH_RESUBMIT, resubmit_pipe);
	if (w.counting && !trace) {
		c.c->ports[port].rx_packets++;
		c.c->ports[port].rx_bytes += rte_pktmbuf_pkt_len(m);
	}
	parse_ret = parse_mbuf(m, &pkt);
	pkt.f.port = port;
	pkt.f.packet_path = packet_path;
	if (trace) {
		memset(trace, 0, sizeof(*trace));
		trace->port = port;
		trace->parse_result = (uint32_t)parse_ret;
		trace->before = pkt.f;
	}
	if (parse_ret != PF_PARSE_OK) {
		drop(&c, m, PF_DROP_MALFORMED, d->root_pipe, PFD_NO_ENTRY, 0);
		return;
	}

	switch (pf_walk_run(&c, &pkt, &w)) {
	case PF_WALK_TX:
		tx(&c, m, w.out_port, w.pipe, w.entry_id, w.hops);
		return;
	case PF_WALK_MISS:
		/* a resubmitted frame that misses again would loop through the handler; before start no handler
		 * listens (as on ebpf, where no AF_XDP socket is bound yet) */
		if (packet_path == PF_PATH_RESUBMIT || !d->have_policy || !d->started) {
			drop(&c, m, PF_DROP_NO_MISS, w.pipe, PFD_NO_ENTRY, w.hops);
			return;
		}
		set_verdict(verdict, PF_VERDICT_MISS, port, 0, w.pipe, PFD_NO_ENTRY, w.hops);
		if (!to_miss_ring) {
			rte_pktmbuf_free(m);    /* a test run or a trace reports the miss only */
			return;
		}
		*pfd_meta(m) = (struct pfd_mbuf_meta){ .port = port, .pipe = w.pipe, .packet_path = packet_path };
		if (rte_ring_enqueue(d->miss_ring, m))
			drop(&c, m, PF_DROP_RATE_LIMIT, w.pipe, PFD_NO_ENTRY, w.hops);
		return;
	case PF_WALK_KERNEL:
		/* there is no host stack behind a DPDK port */
		set_verdict(verdict, PF_VERDICT_PASS, 0, 0, w.pipe, w.entry_id, w.hops);
		rte_pktmbuf_free(m);
		return;
	case PF_WALK_FLOOD:
		if (!trace)
			replicate(&c, m, w.fwd.target, PF_PATH_NORMAL, 0);
		set_verdict(verdict, PF_VERDICT_REPLICATE, w.fwd.target, 0, w.pipe, w.entry_id, w.hops);
		rte_pktmbuf_free(m);
		return;
	case PF_WALK_CLONES:
		set_verdict(verdict, PF_VERDICT_REPLICATE, w.out_port, 0, w.pipe, w.entry_id, w.hops);
		/* a trace reports the hand-off only, as on XDP */
		if (!trace)
			replicate(&c, m, w.clone_i2e ? w.clone_i2e - 1u : w.clone_e2e - 1u,
				  w.clone_i2e ? PF_PATH_CLONE_I2E : PF_PATH_CLONE_E2E, 1);
		if (trace || (w.clone_flags & (PF_WALK_DROP_ORIGINAL | PF_WALK_TO_KERNEL)))
			rte_pktmbuf_free(m);
		else
			egress_walk(&c, m, w.out_port, PF_PATH_NORMAL, 0, 0, w.clone_flags & PF_WALK_EGRESS_DONE);
		return;
	default:
		drop(&c, m, w.drop_reason, w.pipe, w.entry_id, w.hops);
		return;
	}
}
#endif
