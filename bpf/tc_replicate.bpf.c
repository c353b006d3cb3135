// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * PSA clone sessions on clsact (TC), where a frame has an sk_buff and
 * bpf_clone_redirect can make one copy per session member.
 *
 *   XDP (datapath.bpf.c) --XDP_PASS + pf_handoff in data_meta--> pf_tc_ingress
 *       on the same port: one bpf_clone_redirect per member (to the member's
 *       egress, packet_path CLONE_I2E/E2E, instance, class_of_service and
 *       truncate in skb->cb), then the original is redirected to its out port
 *       (packet_path NORMAL).
 *   pf_tc_egress on each port: a frame marked in skb->cb runs the port's
 *       egress pipe with its packet_path (a clone action there makes E2E
 *       copies, same way), is truncated if its member asks, is counted and
 *       leaves.
 *
 * Frames without the marks (the host's own traffic) pass untouched. The maps
 * are the XDP object's: the loader hands their fds over before loading.
 * Push/pop of VLAN/MPLS tags is not available in TC egress pipes (the head of
 * an sk_buff cannot shrink from the front): such an entry drops the copy.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

static __always_inline int pf_skb_adjust_head(struct __sk_buff *skb, int delta)
{
	if (delta < 0)
		return bpf_skb_change_head(skb, (__u32)-delta, 0);
	return -1;
}

#define PF_PKT_CTX struct __sk_buff
#define PF_PKT_DATA(ctx) ((void *)(long)(ctx)->data)
#define PF_PKT_DATA_END(ctx) ((void *)(long)(ctx)->data_end)
#define PF_PKT_ADJUST_HEAD(ctx, delta) pf_skb_adjust_head((ctx), (delta))
#define PF_PKT_RANDOM() bpf_get_prandom_u32()
#include "pyflow/packet.h"

#include "pyflow/datapath_maps.h"

__noinline int pf_tc_parse(struct __sk_buff *skb, struct pf_pkt *pkt)
{
	uint8_t *data, *data_end;

	if (!pkt)
		return PF_PARSE_ERR_ETH;
	bpf_skb_pull_data(skb, 0);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	pf_pkt_clear(pkt);
	return pf_parse(data, data_end, pkt);
}

/* ---- the walk (pyflow/walk.h) on TC ---- */

#define PF_WALK_CTX struct __sk_buff
#define PF_WALK_LEN(skb) ((skb)->len)
#define PF_WALK_HOP_FN pf_tc_hop
#define PF_WALK_ACTIONS_FN pf_tc_actions
#define PF_WALK_TRACE_HOP(c, pkt, w, hop, ret) do { } while (0)   /* replicated frames are never traced */

/* the class of a replicated frame is not counted again (the walk's dpi is off) */
static __always_inline void pf_walk_count_dpi(struct __sk_buff *skb, __u32 cls, int dropped)
{
}

struct pf_walk;
static __always_inline void pf_walk_observe(struct __sk_buff *skb, struct pf_pkt *pkt, const struct pf_walk *w,
					    __u32 pipe, const struct pf_entry *e)
{
}

#include "pyflow/walk_bpf.h"

static __always_inline __u32 pf_port_ifindex(__u32 port)
{
	const struct pf_port *p = bpf_map_lookup_elem(&ports, &port);

	return p && (p->flags & PF_PORT_IN_USE) ? p->ifindex : 0;
}

static __always_inline void pf_cb_mark(struct __sk_buff *skb, __u32 path, __u32 flags, __u32 depth, __u32 member,
				       __u32 truncate, __u32 in_port)
{
	skb->cb[PF_CB_MAGIC_IDX] = PF_CB_MAGIC;
	skb->cb[PF_CB_PATH_IDX] = path | flags << 8 | depth << 16;
	skb->cb[PF_CB_MEMBER_IDX] = member;
	skb->cb[PF_CB_TRUNCATE_IDX] = truncate;
	skb->cb[PF_CB_IN_PORT_IDX] = in_port;
}

/* One copy per member of the session, each to that member port's egress. */
static __always_inline void pf_clone_to_session(struct __sk_buff *skb, __u32 session, __u32 path, __u32 depth,
						__u32 in_port)
{
	const struct pf_session *s = bpf_map_lookup_elem(&sessions, &session);
	__u32 i;

	if (!s)
		return;
	for (i = 0; i < PF_MAX_SESSION_MEMBERS; i++) {
		const struct pf_session_member *m = &s->members[i];
		__u32 ifindex;

		if (i >= s->nmembers)
			break;
		if (!m->in_use)
			continue;
		ifindex = pf_port_ifindex(m->port);
		if (!ifindex) {
			pf_count_port_drop(m->port, PF_DROP_TX_FAIL);
			continue;
		}
		pf_cb_mark(skb, path, 0, depth, m->instance | (__u32)m->class_of_service << 16, m->truncate, in_port);
		if (bpf_clone_redirect(skb, ifindex, 0))
			pf_count_port_drop(m->port, PF_DROP_TX_FAIL);
	}
	skb->cb[PF_CB_MAGIC_IDX] = 0;
}

SEC("tc")
int pf_tc_ingress(struct __sk_buff *skb)
{
	struct pf_handoff *h = (void *)(long)skb->data_meta;
	__u32 session, path, flags, out_port, in_port, ifindex;

	if ((void *)(h + 1) > (void *)(long)skb->data || h->magic != PF_HANDOFF_MAGIC)
		return TC_ACT_OK;
	session = h->session;
	path = h->clone_path;
	flags = h->flags;
	out_port = h->out_port;
	in_port = h->in_port;
	h->magic = 0;

	pf_clone_to_session(skb, session, path, 1, in_port);

	if (flags & PF_HANDOFF_DROP_ORIGINAL)
		return TC_ACT_SHOT;
	if (flags & PF_HANDOFF_TO_KERNEL)
		return TC_ACT_OK;
	ifindex = pf_port_ifindex(out_port);
	if (!ifindex) {
		pf_count_port_drop(in_port, PF_DROP_TX_FAIL);
		return TC_ACT_SHOT;
	}
	pf_cb_mark(skb, PF_PATH_NORMAL, flags & PF_HANDOFF_EGRESS_DONE, 0, 0, 0, in_port);
	return bpf_redirect(ifindex, 0);
}

/* A flood from an egress pipe: one copy to every member of the session but the ingress port, as XDP
 * floods (the members' egress pipes do not run on them). */
static __always_inline void pf_tc_flood(struct __sk_buff *skb, __u32 session, __u32 in_port)
{
	const struct pf_session *s = bpf_map_lookup_elem(&sessions, &session);
	__u32 i;

	if (!s)
		return;
	for (i = 0; i < PF_MAX_SESSION_MEMBERS; i++) {
		__u32 out = s->members[i].port, ifindex;
		struct pf_port_counter *pc;

		if (i >= s->nmembers)
			break;
		if (!s->members[i].in_use || out == in_port)
			continue;
		ifindex = pf_port_ifindex(out);
		if (!ifindex || bpf_clone_redirect(skb, ifindex, 0)) {
			pf_count_port_drop(out, PF_DROP_TX_FAIL);
			continue;
		}
		pc = bpf_map_lookup_elem(&port_counters, &out);
		if (pc) {
			pc->tx_packets++;
			pc->tx_bytes += skb->len;
		}
	}
}

/* A marked frame through the egress pipe of its port, pipe, and the pipes that one leads to (the walk).
 * Returns TC_ACT_OK with *out_port where the frame leaves, or the verdict. */
static __always_inline int pf_tc_egress_pipes(struct __sk_buff *skb, __u32 port, __u32 pipe, __u32 path, __u32 depth,
					      __u32 in_port, __u32 *out_port)
{
	struct pf_pkt pkt;
	struct pf_walk w;

	if (pf_tc_parse(skb, &pkt)) {
		pf_count_port_drop(port, PF_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	pkt.f.port = in_port;
	pkt.f.packet_path = path;
	pf_walk_init_egress(&w, port, pipe);
	switch (pf_walk_run(skb, &pkt, &w)) {
	case PF_WALK_CLONES:
		if (depth < PF_MAX_CLONE_DEPTH)
			pf_clone_to_session(skb, w.clone_e2e - 1, PF_PATH_CLONE_E2E, depth + 1, in_port);
		if (w.clone_flags & PF_WALK_DROP_ORIGINAL)
			return TC_ACT_SHOT;
		if (w.clone_flags & PF_WALK_TO_KERNEL)
			return bpf_redirect(skb->ifindex, BPF_F_INGRESS);
		/* fall through */
	case PF_WALK_TX:
		*out_port = w.out_port;
		return TC_ACT_OK;
	case PF_WALK_KERNEL:
		/* to the host stack, as if the frame had come in on this port */
		return bpf_redirect(skb->ifindex, BPF_F_INGRESS);
	case PF_WALK_FLOOD:
		pf_tc_flood(skb, w.fwd.target, in_port);
		return TC_ACT_SHOT;
	case PF_WALK_MISS:
		/* no miss handler listens in TC */
		w.drop_reason = PF_DROP_NO_MISS;
		/* fall through */
	default:
		pf_drop(port, w.drop_reason, w.pipe, w.entry_id, w.hops);
		return TC_ACT_SHOT;
	}
}

SEC("tc")
int pf_tc_egress(struct __sk_buff *skb)
{
	const struct pf_port *port_cfg;
	struct pf_port_counter *pc;
	__u32 ifindex = skb->ifindex, port, *portp, path, flags, depth, truncate, in_port, out;
	int ret;

	if (skb->cb[PF_CB_MAGIC_IDX] != PF_CB_MAGIC)
		return TC_ACT_OK;
	skb->cb[PF_CB_MAGIC_IDX] = 0;
	path = skb->cb[PF_CB_PATH_IDX] & 0xff;
	flags = (skb->cb[PF_CB_PATH_IDX] >> 8) & 0xff;
	depth = skb->cb[PF_CB_PATH_IDX] >> 16;
	truncate = skb->cb[PF_CB_TRUNCATE_IDX];
	in_port = skb->cb[PF_CB_IN_PORT_IDX];

	portp = bpf_map_lookup_elem(&ifindex_port, &ifindex);
	if (!portp)
		return TC_ACT_OK;
	port = *portp;
	out = port;

	port_cfg = bpf_map_lookup_elem(&ports, &port);
	if (port_cfg && (port_cfg->flags & PF_PORT_EGRESS_PIPE) && !(flags & PF_HANDOFF_EGRESS_DONE)) {
		ret = pf_tc_egress_pipes(skb, port, port_cfg->egress_pipe, path, depth, in_port, &out);
		if (ret != TC_ACT_OK)
			return ret;
	}
	/* PSA truncates a copy as it leaves: the egress pipe saw it whole */
	if (truncate && skb->len > truncate && bpf_skb_change_tail(skb, truncate, 0)) {
		pf_count_port_drop(port, PF_DROP_ACTION_FAIL);
		return TC_ACT_SHOT;
	}
	if (out != port) {
		/* the egress pipe sent it to another port, as an XDP egress pipe does */
		ifindex = pf_port_ifindex(out);
		if (!ifindex) {
			pf_count_port_drop(port, PF_DROP_TX_FAIL);
			return TC_ACT_SHOT;
		}
	}
	pc = bpf_map_lookup_elem(&port_counters, &out);
	if (pc) {
		pc->tx_packets++;
		pc->tx_bytes += skb->len;
	}
	return out != port ? bpf_redirect(ifindex, 0) : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
