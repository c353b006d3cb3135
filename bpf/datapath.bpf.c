// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The pipe model in XDP.
 *
 * A frame enters the root pipe with meta.port = the config id of its ingress
 * interface, then walks at most PF_MAX_PIPE_DEPTH pipes (basic, control, lpm,
 * hash), applying each hit entry's actions, until a pipe forwards it to a
 * port, the miss handler (AF_XDP), the host stack, or drops it. Egress-domain
 * pipes run inline: either reached through pipe:, or as a port's egress pipe
 * after the ingress decision chose that port (one egress pass per frame).
 *
 * Parsing, actions and lookups are global (separately verified) functions so
 * the verifier does not re-walk them for every hop of the pipe chain.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define PF_PKT_CTX struct xdp_md
#define PF_PKT_DATA(ctx) ((void *)(long)(ctx)->data)
#define PF_PKT_DATA_END(ctx) ((void *)(long)(ctx)->data_end)
#define PF_PKT_ADJUST_HEAD(ctx, delta) bpf_xdp_adjust_head((ctx), (delta))
#define PF_PKT_RANDOM() bpf_get_prandom_u32()
/* DSCP -> MPLS TC (seed 004), written by the loader: 0 = class selector
 * (dscp >> 3), tc + 1 otherwise. A global: one load, only for labels pushed
 * with PF_ACT_MPLS_TC_DSCP. */
__u8 pf_dscp_tc[64];
#define PF_DSCP_TO_TC(dscp) \
	(pf_dscp_tc[(dscp) & 63] ? (__u32)pf_dscp_tc[(dscp) & 63] - 1 : ((__u32)(dscp) >> 3) & 0x7)
#include "pyflow/packet.h"

/* the frame class is looked at only when a lookup's mask needs it */
#define PF_RESOLVE_MPEGTS(ctx, pkt) pf_xdp_mpegts((struct xdp_md *)(ctx), (pkt))
__noinline int pf_xdp_mpegts(struct xdp_md *ctx, struct pf_pkt *pkt);

#include "pyflow/datapath_maps.h"

/* Frames by MPEG-TS class, and frames drop_pct dropped by class (seed 003's DPI counters). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pf_dpi_counter);
} dpi_counters SEC(".maps");

/* pyflow capture. A plain global (.bss): checking it is one load, no helper
 * call, so a datapath that is not capturing pays a load and a branch per
 * capture point. The loader writes it when a capture starts and stops. */
struct pf_capture_cfg pf_capture;

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} capture_events SEC(".maps");

/* Copy the frame (up to snaplen) with a pf_capture_hdr to user space, if the filters let it.
 * point_reason: the point bit | drop reason << 16 (BPF calls take at most 5 arguments). */
__noinline int pf_capture_frame(struct xdp_md *ctx, __u32 point_reason, __u32 port, __u32 pipe, __u32 entry)
{
	struct pf_capture_hdr h;
	__u64 len = ctx->data_end - ctx->data, cap;
	__u32 point = point_reason & 0xffff, reason = point_reason >> 16;

	if (!(pf_capture.points & point) || port == 0xffffffffu)
		return 0;
	if ((point & (PF_CAP_HIT | PF_CAP_MISS)) && pf_capture.pipe != PF_CAPTURE_ANY && pipe != pf_capture.pipe)
		return 0;
	if (pf_capture.entry != PF_CAPTURE_ANY && entry != pf_capture.entry)
		return 0;
	cap = len < pf_capture.snaplen ? len : pf_capture.snaplen;
	if (cap > 0xffff)
		cap = 0xffff;
	h.ts_ns = bpf_ktime_get_ns();
	h.point = point;
	h.port = port;
	h.pipe = pipe;
	h.entry = entry;
	h.reason = reason;
	h.len = len;
	h.caplen = cap;
	h._pad = 0;
	bpf_perf_event_output(ctx, &capture_events, BPF_F_CURRENT_CPU | (cap << 32), &h, sizeof(h));
	return 0;
}

/* Every drop of this program is a capture point; ctx is in scope at each call. */
static __always_inline int pf_drop_cap(struct xdp_md *ctx, __u32 port, __u32 reason, __u32 pipe, __u32 entry_id,
				       __u32 hops)
{
	if (pf_capture.points & PF_CAP_DROP)
		pf_capture_frame(ctx, PF_CAP_DROP | reason << 16, port, pipe, entry_id);
	return (pf_drop)(port, reason, pipe, entry_id, hops);
}
#define pf_drop(port, reason, pipe, entry_id, hops) pf_drop_cap(ctx, port, reason, pipe, entry_id, hops)

/* The walk of the last traced frame on this CPU (pyflow trace); written only
 * for frames whose metadata carries PF_META_TRACE. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pf_trace);
} trace_rec SEC(".maps");

/* ---- global functions: verified once each ---- */

/* The MPEG-TS frame class is left for the first lookup whose mask asks for it. */
__noinline int pf_xdp_parse(struct xdp_md *ctx, struct pf_pkt *pkt)
{
	uint8_t *data = (void *)(long)ctx->data;
	uint8_t *data_end = (void *)(long)ctx->data_end;

	if (!pkt)
		return PF_PARSE_ERR_ETH;
	pf_pkt_clear(pkt);
	return pf_parse_ex(data, data_end, pkt, PF_PARSE_DEFER_MPEGTS);
}

static __always_inline void pf_count_dpi(__u32 cls, int dropped)
{
	__u32 zero = 0;
	struct pf_dpi_counter *c = bpf_map_lookup_elem(&dpi_counters, &zero);

	if (!c)
		return;
	if (dropped)
		c->dropped[cls & 3]++;
	else
		c->frames[cls & 3]++;
}

/* Classified once per frame, so counted here; a traced or resubmitted frame
 * (our metadata in front) was counted already or must not be. */
__noinline int pf_xdp_mpegts(struct xdp_md *ctx, struct pf_pkt *pkt)
{
	const struct pf_xdp_meta *meta;

	if (!pkt || !pkt->mpegts_deferred)
		return 0;
	pf_pkt_mpegts((void *)(long)ctx->data, (void *)(long)ctx->data_end, pkt);
	meta = (void *)(long)ctx->data_meta;
	if ((void *)(meta + 1) <= (void *)(long)ctx->data && meta->magic == PF_XDP_META_MAGIC)
		return 0;
	pf_count_dpi(pkt->f.mpegts_frame, 0);
	return 0;
}

__noinline int pf_xdp_actions(struct xdp_md *ctx, struct pf_pkt *pkt, const struct pf_actions *act)
{
	if (!pkt || !act)
		return PF_ACT_ERR_NO_HEADER;
	return pf_apply_actions(ctx, pkt, act);
}

#define PF_RESUBMIT_PIPE_UNKNOWN 0xffff


/* State of one frame's walk through the pipes, kept by pf_xdp_root and
 * advanced one pipe at a time by pf_xdp_hop. */
struct pf_walk {
	__u32 pipe;             /* the pipe to run next */
	__u32 entry_id;         /* last entry hit, PF_NO_ENTRY if none */
	/* a resubmitted frame was already counted up to the pipe that missed, and
	 * already carries the actions of the pipes before it: it replays the walk
	 * silently until that pipe and counts (and acts) from there on */
	__u8 counting;
	__u8 egress_done;       /* the chosen port's egress pipe is running / ran */
	__u8 trace;             /* PF_META_TRACE: count nothing, record the walk */
	__u8 hop_flags;         /* out: enum pf_trace_flag of this hop (bytes: the stack is near 512) */
	__u32 resubmit_pipe;
	__u32 pending_port;     /* the port ingress chose, while its egress pipe runs */
	/* clone session + 1 (0 = none) asked by an ingress / egress pipe's clone action */
	__u32 clone_i2e;
	__u32 clone_e2e;
	struct pf_fwd fwd;      /* out: where the pipe sends the frame */
	__u32 drop_reason;      /* out: with PF_HOP_DROP */
};

enum pf_hop_result {
	PF_HOP_FWD = 0,         /* w->fwd says where to */
	PF_HOP_DROP = 1,        /* drop for w->drop_reason, this pipe included */
	PF_HOP_BAD_PIPE = 2,    /* the pipe is not in use: PF_DROP_ACTION_FAIL, this pipe not included */
	PF_HOP_NO_PIPE = 3,     /* the pipe id is out of range: end of the walk */
};

/* Run pipe w->pipe on the frame: look up, count, apply the entry's actions,
 * decide the forward. One global function per hop keeps the verifier's work
 * linear in the pipe depth, and lets the hit entry be used in place (map
 * values stay valid for the whole run) instead of copied out per hop. */
__noinline int pf_xdp_hop(struct xdp_md *ctx, struct pf_pkt *pkt, struct pf_walk *w)
{
	const struct pf_pipe *pipe_cfg;
	const struct pf_entry *ent;
	struct pf_flow_key *key;
	__u32 pipe, zero = 0;
	int ret;

	if (!pkt || !w)
		return PF_HOP_NO_PIPE;
	w->hop_flags = 0;
	pipe = w->pipe;
	pipe_cfg = bpf_map_lookup_elem(&pipes, &pipe);
	if (!pipe_cfg)
		return PF_HOP_NO_PIPE;
	if (!(pipe_cfg->flags & PF_PIPE_IN_USE))
		return PF_HOP_BAD_PIPE;
	/* the handler does not always say which pipe missed: then it is the
	 * first pipe on the way whose misses go to the handler */
	if (!w->counting && (pipe == w->resubmit_pipe ||
			     (w->resubmit_pipe == PF_RESUBMIT_PIPE_UNKNOWN && pipe_cfg->fwd_miss.type == PF_FWD_MISS)))
		w->counting = 1;
	if (pipe_cfg->type == PF_PIPE_LPM || pipe_cfg->type == PF_PIPE_HASH) {
		ent = pf_lookup_lpm_hash(pkt, pipe, pipe_cfg);
	} else {
		key = bpf_map_lookup_elem(&scratch_key, &zero);
		if (!key)
			return PF_HOP_NO_PIPE;
		ent = pf_lookup_masked(ctx, pkt, pipe, pipe_cfg, key);
	}
	if (w->counting && !w->trace)
		pf_count_pipe(pipe, ent != NULL);
	if ((pf_capture.points & (PF_CAP_HIT | PF_CAP_MISS)) && !w->trace)
		pf_capture_frame(ctx, ent ? PF_CAP_HIT : PF_CAP_MISS, pkt->f.port, pipe, ent ? ent->id : PF_NO_ENTRY);
	if (!ent) {
		w->fwd = pipe_cfg->fwd_miss;
		return PF_HOP_FWD;
	}
	w->entry_id = ent->id;
	w->hop_flags = PF_TRACE_HIT;
	w->fwd = ent->fwd.type == PF_FWD_DEFAULT ? pipe_cfg->fwd : ent->fwd;
	if ((ent->act.flags & PF_ACT_CLONE) && ent->act.session < PF_MAX_SESSIONS) {
		if (pipe_cfg->domain == PF_DOMAIN_EGRESS || w->egress_done)
			w->clone_e2e = ent->act.session + 1;
		else
			w->clone_i2e = ent->act.session + 1;
	}
	if (!w->counting)
		return PF_HOP_FWD;
	if (!w->trace)
		pf_count_entry(pf_memo(), ent->id, ctx->data_end - ctx->data);
	if (!(ent->act.flags & ~(__u32)PF_ACT_CLONE))
		return PF_HOP_FWD;
	ret = pf_xdp_actions(ctx, pkt, &ent->act);
	if (!ret)
		return PF_HOP_FWD;
	if (ret == PF_ACT_SAMPLED_DROP) {
		/* a trace shows the frame that is kept, and says it may be dropped */
		if (w->trace) {
			w->hop_flags |= PF_TRACE_SAMPLED;
			return PF_HOP_FWD;
		}
		if (!pkt->mpegts_deferred)
			pf_count_dpi(pkt->f.mpegts_frame, 1);
	}
	w->drop_reason = ret == PF_ACT_SAMPLED_DROP ? PF_DROP_SAMPLED : PF_DROP_ACTION_FAIL;
	return PF_HOP_DROP;
}

/* Metadata must not follow a frame out of this program (a peer's XDP would see it). */
static __always_inline void pf_strip_meta(struct xdp_md *ctx)
{
	int meta_len = (int)(ctx->data - ctx->data_meta);

	if (meta_len > 0)
		bpf_xdp_adjust_meta(ctx, meta_len);
}

static __always_inline int pf_tx(struct xdp_md *ctx, __u32 in_port, __u32 out_port, __u32 pipe, __u32 entry_id,
				 __u32 hops, __u32 quiet)
{
	struct pf_port_counter *pc;
	__u32 len;
	int ret;

	pf_strip_meta(ctx);
	len = ctx->data_end - ctx->data;
	if ((pf_capture.points & PF_CAP_EGRESS) && !quiet)
		pf_capture_frame(ctx, PF_CAP_EGRESS, out_port, pipe, entry_id);
	ret = bpf_redirect_map(&tx_ports, out_port, 0);
	if (ret != XDP_REDIRECT)
		return pf_drop(in_port, PF_DROP_TX_FAIL, pipe, entry_id, hops);
	pc = quiet ? NULL : bpf_map_lookup_elem(&port_counters, &out_port);
	if (pc) {
		pc->tx_packets++;
		pc->tx_bytes += len;
	}
	pf_set_verdict(PF_VERDICT_TX, out_port, 0, pipe, entry_id, hops);
	return ret;
}

/* Miss policies' rate limits (struct pf_miss_limit by pipe), written by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PF_MAX_PIPES);
	__type(key, __u32);
	__type(value, struct pf_miss_limit);
} miss_limits SEC(".maps");

/* Per-CPU buckets: no atomics on the miss path; the limit is then per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PF_MAX_PIPES);
	__type(key, __u32);
	__type(value, struct pf_miss_bucket);
} miss_buckets SEC(".maps");

/* 1 if a miss of pipe may go to the handler. A storm is shed here, so the
 * handler's CPU follows the rate limit, not the storm. Global: its stack is
 * apart from the walk's. */
__noinline int pf_miss_admit(__u32 pipe)
{
	const struct pf_miss_limit *lim = bpf_map_lookup_elem(&miss_limits, &pipe);
	struct pf_miss_bucket *b;
	__u64 now;

	if (!lim || !lim->interval_ns)
		return 1;
	b = bpf_map_lookup_elem(&miss_buckets, &pipe);
	if (!b)
		return 1;
	now = bpf_ktime_get_ns();
	if (b->tat_ns < now) {
		b->tat_ns = now;        /* idle long enough: the whole burst is there */
	} else if (b->tat_ns - now > lim->tau_ns) {
		b->shed++;
		return 0;
	}
	b->tat_ns += lim->interval_ns;
	return 1;
}

/* To the miss handler's AF_XDP socket of this port and queue, with pf_xdp_meta in front. */
static __always_inline int pf_miss(struct xdp_md *ctx, __u32 port, __u32 pipe, __u32 packet_path, __u32 hops,
				   __u32 quiet)
{
	struct pf_xdp_meta *meta;
	void *data;
	__u32 slot, queue = ctx->rx_queue_index, cport = quiet ? PF_NO_PORT : port;
	int ret;

	/* a resubmitted frame that misses again would loop through the handler */
	if (packet_path == PF_PATH_RESUBMIT)
		return pf_drop(cport, PF_DROP_NO_MISS, pipe, PF_NO_ENTRY, hops);
	if (queue >= PF_MAX_QUEUES)
		queue = 0;
	slot = port * PF_MAX_QUEUES + queue;
	if (!bpf_map_lookup_elem(&xsks, &slot))
		return pf_drop(cport, PF_DROP_NO_MISS, pipe, PF_NO_ENTRY, hops);
	/* a trace never reaches the handler: it would learn the flow */
	if (quiet) {
		pf_set_verdict(PF_VERDICT_MISS, port, 0, pipe, PF_NO_ENTRY, hops);
		return XDP_DROP;
	}
	if (!pf_miss_admit(pipe))
		return pf_drop(port, PF_DROP_RATE_LIMIT, pipe, PF_NO_ENTRY, hops);
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct pf_xdp_meta)))
		return pf_drop(port, PF_DROP_NO_MISS, pipe, PF_NO_ENTRY, hops);
	meta = (void *)(long)ctx->data_meta;
	data = (void *)(long)ctx->data;
	if ((void *)(meta + 1) > data)
		return pf_drop(port, PF_DROP_NO_MISS, pipe, PF_NO_ENTRY, hops);
	meta->magic = PF_XDP_META_MAGIC;
	meta->pipe = pipe;
	meta->packet_path = packet_path;
	meta->flags = 0;
	meta->port = port;
	meta->_pad2 = 0;
	ret = bpf_redirect_map(&xsks, slot, XDP_DROP);
	if (ret != XDP_REDIRECT)
		return pf_drop(port, PF_DROP_NO_MISS, pipe, PF_NO_ENTRY, hops);
	pf_set_verdict(PF_VERDICT_MISS, port, 0, pipe, PF_NO_ENTRY, hops);
	return ret;
}

/* tx counters of a flood's copies: every member port but the ingress one */
__noinline int pf_count_group_tx(__u32 session, __u32 in_port, __u32 len)
{
	const struct pf_session *s = bpf_map_lookup_elem(&sessions, &session);
	__u32 i;

	if (!s)
		return 0;
	for (i = 0; i < PF_MAX_SESSION_MEMBERS; i++) {
		__u32 out = s->members[i].port;
		struct pf_port_counter *pc;

		if (i >= s->nmembers)
			break;
		if (!s->members[i].in_use || out == in_port)
			continue;
		pc = bpf_map_lookup_elem(&port_counters, &out);
		if (pc) {
			pc->tx_packets++;
			pc->tx_bytes += len;
		}
	}
	return 0;
}

/* Multicast group: one copy to every member port but the ingress one, in XDP
 * (DEVMAP broadcast). Members' egress pipes do not run on these copies. */
static __always_inline int pf_flood(struct xdp_md *ctx, __u32 in_port, __u32 session, __u32 pipe, __u32 entry_id,
				    __u32 hops, __u32 quiet)
{
	void *group;
	long len;
	int ret;

	group = bpf_map_lookup_elem(&group_ports, &session);
	if (!group)
		return pf_drop(quiet ? PF_NO_PORT : in_port, PF_DROP_ACTION_FAIL, pipe, entry_id, hops);
	pf_strip_meta(ctx);
	len = (long)ctx->data_end - (long)ctx->data;
	ret = bpf_redirect_map(group, 0, BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS);
	if (ret != XDP_REDIRECT)
		return pf_drop(quiet ? PF_NO_PORT : in_port, PF_DROP_TX_FAIL, pipe, entry_id, hops);
	if (!quiet)
		pf_count_group_tx(session, in_port, (__u32)len);
	pf_set_verdict(PF_VERDICT_REPLICATE, session, 0, pipe, entry_id, hops);
	return ret;
}

/* Clone sessions need an sk_buff: pass the frame up with a pf_handoff in the
 * metadata area; the clsact ingress program of this port (tc_replicate.bpf.c)
 * clones it to the members of the walk's pending session (an I2E clone before
 * an E2E one) and sends the original to out_port, as flags say. */
static __always_inline int pf_handoff(struct xdp_md *ctx, const struct pf_walk *w, __u32 in_port, __u32 out_port,
				      __u32 flags, __u32 hops)
{
	struct pf_handoff *h;

	pf_strip_meta(ctx);
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct pf_handoff)))
		return pf_drop(w->trace ? PF_NO_PORT : in_port, PF_DROP_ACTION_FAIL, w->pipe, w->entry_id, hops);
	h = (void *)(long)ctx->data_meta;
	if ((void *)(h + 1) > (void *)(long)ctx->data)
		return pf_drop(w->trace ? PF_NO_PORT : in_port, PF_DROP_ACTION_FAIL, w->pipe, w->entry_id, hops);
	h->magic = PF_HANDOFF_MAGIC;
	if (w->clone_i2e) {
		h->session = w->clone_i2e - 1;
		h->clone_path = PF_PATH_CLONE_I2E;
	} else {
		h->session = w->clone_e2e - 1;
		h->clone_path = PF_PATH_CLONE_E2E;
	}
	h->flags = flags;
	h->out_port = out_port;
	h->in_port = in_port;
	pf_set_verdict(PF_VERDICT_REPLICATE, out_port, 0, w->pipe, w->entry_id, hops);
	return XDP_PASS;
}

/* ---- pyflow trace: the walk of a PF_META_TRACE frame ---- */

__noinline int pf_trace_begin(struct pf_pkt *pkt, __u32 port, int parse_ret)
{
	__u32 zero = 0;
	struct pf_trace *t = bpf_map_lookup_elem(&trace_rec, &zero);

	if (!t || !pkt)
		return 0;
	t->nhops = 0;
	t->port = port;
	t->parse_result = parse_ret;
	__builtin_memcpy(&t->before, &pkt->f, sizeof(t->before));
	return 0;
}

__noinline int pf_trace_hop(struct pf_pkt *pkt, struct pf_walk *w, __u32 hop, int ret)
{
	__u32 zero = 0;
	struct pf_trace *t = bpf_map_lookup_elem(&trace_rec, &zero);
	struct pf_trace_hop *h;

	if (!t || !pkt || !w || hop >= PF_MAX_PIPE_DEPTH)
		return 0;
	h = &t->hops[hop];
	h->pipe = w->pipe;
	h->entry_id = (w->hop_flags & PF_TRACE_HIT) ? w->entry_id : PF_NO_ENTRY;
	h->result = ret;
	h->flags = w->hop_flags | (w->egress_done ? PF_TRACE_EGRESS : 0);
	h->fwd = w->fwd;
	h->drop_reason = ret == PF_HOP_DROP ? w->drop_reason : 0;
	h->_pad = 0;
	__builtin_memcpy(&h->after, &pkt->f, sizeof(h->after));
	t->nhops = hop + 1;
	return 0;
}

SEC("xdp")
int pf_xdp_root(struct xdp_md *ctx)
{
	struct pf_pkt pkt __attribute__((aligned(8)));
	struct pf_walk w;
	const struct pf_config *cfg;
	const struct pf_port *port_cfg;
	struct pf_port_counter *pc;
	struct pf_xdp_meta *meta;
	__u32 zero = 0, port, cport, packet_path = PF_PATH_NORMAL, hop;
	int ret;

	__builtin_memset(&w, 0, sizeof(w));
	w.entry_id = PF_NO_ENTRY;
	w.counting = 1;
	w.resubmit_pipe = PF_RESUBMIT_PIPE_UNKNOWN;
	meta = (void *)(long)ctx->data_meta;
	if ((void *)(meta + 1) <= (void *)(long)ctx->data && meta->magic == PF_XDP_META_MAGIC) {
		/* only test runs and resubmits carry metadata: live frames pay nothing here */
		if (meta->flags & PF_META_TRACE)
			w.trace = 1;
		if (meta->packet_path == PF_PATH_RESUBMIT) {
			packet_path = PF_PATH_RESUBMIT;
			w.resubmit_pipe = meta->pipe;
			w.counting = 0;
		}
	}

	port = pf_port_of(pf_memo(), ctx->ingress_ifindex);
	if (port == PF_NO_PORT)
		return XDP_PASS;        /* not one of our ports */
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || !(cfg->flags & PF_CFG_ROOT_SET))
		return XDP_PASS;        /* nothing programmed yet: leave the host alone */

	/* a traced frame is counted nowhere: port counters of PF_NO_PORT do not exist */
	cport = w.trace ? PF_NO_PORT : port;
	pc = bpf_map_lookup_elem(&port_counters, &cport);
	if (pc && w.counting) {
		pc->rx_packets++;
		pc->rx_bytes += ctx->data_end - ctx->data;
	}

	if ((pf_capture.points & PF_CAP_INGRESS) && !w.trace)
		pf_capture_frame(ctx, PF_CAP_INGRESS, port, cfg->root_pipe, PF_NO_ENTRY);
	ret = pf_xdp_parse(ctx, &pkt);
	pkt.f.port = port;
	pkt.f.packet_path = packet_path;
	if (w.trace)
		pf_trace_begin(&pkt, port, ret);
	if (ret)
		return pf_drop(cport, PF_DROP_MALFORMED, cfg->root_pipe, PF_NO_ENTRY, 0);

	w.pipe = cfg->root_pipe;
	for (hop = 0; hop < PF_MAX_PIPE_DEPTH; hop++) {
		ret = pf_xdp_hop(ctx, &pkt, &w);
		if (ret == PF_HOP_NO_PIPE)
			break;
		if (w.trace)
			pf_trace_hop(&pkt, &w, hop, ret);
		if (ret == PF_HOP_BAD_PIPE)
			return pf_drop(cport, PF_DROP_ACTION_FAIL, w.pipe, w.entry_id, hop);
		if (ret == PF_HOP_DROP)
			return pf_drop(cport, w.drop_reason, w.pipe, w.entry_id, hop + 1);

		switch (w.fwd.type) {
		case PF_FWD_PIPE:
			w.pipe = w.fwd.target;
			continue;
		case PF_FWD_PORT:
			/* an I2E clone: the copies and the original all run their egress pipes in TC */
			if (w.clone_i2e)
				return pf_handoff(ctx, &w, port, w.fwd.target, 0, hop + 1);
			if (!w.egress_done && w.fwd.target < PF_MAX_PORTS) {
				__u32 out = w.fwd.target;

				port_cfg = bpf_map_lookup_elem(&ports, &out);
				if (port_cfg && (port_cfg->flags & PF_PORT_EGRESS_PIPE)) {
					/* the chosen port's egress pipe runs before the frame leaves */
					w.egress_done = 1;
					w.pending_port = out;
					w.pipe = port_cfg->egress_pipe;
					continue;
				}
			}
			if (w.clone_e2e)
				return pf_handoff(ctx, &w, port, w.fwd.target, PF_HANDOFF_EGRESS_DONE, hop + 1);
			return pf_tx(ctx, cport, w.fwd.target, w.pipe, w.entry_id, hop + 1, w.trace);
		case PF_FWD_DEFAULT:
			/* an egress pipe without its own forward lets the frame go where ingress sent it */
			if (w.egress_done) {
				if (w.clone_e2e)
					return pf_handoff(ctx, &w, port, w.pending_port, PF_HANDOFF_EGRESS_DONE, hop + 1);
				return pf_tx(ctx, cport, w.pending_port, w.pipe, w.entry_id, hop + 1, w.trace);
			}
			/* fall through: no forward is a drop, but clones still leave (PSA) */
		case PF_FWD_DROP:
			if (w.clone_i2e || w.clone_e2e)
				return pf_handoff(ctx, &w, port, PF_NO_PORT, PF_HANDOFF_DROP_ORIGINAL, hop + 1);
			return pf_drop(cport, PF_DROP_ACTION, w.pipe, w.entry_id, hop + 1);
		case PF_FWD_MISS:
			return pf_miss(ctx, port, w.pipe, packet_path, hop + 1, w.trace);
		case PF_FWD_KERNEL:
			if (w.clone_i2e || w.clone_e2e)
				return pf_handoff(ctx, &w, port, PF_NO_PORT, PF_HANDOFF_TO_KERNEL, hop + 1);
			pf_strip_meta(ctx);
			pf_set_verdict(PF_VERDICT_PASS, 0, 0, w.pipe, w.entry_id, hop + 1);
			return XDP_PASS;
		case PF_FWD_SESSION:
			return pf_flood(ctx, port, w.fwd.target, w.pipe, w.entry_id, hop + 1, w.trace);
		default:
			return pf_drop(cport, PF_DROP_ACTION, w.pipe, w.entry_id, hop + 1);
		}
	}
	return pf_drop(cport, PF_DROP_DEPTH, w.pipe, w.entry_id, hop);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
