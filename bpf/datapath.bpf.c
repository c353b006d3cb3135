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

/* The frame class is looked at only when a lookup's mask needs it; the masked
 * lookup gets the frame and the walk (pf_xdp_lookup), so the classification
 * counts the class for the walk. */
struct pf_walk;
struct pf_xdp_lookup {
	struct xdp_md *xdp;
	struct pf_walk *w;
};
#define PF_RESOLVE_MPEGTS(lctx, pkt) \
	pf_xdp_mpegts(((struct pf_xdp_lookup *)(lctx))->xdp, (pkt), ((struct pf_xdp_lookup *)(lctx))->w)
__noinline int pf_xdp_mpegts(struct xdp_md *ctx, struct pf_pkt *pkt, struct pf_walk *w);

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

/* ---- the walk (pyflow/walk.h) on XDP ---- */

struct pf_walk;
__noinline int pf_trace_hop(struct pf_pkt *pkt, struct pf_walk *w, __u32 hop, int ret);

#define PF_WALK_CTX struct xdp_md
#define PF_WALK_LOOKUP_CTX(ctx, w) (&(struct pf_xdp_lookup){ .xdp = (ctx), .w = (w) })
#define PF_WALK_LEN(ctx) ((ctx)->data_end - (ctx)->data)
#define PF_WALK_HOP_FN pf_xdp_hop
#define PF_WALK_ACTIONS_FN pf_xdp_actions
#define PF_WALK_TRACE_HOP(c, pkt, w, hop, ret) pf_trace_hop((pkt), (w), (hop), (ret))

static __always_inline void pf_walk_count_dpi(struct xdp_md *ctx, __u32 cls, int dropped)
{
	pf_count_dpi(cls, dropped);
}

struct pf_walk;
static __always_inline int pf_walk_is_trace(const struct pf_walk *w);

/* the capture flag first: a datapath that is not capturing pays one load */
static __always_inline void pf_walk_observe(struct xdp_md *ctx, struct pf_pkt *pkt, const struct pf_walk *w,
					    __u32 pipe, const struct pf_entry *e)
{
	if ((pf_capture.points & (PF_CAP_HIT | PF_CAP_MISS)) && !pf_walk_is_trace(w))
		pf_capture_frame(ctx, e ? PF_CAP_HIT : PF_CAP_MISS, pkt->f.port, pipe, e ? e->id : PF_NO_ENTRY);
}

#include "pyflow/walk_bpf.h"

__noinline int pf_xdp_mpegts(struct xdp_md *ctx, struct pf_pkt *pkt, struct pf_walk *w)
{
	if (!pkt || !w || !pkt->mpegts_deferred)
		return 0;
	pf_pkt_mpegts((void *)(long)ctx->data, (void *)(long)ctx->data_end, pkt);
	pf_walk_classified(ctx, pkt, w);
	return 0;
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
	/* computed here, not after the redirect: clang would spill data_end in 32 bits, which the verifier refuses */
	asm volatile("" : "+r"(len));
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
 * an E2E one) and sends the original to w->out_port, as w->clone_flags say. */
_Static_assert(PF_WALK_EGRESS_DONE == PF_HANDOFF_EGRESS_DONE && PF_WALK_DROP_ORIGINAL == PF_HANDOFF_DROP_ORIGINAL &&
	       PF_WALK_TO_KERNEL == PF_HANDOFF_TO_KERNEL, "the walk's clone flags are the hand-off's");

static __always_inline int pf_handoff(struct xdp_md *ctx, const struct pf_walk *w, __u32 in_port)
{
	struct pf_handoff *h;

	pf_strip_meta(ctx);
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct pf_handoff)))
		return pf_drop(w->trace ? PF_NO_PORT : in_port, PF_DROP_ACTION_FAIL, w->pipe, w->entry_id, w->hops);
	h = (void *)(long)ctx->data_meta;
	if ((void *)(h + 1) > (void *)(long)ctx->data)
		return pf_drop(w->trace ? PF_NO_PORT : in_port, PF_DROP_ACTION_FAIL, w->pipe, w->entry_id, w->hops);
	h->magic = PF_HANDOFF_MAGIC;
	if (w->clone_i2e) {
		h->session = w->clone_i2e - 1;
		h->clone_path = PF_PATH_CLONE_I2E;
	} else {
		h->session = w->clone_e2e - 1;
		h->clone_path = PF_PATH_CLONE_E2E;
	}
	h->flags = w->clone_flags;
	h->out_port = w->out_port;
	h->in_port = in_port;
	pf_set_verdict(PF_VERDICT_REPLICATE, w->out_port, 0, w->pipe, w->entry_id, w->hops);
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

	if (!t || !pkt || !w || hop >= PF_MAX_PIPE_DEPTH)
		return 0;
	pf_walk_trace_hop(&t->hops[hop], pkt, w, ret);
	t->nhops = hop + 1;
	return 0;
}

SEC("xdp")
int pf_xdp_root(struct xdp_md *ctx)
{
	struct pf_pkt pkt __attribute__((aligned(8)));
	struct pf_walk w;
	const struct pf_config *cfg;
	struct pf_port_counter *pc;
	struct pf_xdp_meta *meta;
	__u32 zero = 0, port, cport, packet_path = PF_PATH_NORMAL, trace = 0, resubmit_pipe = 0;
	int ret;

	meta = (void *)(long)ctx->data_meta;
	if ((void *)(meta + 1) <= (void *)(long)ctx->data && meta->magic == PF_XDP_META_MAGIC) {
		/* only test runs and resubmits carry metadata: live frames pay nothing here */
		trace = meta->flags & PF_META_TRACE;
		if (meta->packet_path == PF_PATH_RESUBMIT) {
			packet_path = PF_PATH_RESUBMIT;
			resubmit_pipe = meta->pipe;
		}
	}
	pf_walk_init(&w, 0, trace, packet_path == PF_PATH_RESUBMIT, resubmit_pipe);

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
	switch (pf_walk_run(ctx, &pkt, &w)) {
	case PF_WALK_TX:
		return pf_tx(ctx, cport, w.out_port, w.pipe, w.entry_id, w.hops, w.trace);
	case PF_WALK_MISS:
		return pf_miss(ctx, port, w.pipe, packet_path, w.hops, w.trace);
	case PF_WALK_KERNEL:
		pf_strip_meta(ctx);
		pf_set_verdict(PF_VERDICT_PASS, 0, 0, w.pipe, w.entry_id, w.hops);
		return XDP_PASS;
	case PF_WALK_FLOOD:
		return pf_flood(ctx, port, w.fwd.target, w.pipe, w.entry_id, w.hops, w.trace);
	case PF_WALK_CLONES:
		return pf_handoff(ctx, &w, port);
	default:
		return pf_drop(cport, w.drop_reason, w.pipe, w.entry_id, w.hops);
	}
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
