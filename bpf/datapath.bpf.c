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
#include "pyflow/packet.h"

#include "pyflow/datapath_maps.h"

/* ---- global functions: verified once each ---- */

__noinline int pf_xdp_parse(struct xdp_md *ctx, struct pf_pkt *pkt)
{
	uint8_t *data = (void *)(long)ctx->data;
	uint8_t *data_end = (void *)(long)ctx->data_end;

	if (!pkt)
		return PF_PARSE_ERR_ETH;
	pf_pkt_clear(pkt);
	return pf_parse(data, data_end, pkt);
}

__noinline int pf_xdp_actions(struct xdp_md *ctx, struct pf_pkt *pkt, const struct pf_actions *act)
{
	if (!pkt || !act)
		return PF_ACT_ERR_NO_HEADER;
	return pf_apply_actions(ctx, pkt, act);
}

/* Metadata must not follow a frame out of this program (a peer's XDP would see it). */
static __always_inline void pf_strip_meta(struct xdp_md *ctx)
{
	int meta_len = (int)(ctx->data - ctx->data_meta);

	if (meta_len > 0)
		bpf_xdp_adjust_meta(ctx, meta_len);
}

static __always_inline int pf_tx(struct xdp_md *ctx, __u32 in_port, __u32 out_port, __u32 pipe, __u32 entry_id,
				 __u32 hops)
{
	struct pf_port_counter *pc;
	__u32 len;
	int ret;

	pf_strip_meta(ctx);
	len = ctx->data_end - ctx->data;
	ret = bpf_redirect_map(&tx_ports, out_port, 0);
	if (ret != XDP_REDIRECT)
		return pf_drop(in_port, PF_DROP_TX_FAIL, pipe, entry_id, hops);
	pc = bpf_map_lookup_elem(&port_counters, &out_port);
	if (pc) {
		pc->tx_packets++;
		pc->tx_bytes += len;
	}
	pf_set_verdict(PF_VERDICT_TX, out_port, 0, pipe, entry_id, hops);
	return ret;
}

/* To the miss handler's AF_XDP socket of this port and queue, with pf_xdp_meta in front. */
static __always_inline int pf_miss(struct xdp_md *ctx, __u32 port, __u32 pipe, __u32 packet_path, __u32 hops)
{
	struct pf_xdp_meta *meta;
	void *data;
	__u32 slot, queue = ctx->rx_queue_index;
	int ret;

	/* a resubmitted frame that misses again would loop through the handler */
	if (packet_path == PF_PATH_RESUBMIT)
		return pf_drop(port, PF_DROP_NO_MISS, pipe, PF_NO_ENTRY, hops);
	if (queue >= PF_MAX_QUEUES)
		queue = 0;
	slot = port * PF_MAX_QUEUES + queue;
	if (!bpf_map_lookup_elem(&xsks, &slot))
		return pf_drop(port, PF_DROP_NO_MISS, pipe, PF_NO_ENTRY, hops);
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct pf_xdp_meta)))
		return pf_drop(port, PF_DROP_NO_MISS, pipe, PF_NO_ENTRY, hops);
	meta = (void *)(long)ctx->data_meta;
	data = (void *)(long)ctx->data;
	if ((void *)(meta + 1) > data)
		return pf_drop(port, PF_DROP_NO_MISS, pipe, PF_NO_ENTRY, hops);
	meta->magic = PF_XDP_META_MAGIC;
	meta->pipe = pipe;
	meta->packet_path = packet_path;
	meta->_pad = 0;
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
				    __u32 hops)
{
	void *group;
	long len;
	int ret;

	group = bpf_map_lookup_elem(&group_ports, &session);
	if (!group)
		return pf_drop(in_port, PF_DROP_ACTION_FAIL, pipe, entry_id, hops);
	pf_strip_meta(ctx);
	len = (long)ctx->data_end - (long)ctx->data;
	ret = bpf_redirect_map(group, 0, BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS);
	if (ret != XDP_REDIRECT)
		return pf_drop(in_port, PF_DROP_TX_FAIL, pipe, entry_id, hops);
	pf_count_group_tx(session, in_port, (__u32)len);
	pf_set_verdict(PF_VERDICT_REPLICATE, session, 0, pipe, entry_id, hops);
	return ret;
}

/* Clone sessions need an sk_buff: pass the frame up with a pf_handoff in the
 * metadata area; the clsact ingress program of this port (tc_replicate.bpf.c)
 * clones it to the session's members and sends the original to out_port. */
static __always_inline int pf_handoff(struct xdp_md *ctx, __u32 in_port, __u32 out_port, __u32 session,
				      __u32 clone_path, __u32 flags, __u32 pipe, __u32 entry_id, __u32 hops)
{
	struct pf_handoff *h;

	pf_strip_meta(ctx);
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct pf_handoff)))
		return pf_drop(in_port, PF_DROP_ACTION_FAIL, pipe, entry_id, hops);
	h = (void *)(long)ctx->data_meta;
	if ((void *)(h + 1) > (void *)(long)ctx->data)
		return pf_drop(in_port, PF_DROP_ACTION_FAIL, pipe, entry_id, hops);
	h->magic = PF_HANDOFF_MAGIC;
	h->session = session;
	h->clone_path = clone_path;
	h->flags = flags;
	h->out_port = out_port;
	h->in_port = in_port;
	pf_set_verdict(PF_VERDICT_REPLICATE, out_port, 0, pipe, entry_id, hops);
	return XDP_PASS;
}

#define PF_RESUBMIT_PIPE_UNKNOWN 0xffff

SEC("xdp")
int pf_xdp_root(struct xdp_md *ctx)
{
	struct pf_pkt pkt;
	struct pf_entry *ent;
	const struct pf_config *cfg;
	const struct pf_pipe *pipe_cfg;
	const struct pf_port *port_cfg;
	struct pf_port_counter *pc;
	struct pf_xdp_meta *meta;
	struct pf_fwd fwd;
	__u32 zero = 0, ifindex = ctx->ingress_ifindex, port, *portp;
	__u32 pipe, hop, entry_id = PF_NO_ENTRY, packet_path = PF_PATH_NORMAL;
	__u32 pending_port = 0, egress_done = 0;
	/* clone session + 1 (0 = none) asked by an ingress / egress pipe's clone action */
	__u32 clone_i2e = 0, clone_e2e = 0;
	/* a resubmitted frame was already counted up to the pipe that missed, and
	 * already carries the actions of the pipes before it: it replays the walk
	 * silently until that pipe and counts (and acts) from there on */
	__u32 counting = 1, resubmit_pipe = PF_RESUBMIT_PIPE_UNKNOWN;
	int ret;

	meta = (void *)(long)ctx->data_meta;
	if ((void *)(meta + 1) <= (void *)(long)ctx->data && meta->magic == PF_XDP_META_MAGIC &&
	    meta->packet_path == PF_PATH_RESUBMIT) {
		packet_path = PF_PATH_RESUBMIT;
		resubmit_pipe = meta->pipe;
		counting = 0;
	}

	portp = bpf_map_lookup_elem(&ifindex_port, &ifindex);
	if (!portp)
		return XDP_PASS;        /* not one of our ports */
	port = *portp;
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || !(cfg->flags & PF_CFG_ROOT_SET))
		return XDP_PASS;        /* nothing programmed yet: leave the host alone */

	pc = bpf_map_lookup_elem(&port_counters, &port);
	if (pc && counting) {
		pc->rx_packets++;
		pc->rx_bytes += ctx->data_end - ctx->data;
	}

	if (pf_xdp_parse(ctx, &pkt))
		return pf_drop(port, PF_DROP_MALFORMED, cfg->root_pipe, PF_NO_ENTRY, 0);
	pkt.f.port = port;
	pkt.f.packet_path = packet_path;
	ent = bpf_map_lookup_elem(&scratch_entry, &zero);
	if (!ent)
		return XDP_ABORTED;

	pipe = cfg->root_pipe;
	for (hop = 0; hop < PF_MAX_PIPE_DEPTH; hop++) {
		pipe_cfg = bpf_map_lookup_elem(&pipes, &pipe);
		if (!pipe_cfg)
			break;
		/* the handler does not always say which pipe missed: then it is the
		 * first pipe on the way whose misses go to the handler */
		if (!counting && (pipe == resubmit_pipe ||
				  (resubmit_pipe == PF_RESUBMIT_PIPE_UNKNOWN && pipe_cfg->fwd_miss.type == PF_FWD_MISS)))
			counting = 1;
		ret = pf_pipe_lookup(&pkt, pipe, ent);
		if (ret < 0)
			return pf_drop(port, PF_DROP_ACTION_FAIL, pipe, entry_id, hop);
		if (counting)
			pf_count_pipe(pipe, ret);
		if (ret) {
			entry_id = ent->id;
			fwd = ent->fwd.type == PF_FWD_DEFAULT ? pipe_cfg->fwd : ent->fwd;
			if ((ent->act.flags & PF_ACT_CLONE) && ent->act.session < PF_MAX_SESSIONS) {
				if (pipe_cfg->domain == PF_DOMAIN_EGRESS || egress_done)
					clone_e2e = ent->act.session + 1;
				else
					clone_i2e = ent->act.session + 1;
			}
			if (counting) {
				pf_count_entry(ent->id, ctx->data_end - ctx->data);
				if (ent->act.flags & ~(__u32)PF_ACT_CLONE) {
					ret = pf_xdp_actions(ctx, &pkt, &ent->act);
					if (ret == PF_ACT_SAMPLED_DROP)
						return pf_drop(port, PF_DROP_SAMPLED, pipe, entry_id, hop + 1);
					if (ret)
						return pf_drop(port, PF_DROP_ACTION_FAIL, pipe, entry_id, hop + 1);
				}
			}
		} else {
			fwd = pipe_cfg->fwd_miss;
		}

		switch (fwd.type) {
		case PF_FWD_PIPE:
			pipe = fwd.target;
			continue;
		case PF_FWD_PORT:
			/* an I2E clone: the copies and the original all run their egress pipes in TC */
			if (clone_i2e)
				return pf_handoff(ctx, port, fwd.target, clone_i2e - 1, PF_PATH_CLONE_I2E, 0, pipe,
						  entry_id, hop + 1);
			if (!egress_done && fwd.target < PF_MAX_PORTS) {
				__u32 out = fwd.target;

				port_cfg = bpf_map_lookup_elem(&ports, &out);
				if (port_cfg && (port_cfg->flags & PF_PORT_EGRESS_PIPE)) {
					/* the chosen port's egress pipe runs before the frame leaves */
					egress_done = 1;
					pending_port = out;
					pipe = port_cfg->egress_pipe;
					continue;
				}
			}
			if (clone_e2e)
				return pf_handoff(ctx, port, fwd.target, clone_e2e - 1, PF_PATH_CLONE_E2E,
						  PF_HANDOFF_EGRESS_DONE, pipe, entry_id, hop + 1);
			return pf_tx(ctx, port, fwd.target, pipe, entry_id, hop + 1);
		case PF_FWD_DEFAULT:
			/* an egress pipe without its own forward lets the frame go where ingress sent it */
			if (egress_done) {
				if (clone_e2e)
					return pf_handoff(ctx, port, pending_port, clone_e2e - 1, PF_PATH_CLONE_E2E,
							  PF_HANDOFF_EGRESS_DONE, pipe, entry_id, hop + 1);
				return pf_tx(ctx, port, pending_port, pipe, entry_id, hop + 1);
			}
			/* fall through: no forward is a drop, but clones still leave (PSA) */
		case PF_FWD_DROP:
			if (clone_i2e || clone_e2e)
				return pf_handoff(ctx, port, PF_NO_PORT, clone_i2e ? clone_i2e - 1 : clone_e2e - 1,
						  clone_i2e ? PF_PATH_CLONE_I2E : PF_PATH_CLONE_E2E,
						  PF_HANDOFF_DROP_ORIGINAL, pipe, entry_id, hop + 1);
			return pf_drop(port, PF_DROP_ACTION, pipe, entry_id, hop + 1);
		case PF_FWD_MISS:
			return pf_miss(ctx, port, pipe, packet_path, hop + 1);
		case PF_FWD_KERNEL:
			if (clone_i2e || clone_e2e)
				return pf_handoff(ctx, port, PF_NO_PORT, clone_i2e ? clone_i2e - 1 : clone_e2e - 1,
						  clone_i2e ? PF_PATH_CLONE_I2E : PF_PATH_CLONE_E2E,
						  PF_HANDOFF_TO_KERNEL, pipe, entry_id, hop + 1);
			pf_strip_meta(ctx);
			pf_set_verdict(PF_VERDICT_PASS, 0, 0, pipe, entry_id, hop + 1);
			return XDP_PASS;
		case PF_FWD_SESSION:
			return pf_flood(ctx, port, fwd.target, pipe, entry_id, hop + 1);
		default:
			return pf_drop(port, PF_DROP_ACTION, pipe, entry_id, hop + 1);
		}
	}
	return pf_drop(port, PF_DROP_DEPTH, pipe, entry_id, hop);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
