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

struct walk {
	struct pfd *d;
	struct pfd_slot_counters *c;
	struct pfd_outputs *out;
	struct pf_verdict *v;
	uint32_t in_port;
};

static void emit(struct walk *w, uint32_t port, struct rte_mbuf *m)
{
	if (w->out->n < RTE_DIM(w->out->mbufs)) {
		w->out->ports[w->out->n] = port;
		w->out->mbufs[w->out->n++] = m;
	} else {
		w->c->ports[w->in_port].drops[PF_DROP_TX_FAIL]++;
		rte_pktmbuf_free(m);
	}
}

/* Copies of m to every member of a session (truncated where asked); m itself is left alone. */
static uint32_t replicate(struct walk *w, const struct rte_mbuf *m, uint32_t session, uint32_t exclude_port)
{
	const struct pf_session *s;
	uint32_t copies = 0;

	if (session >= PF_MAX_SESSIONS)
		return 0;
	s = &w->d->sessions[session];
	for (uint32_t i = 0; i < s->nmembers && i < PF_MAX_SESSION_MEMBERS; i++) {
		const struct pf_session_member *mb = &s->members[i];
		uint32_t len = rte_pktmbuf_pkt_len(m);
		struct rte_mbuf *copy;

		if (!mb->in_use || mb->port >= PF_MAX_PORTS || mb->port == exclude_port)
			continue;
		if (mb->truncate && mb->truncate < len)
			len = mb->truncate;
		copy = rte_pktmbuf_copy(m, m->pool, 0, len);
		if (!copy) {
			w->c->ports[w->in_port].drops[PF_DROP_TX_FAIL]++;
			continue;
		}
		emit(w, mb->port, copy);
		copies++;
	}
	return copies;
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
	w->c->ports[w->in_port].drops[reason]++;
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

/* resubmit_pipe only matters for packet_path RESUBMIT */
#define PFD_RESUBMIT_PIPE_UNKNOWN 0xffffffffu
static void pipeline_walk(struct pfd *d, uint32_t slot, uint32_t port, uint8_t packet_path, uint32_t start_pipe,
			  uint32_t resubmit_pipe, uint64_t now_ns, struct rte_mbuf *m, struct pfd_outputs *out,
			  struct pf_verdict *verdict, bool to_miss_ring);

void pfd_pipeline_run(struct pfd *d, uint32_t slot, uint32_t port, uint8_t packet_path, struct rte_mbuf *m,
		      struct pfd_outputs *out, struct pf_verdict *verdict, bool to_miss_ring)
{
	pfd_pipeline_run_from(d, slot, port, packet_path, d->root_pipe, 0, m, out, verdict, to_miss_ring);
}

void pfd_pipeline_run_from(struct pfd *d, uint32_t slot, uint32_t port, uint8_t packet_path, uint32_t start_pipe,
			   uint64_t now_ns, struct rte_mbuf *m, struct pfd_outputs *out, struct pf_verdict *verdict,
			   bool to_miss_ring)
{
	pipeline_walk(d, slot, port, packet_path, start_pipe, PFD_RESUBMIT_PIPE_UNKNOWN, now_ns, m, out, verdict,
		      to_miss_ring);
}

void pfd_pipeline_resubmit(struct pfd *d, uint32_t slot, uint32_t port, uint32_t missed_pipe, struct rte_mbuf *m,
			   struct pfd_outputs *out, struct pf_verdict *verdict)
{
	pipeline_walk(d, slot, port, PF_PATH_RESUBMIT, d->root_pipe,
		      missed_pipe < PF_MAX_PIPES ? missed_pipe : PFD_RESUBMIT_PIPE_UNKNOWN, 0, m, out, verdict, false);
}

/* Mirrors pf_xdp_root in bpf/datapath.bpf.c hop for hop: same counters, same verdicts.
 * Beyond XDP: PF_FWD_SESSION and PF_ACT_CLONE replicate (mbuf copies).
 *
 * A resubmitted frame (packet_path RESUBMIT) was counted up to the pipe that
 * missed when it first arrived, and the frame the handler got already carries
 * the actions of the pipes before that one: it replays the walk from the root
 * silently (no port rx, no pipe or entry counters, no actions, no clones) and
 * counts and acts from the pipe that missed on. When that pipe is not known,
 * counting starts at the first pipe on the way whose misses go to the handler. */
static void pipeline_walk(struct pfd *d, uint32_t slot, uint32_t port, uint8_t packet_path, uint32_t start_pipe,
			  uint32_t resubmit_pipe, uint64_t now_ns, struct rte_mbuf *m, struct pfd_outputs *out,
			  struct pf_verdict *verdict, bool to_miss_ring)
{
	struct walk w = { .d = d, .c = &d->counters[slot], .out = out, .v = verdict, .in_port = port };
	struct pf_pkt pkt;
	uint32_t pipe, hop, entry_id = PFD_NO_ENTRY, pending_port = 0;
	uint64_t now = now_ns;
	bool egress_done = false;
	bool counting = packet_path != PF_PATH_RESUBMIT;

	set_verdict(verdict, PF_VERDICT_DROP, 0, 0, d->root_pipe, PFD_NO_ENTRY, 0);
	if (counting) {
		w.c->ports[port].rx_packets++;
		w.c->ports[port].rx_bytes += rte_pktmbuf_pkt_len(m);
	}
	if (!d->root_set) {
		drop(&w, m, PF_DROP_NO_MISS, 0, PFD_NO_ENTRY, 0);
		return;
	}
	pf_pkt_clear(&pkt);
	if ((!rte_pktmbuf_is_contiguous(m) && rte_pktmbuf_linearize(m)) ||
	    pf_parse(PF_PKT_DATA(m), PF_PKT_DATA_END(m), &pkt) != PF_PARSE_OK) {
		drop(&w, m, PF_DROP_MALFORMED, d->root_pipe, PFD_NO_ENTRY, 0);
		return;
	}
	pkt.f.port = port;
	pkt.f.packet_path = packet_path;

	pipe = start_pipe;
	for (hop = 0; hop < PF_MAX_PIPE_DEPTH; hop++) {
		const struct pfd_pipe *pp;
		const struct pf_fwd *fwd;
		uint32_t id;

		if (pipe >= PF_MAX_PIPES || !(d->pipes[pipe].cfg.flags & PF_PIPE_IN_USE)) {
			drop(&w, m, PF_DROP_ACTION_FAIL, pipe, entry_id, hop);
			return;
		}
		pp = &d->pipes[pipe];
		if (!counting && (pipe == resubmit_pipe ||
				  (resubmit_pipe == PFD_RESUBMIT_PIPE_UNKNOWN && pp->cfg.fwd_miss.type == PF_FWD_MISS)))
			counting = true;
		id = pfd_lookup(d, pipe, &pkt.f, pp->cfg.type == PF_PIPE_HASH ? pf_flow_hash(&pkt.f) : 0);
		if (id != PFD_NO_ENTRY) {
			struct pfd_entry *e = &d->entries[id];

			entry_id = id;
			fwd = e->e.fwd.type == PF_FWD_DEFAULT ? &pp->cfg.fwd : &e->e.fwd;
			/* replaying: the first pass counted this hit, applied its actions and made its copies */
			if (!counting)
				goto forward;
			w.c->pipes[pipe].hits++;
			w.c->entries[id].packets++;
			w.c->entries[id].bytes += rte_pktmbuf_pkt_len(m);
			if (!now)
				now = pf_now_ns();
			/* a shared line: write at most once per millisecond, and only forward (another lcore's
			 * burst may be stamped later than this one) */
			if ((int64_t)(now - e->last_seen_ns) > 1000000)
				e->last_seen_ns = now;
			if (e->e.act.flags) {
				int ret = pf_apply_actions(m, &pkt, &e->e.act);

				if (ret == PF_ACT_SAMPLED_DROP) {
					drop(&w, m, PF_DROP_SAMPLED, pipe, entry_id, hop + 1);
					return;
				}
				if (ret) {
					drop(&w, m, PF_DROP_ACTION_FAIL, pipe, entry_id, hop + 1);
					return;
				}
				if (e->e.act.flags & PF_ACT_CLONE)
					replicate(&w, m, e->e.act.session, PF_MAX_PORTS);
			}
		} else {
			if (counting)
				w.c->pipes[pipe].misses++;
			fwd = &pp->cfg.fwd_miss;
		}

forward:
		switch (fwd->type) {
		case PF_FWD_PIPE:
			pipe = fwd->target;
			continue;
		case PF_FWD_PORT:
			if (!egress_done && fwd->target < PF_MAX_PORTS &&
			    (d->ports[fwd->target].cfg.flags & PF_PORT_EGRESS_PIPE)) {
				/* the chosen port's egress pipe runs before the frame leaves */
				egress_done = true;
				pending_port = fwd->target;
				pipe = d->ports[fwd->target].cfg.egress_pipe;
				continue;
			}
			tx(&w, m, fwd->target, pipe, entry_id, hop + 1);
			return;
		case PF_FWD_DEFAULT:
			/* an egress pipe without its own forward lets the frame go where ingress sent it */
			if (egress_done)
				tx(&w, m, pending_port, pipe, entry_id, hop + 1);
			else
				drop(&w, m, PF_DROP_ACTION, pipe, entry_id, hop + 1);
			return;
		case PF_FWD_MISS:
			/* a resubmitted frame that misses again would loop through the handler; before start
			 * no handler listens (as on ebpf, where no AF_XDP socket is bound yet) */
			if (packet_path == PF_PATH_RESUBMIT || !d->have_policy || !d->started) {
				drop(&w, m, PF_DROP_NO_MISS, pipe, PFD_NO_ENTRY, hop + 1);
				return;
			}
			set_verdict(verdict, PF_VERDICT_MISS, port, 0, pipe, PFD_NO_ENTRY, hop + 1);
			if (!to_miss_ring) {
				rte_pktmbuf_free(m);    /* a test run reports the miss only */
				return;
			}
			*pfd_meta(m) = (struct pfd_mbuf_meta){ .port = port, .pipe = pipe, .packet_path = packet_path };
			if (rte_ring_enqueue(d->miss_ring, m))
				drop(&w, m, PF_DROP_RATE_LIMIT, pipe, PFD_NO_ENTRY, hop + 1);
			return;
		case PF_FWD_KERNEL:
			/* there is no host stack behind a DPDK port */
			set_verdict(verdict, PF_VERDICT_PASS, 0, 0, pipe, entry_id, hop + 1);
			rte_pktmbuf_free(m);
			return;
		case PF_FWD_SESSION:
			replicate(&w, m, fwd->target, port);
			set_verdict(verdict, PF_VERDICT_REPLICATE, 0, 0, pipe, entry_id, hop + 1);
			rte_pktmbuf_free(m);
			return;
		default:
			drop(&w, m, PF_DROP_ACTION, pipe, entry_id, hop + 1);
			return;
		}
	}
	drop(&w, m, PF_DROP_DEPTH, pipe, entry_id, hop);
}
#endif
