// SPDX-License-Identifier: BSD-2-Clause
/*
 * rte_flow offload of the pipes.
 *
 * Mapping: the root pipe is group 0, every other pipe its own group (id + 1)
 * reached by JUMP. Each entry is one rule per port (only on its port when the
 * pipe matches meta.port: a non-transfer rule sees only its port's frames):
 * pattern = the entry's values under the pipe's mask, actions = COUNT, the
 * entry's set actions, fwd as JUMP / PORT_ID / DROP. Each pipe also gets a
 * catch-all rule at the lowest priority for its miss: fwd_miss as above, or
 * MARK(pipe) + QUEUE 0 so the worker continues *that* pipe in software (where
 * the miss handler runs). Because of that fall-through, an entry the PMD
 * refuses after start only loses speed, never correctness.
 *
 * Start: every pipe is validated on every port (the report is per pipe with
 * the PMD's message). Only when all pass are rules created, all or nothing;
 * otherwise the software pipes carry everything. Ports whose PMD answers
 * rte_flow_info_get use the template API (rte_flow_configure before start,
 * one pattern/actions template and table per pipe and port, async create with
 * push/pull); others the sync API. Entry counters add rte_flow_query(COUNT).
 *
 * PYFLOW_DPDK_RTE_FLOW=off skips offload; =force creates rules even where
 * validation refused (to see what the PMD says at creation).
 */
#ifdef PF_HAVE_DPDK
#define ALLOW_EXPERIMENTAL_API 1   /* template API, rte_flow_info_get */
#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>
#include <string.h>
#include <arpa/inet.h>
#include <rte_flow.h>
#include "dpdk.h"
#include "jsonbuf.h"

#define PFD_MAX_ITEMS 8
#define PFD_MAX_ACTIONS 16
#define PFD_ASYNC_QUEUE 0
#define PFD_ASYNC_QUEUE_SIZE 64

struct pfd_hw_table {
	struct rte_flow_pattern_template *pt;
	struct rte_flow_actions_template *at;
	struct rte_flow_template_table *tbl;
	uint32_t shape;                 /* action types of the table's template (hash) */
	bool tried;
};

struct pfd_hw {
	uint32_t nports;
	uint32_t port_of[PF_MAX_PORTS];         /* compact index -> config port */
	struct rte_flow **entry_flows;          /* [max_entries][nports] */
	struct rte_flow **miss_flows;           /* [PF_MAX_PIPES][nports] */
	struct pfd_hw_table *tables;            /* [PF_MAX_PIPES][nports][2]: entries, miss; template API only */
	bool demoted[PF_MAX_PIPES];             /* a control pipe that lost a rule: all of it in software */
	uint64_t created, refused;
};

/* Guards d->hw and everything in it: counters may be read (telemetry, control socket) while it goes away. */
static pthread_mutex_t hw_lock = PTHREAD_MUTEX_INITIALIZER;

struct rule_buf {
	struct rte_flow_attr attr;
	struct rte_flow_item items[PFD_MAX_ITEMS];
	struct rte_flow_item_eth eth_spec, eth_mask;
	struct rte_flow_item_vlan vlan_spec, vlan_mask;
	struct rte_flow_item_ipv4 ip4_spec, ip4_mask;
	struct rte_flow_item_ipv6 ip6_spec, ip6_mask;
	struct rte_flow_item_udp udp_spec, udp_mask;
	struct rte_flow_item_tcp tcp_spec, tcp_mask;
	struct rte_flow_item_mpls mpls_spec, mpls_mask;
	struct rte_flow_item_mark mark_spec, mark_mask;
	struct rte_flow_action actions[PFD_MAX_ACTIONS];
	struct rte_flow_action_count count;
	struct rte_flow_action_set_mac mac_src, mac_dst;
	struct rte_flow_action_set_ipv4 ip4_src, ip4_dst;
	struct rte_flow_action_set_ipv6 ip6_src, ip6_dst;
	struct rte_flow_action_set_tp tp_src, tp_dst;
	struct rte_flow_action_set_dscp dscp;
	struct rte_flow_action_of_push_vlan push_vlan;
	struct rte_flow_action_of_set_vlan_vid vlan_vid;
	struct rte_flow_action_mark mark;
	struct rte_flow_action_jump jump;
	struct rte_flow_action_port_id port;
	struct rte_flow_action_queue queue;
	const char *unsupported;        /* why this rule cannot be expressed in rte_flow */
};

static bool nonzero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return true;
	return false;
}

static uint32_t pipe_group(const struct pfd *d, uint32_t pipe)
{
	return pipe == d->root_pipe ? 0 : pipe + 1;
}

static const char *flow_msg(const struct rte_flow_error *e, int ret)
{
	return e->message ? e->message : rte_strerror(ret < 0 ? -ret : rte_errno);
}

/* Pattern from a mask and the values under it (v NULL: a template, spec 0). meta.port is not an item:
 * the rule is placed on that port instead. */
static void build_pattern(struct rule_buf *r, const struct pf_fields *m, const struct pf_fields *v)
{
	static const struct pf_fields zero;
	int n = 0;

	if (!v)
		v = &zero;
	if (m->packet_path || m->mpegts_frame || m->vlan_inner)
		r->unsupported = "matches meta.packet_path, mpegts.frame or an inner VLAN";
	memcpy(r->eth_mask.hdr.dst_addr.addr_bytes, m->eth_dst, 6);
	memcpy(r->eth_mask.hdr.src_addr.addr_bytes, m->eth_src, 6);
	r->eth_mask.hdr.ether_type = m->eth_type;
	memcpy(r->eth_spec.hdr.dst_addr.addr_bytes, v->eth_dst, 6);
	memcpy(r->eth_spec.hdr.src_addr.addr_bytes, v->eth_src, 6);
	r->eth_spec.hdr.ether_type = v->eth_type & m->eth_type;
	r->items[n++] = (struct rte_flow_item){ RTE_FLOW_ITEM_TYPE_ETH, &r->eth_spec, NULL, &r->eth_mask };
	if (m->vlan_id) {
		r->vlan_mask.hdr.vlan_tci = rte_cpu_to_be_16(m->vlan_id & 0x0fff);
		r->vlan_spec.hdr.vlan_tci = rte_cpu_to_be_16(v->vlan_id & m->vlan_id & 0x0fff);
		r->items[n++] = (struct rte_flow_item){ RTE_FLOW_ITEM_TYPE_VLAN, &r->vlan_spec, NULL, &r->vlan_mask };
	}
	if (m->mpls_label) {
		uint32_t label = v->mpls_label & m->mpls_label, lmask = m->mpls_label & 0xfffff;

		r->mpls_mask.label_tc_s[0] = (uint8_t)(lmask >> 12);
		r->mpls_mask.label_tc_s[1] = (uint8_t)(lmask >> 4);
		r->mpls_mask.label_tc_s[2] = (uint8_t)((lmask & 0xf) << 4);
		r->mpls_spec.label_tc_s[0] = (uint8_t)(label >> 12);
		r->mpls_spec.label_tc_s[1] = (uint8_t)(label >> 4);
		r->mpls_spec.label_tc_s[2] = (uint8_t)((label & 0xf) << 4);
		r->items[n++] = (struct rte_flow_item){ RTE_FLOW_ITEM_TYPE_MPLS, &r->mpls_spec, NULL, &r->mpls_mask };
	}
	if (m->ipv4_src || m->ipv4_dst || m->ip_ttl || m->ip_dscp ||
	    (m->ip_proto && !nonzero(m->ipv6_src, 16) && !nonzero(m->ipv6_dst, 16))) {
		r->ip4_mask.hdr.src_addr = m->ipv4_src;
		r->ip4_mask.hdr.dst_addr = m->ipv4_dst;
		r->ip4_mask.hdr.next_proto_id = m->ip_proto;
		r->ip4_mask.hdr.time_to_live = m->ip_ttl;
		r->ip4_mask.hdr.type_of_service = (uint8_t)(m->ip_dscp << 2);
		r->ip4_spec.hdr.src_addr = v->ipv4_src & m->ipv4_src;
		r->ip4_spec.hdr.dst_addr = v->ipv4_dst & m->ipv4_dst;
		r->ip4_spec.hdr.next_proto_id = v->ip_proto & m->ip_proto;
		r->ip4_spec.hdr.time_to_live = v->ip_ttl & m->ip_ttl;
		r->ip4_spec.hdr.type_of_service = (uint8_t)((v->ip_dscp & m->ip_dscp) << 2);
		r->items[n++] = (struct rte_flow_item){ RTE_FLOW_ITEM_TYPE_IPV4, &r->ip4_spec, NULL, &r->ip4_mask };
	} else if (nonzero(m->ipv6_src, 16) || nonzero(m->ipv6_dst, 16)) {
		for (int i = 0; i < 16; i++) {
			r->ip6_mask.hdr.src_addr[i] = m->ipv6_src[i];
			r->ip6_mask.hdr.dst_addr[i] = m->ipv6_dst[i];
			r->ip6_spec.hdr.src_addr[i] = v->ipv6_src[i] & m->ipv6_src[i];
			r->ip6_spec.hdr.dst_addr[i] = v->ipv6_dst[i] & m->ipv6_dst[i];
		}
		r->ip6_mask.hdr.proto = m->ip_proto;
		r->ip6_spec.hdr.proto = v->ip_proto & m->ip_proto;
		r->items[n++] = (struct rte_flow_item){ RTE_FLOW_ITEM_TYPE_IPV6, &r->ip6_spec, NULL, &r->ip6_mask };
	}
	if (m->l4_sport || m->l4_dport || m->tcp_flags) {
		if (m->tcp_flags || (m->ip_proto && (v->ip_proto & m->ip_proto) == IPPROTO_TCP)) {
			r->tcp_mask.hdr.src_port = m->l4_sport;
			r->tcp_mask.hdr.dst_port = m->l4_dport;
			r->tcp_mask.hdr.tcp_flags = m->tcp_flags;
			r->tcp_spec.hdr.src_port = v->l4_sport & m->l4_sport;
			r->tcp_spec.hdr.dst_port = v->l4_dport & m->l4_dport;
			r->tcp_spec.hdr.tcp_flags = v->tcp_flags & m->tcp_flags;
			r->items[n++] = (struct rte_flow_item){ RTE_FLOW_ITEM_TYPE_TCP, &r->tcp_spec, NULL, &r->tcp_mask };
		} else {
			r->udp_mask.hdr.src_port = m->l4_sport;
			r->udp_mask.hdr.dst_port = m->l4_dport;
			r->udp_spec.hdr.src_port = v->l4_sport & m->l4_sport;
			r->udp_spec.hdr.dst_port = v->l4_dport & m->l4_dport;
			r->items[n++] = (struct rte_flow_item){ RTE_FLOW_ITEM_TYPE_UDP, &r->udp_spec, NULL, &r->udp_mask };
		}
	}
	if (m->mark) {
		r->mark_mask.id = m->mark;
		r->mark_spec.id = v->mark & m->mark;
		r->items[n++] = (struct rte_flow_item){ RTE_FLOW_ITEM_TYPE_MARK, &r->mark_spec, NULL, &r->mark_mask };
	}
	r->items[n].type = RTE_FLOW_ITEM_TYPE_END;
}

#define ADD_ACTION(r, n, t, conf) ((r)->actions[(n)++] = (struct rte_flow_action){ (t), (conf) })

/* Set actions whose configuration is one value of pf_actions, as is (both in network order). */
struct set_action {
	uint32_t flag;
	enum rte_flow_action_type type;
	uint16_t conf_off;      /* in struct rule_buf: the action's conf, a struct of just that value */
	uint16_t act_off;       /* in struct pf_actions */
	uint16_t len;
};

#define SET_ACTION(flag, type, conf, member) \
	{ flag, type, offsetof(struct rule_buf, conf), offsetof(struct pf_actions, member), sizeof(((struct pf_actions *)0)->member) }
static const struct set_action set_actions[] = {
	SET_ACTION(PF_ACT_SET_ETH_SRC, RTE_FLOW_ACTION_TYPE_SET_MAC_SRC, mac_src, eth_src),
	SET_ACTION(PF_ACT_SET_ETH_DST, RTE_FLOW_ACTION_TYPE_SET_MAC_DST, mac_dst, eth_dst),
	SET_ACTION(PF_ACT_SET_IPV4_SRC, RTE_FLOW_ACTION_TYPE_SET_IPV4_SRC, ip4_src, ipv4_src),
	SET_ACTION(PF_ACT_SET_IPV4_DST, RTE_FLOW_ACTION_TYPE_SET_IPV4_DST, ip4_dst, ipv4_dst),
	SET_ACTION(PF_ACT_SET_IPV6_SRC, RTE_FLOW_ACTION_TYPE_SET_IPV6_SRC, ip6_src, ipv6_src),
	SET_ACTION(PF_ACT_SET_IPV6_DST, RTE_FLOW_ACTION_TYPE_SET_IPV6_DST, ip6_dst, ipv6_dst),
	SET_ACTION(PF_ACT_SET_L4_SPORT, RTE_FLOW_ACTION_TYPE_SET_TP_SRC, tp_src, l4_sport),
	SET_ACTION(PF_ACT_SET_L4_DPORT, RTE_FLOW_ACTION_TYPE_SET_TP_DST, tp_dst, l4_dport),
	SET_ACTION(PF_ACT_SET_DSCP, RTE_FLOW_ACTION_TYPE_SET_IPV4_DSCP, dscp, dscp),
};
#undef SET_ACTION

/* COUNT, the set actions of act (NULL: none), then fwd; miss_of_pipe marks frames for the software pipes. */
static void build_actions(struct pfd *d, struct rule_buf *r, const struct pf_actions *act, const struct pf_fwd *fwd,
			  uint32_t miss_of_pipe)
{
	int n = 0;

	ADD_ACTION(r, n, RTE_FLOW_ACTION_TYPE_COUNT, &r->count);
	if (act && act->flags) {
		uint32_t f = act->flags;

		if (f & (PF_ACT_CLONE | PF_ACT_DROP_PCT | PF_ACT_PUSH_MPLS | PF_ACT_POP_MPLS))
			r->unsupported = "clone, drop-percentage or MPLS push/pop";
		if (f & PF_ACT_POP_VLAN)
			ADD_ACTION(r, n, RTE_FLOW_ACTION_TYPE_OF_POP_VLAN, NULL);
		for (size_t i = 0; i < RTE_DIM(set_actions); i++) {
			const struct set_action *sa = &set_actions[i];
			void *conf = (uint8_t *)r + sa->conf_off;

			if (!(f & sa->flag))
				continue;
			memcpy(conf, (const uint8_t *)act + sa->act_off, sa->len);
			ADD_ACTION(r, n, sa->type, conf);
		}
		if (f & PF_ACT_DEC_TTL)
			ADD_ACTION(r, n, RTE_FLOW_ACTION_TYPE_DEC_TTL, NULL);
		if (f & PF_ACT_PUSH_VLAN) {
			r->push_vlan.ethertype = rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN);
			ADD_ACTION(r, n, RTE_FLOW_ACTION_TYPE_OF_PUSH_VLAN, &r->push_vlan);
		}
		if (f & (PF_ACT_PUSH_VLAN | PF_ACT_SET_VLAN)) {
			r->vlan_vid.vlan_vid = rte_cpu_to_be_16(act->vlan_id & 0x0fff);
			ADD_ACTION(r, n, RTE_FLOW_ACTION_TYPE_OF_SET_VLAN_VID, &r->vlan_vid);
		}
		if (f & PF_ACT_SET_MARK) {
			r->mark.id = act->mark;
			ADD_ACTION(r, n, RTE_FLOW_ACTION_TYPE_MARK, &r->mark);
		}
	}
	switch (fwd->type) {
	case PF_FWD_PIPE:
		r->jump.group = pipe_group(d, fwd->target);
		ADD_ACTION(r, n, RTE_FLOW_ACTION_TYPE_JUMP, &r->jump);
		break;
	case PF_FWD_PORT:
		if (fwd->target < PF_MAX_PORTS && (d->ports[fwd->target].cfg.flags & PF_PORT_EGRESS_PIPE))
			r->unsupported = "forwards to a port with an egress pipe";
		r->port.id = fwd->target < PF_MAX_PORTS ? d->ports[fwd->target].dpdk_port : 0;
		ADD_ACTION(r, n, RTE_FLOW_ACTION_TYPE_PORT_ID, &r->port);
		break;
	case PF_FWD_MISS:
		/* the worker continues this pipe in software, where the miss handler is */
		r->mark.id = PFD_MARK_MISS | miss_of_pipe;
		ADD_ACTION(r, n, RTE_FLOW_ACTION_TYPE_MARK, &r->mark);
		r->queue.index = 0;
		ADD_ACTION(r, n, RTE_FLOW_ACTION_TYPE_QUEUE, &r->queue);
		break;
	case PF_FWD_DROP:
		ADD_ACTION(r, n, RTE_FLOW_ACTION_TYPE_DROP, NULL);
		break;
	default:
		r->unsupported = "forwards to a session, the kernel or the pipe default of an egress pipe";
		ADD_ACTION(r, n, RTE_FLOW_ACTION_TYPE_DROP, NULL);
		break;
	}
	r->actions[n].type = RTE_FLOW_ACTION_TYPE_END;
}

/* The rule of one entry (e) or of a pipe's miss (e NULL). */
static void build_rule(struct pfd *d, struct rule_buf *r, uint32_t pipe, const struct pfd_entry *e)
{
	const struct pfd_pipe *pp = &d->pipes[pipe];
	static const struct pf_fields none;

	memset(r, 0, sizeof(*r));
	r->attr.group = pipe_group(d, pipe);
	r->attr.ingress = 1;    /* egress-domain pipes are reached by JUMP from ingress rules */
	if (pp->cfg.type == PF_PIPE_LPM || pp->cfg.type == PF_PIPE_HASH)
		r->unsupported = "lpm and hash pipes run in software";
	if (e) {
		const struct pf_fwd *fwd = e->e.fwd.type == PF_FWD_DEFAULT ? &pp->cfg.fwd : &e->e.fwd;

		/* control pipes: lower value wins, as in rte_flow; the miss rule sits below every entry */
		r->attr.priority = pp->cfg.type == PF_PIPE_CONTROL ? RTE_MIN(e->e.priority, 0xfffeu) : 0;
		build_pattern(r, e->mask_idx < pp->nmasks ? &pp->masks[e->mask_idx] : &none, &e->match);
		build_actions(d, r, &e->e.act, fwd, pipe);
	} else {
		r->attr.priority = pp->cfg.type == PF_PIPE_CONTROL ? 0xffffu : 1;
		build_pattern(r, &none, NULL);
		build_actions(d, r, NULL, &pp->cfg.fwd_miss, pipe);
	}
}

/* ---- template API ----------------------------------------------------------------------------- */

static uint32_t actions_shape(const struct rule_buf *r)
{
	uint32_t h = 2166136261u;

	for (int i = 0; r->actions[i].type != RTE_FLOW_ACTION_TYPE_END; i++)
		h = (h ^ (uint32_t)r->actions[i].type) * 16777619u;
	return h;
}

int pfd_rte_flow_port_configure(struct pfd *d, uint32_t port)
{
	struct pfd_port *p = &d->ports[port];
	struct rte_flow_port_info pinfo;
	struct rte_flow_queue_info qinfo;
	struct rte_flow_error ferr = { 0 };
	struct rte_flow_port_attr pattr = { 0 };
	struct rte_flow_queue_attr qattr = { .size = PFD_ASYNC_QUEUE_SIZE };
	const struct rte_flow_queue_attr *qattrs[1] = { &qattr };
	int ret;

	p->flow_async = false;
	if (d->rte_flow_mode == PFD_RTE_FLOW_OFF)
		return 0;
	ret = rte_flow_info_get(p->dpdk_port, &pinfo, &qinfo, &ferr);
	if (ret || !pinfo.max_nb_queues) {
		pf_info("rte_flow on %s: no template API (%s); sync API", p->name, ret ? flow_msg(&ferr, ret) : "no queues");
		return 0;
	}
	pattr.nb_counters = RTE_MIN(pinfo.max_nb_counters ? pinfo.max_nb_counters : UINT32_MAX,
				    d->max_entries + PF_MAX_PIPES);
	if (qinfo.max_size && qattr.size > qinfo.max_size)
		qattr.size = qinfo.max_size;
	ret = rte_flow_configure(p->dpdk_port, &pattr, 1, qattrs, &ferr);
	if (ret) {
		pf_info("rte_flow on %s: template API refused configuration (%s); sync API", p->name, flow_msg(&ferr, ret));
		return 0;
	}
	p->flow_async = true;
	pf_info("rte_flow on %s: template API (%u counters, 1 queue of %u): async rules", p->name, pattr.nb_counters,
		qattr.size);
	return 0;
}

/* Wait for the completion of the one operation in flight on the async queue. */
static int async_complete(uint16_t dport, struct rte_flow_error *ferr)
{
	struct rte_flow_op_result res;
	int ret;

	ret = rte_flow_push(dport, PFD_ASYNC_QUEUE, ferr);
	if (ret)
		return ret;
	for (int spins = 0; spins < 1000000; spins++) {
		ret = rte_flow_pull(dport, PFD_ASYNC_QUEUE, &res, 1, ferr);
		if (ret < 0)
			return ret;
		if (ret == 1)
			return res.status == RTE_FLOW_OP_SUCCESS ? 0 : -EIO;
	}
	return -ETIMEDOUT;
}

/* One table per pipe and port for its entries (the pipe's first mask), one for its miss rule. */
static struct pfd_hw_table *table_for(struct pfd *d, uint32_t pipe, uint32_t pidx, struct rule_buf *r, bool miss,
				      struct rte_flow_error *ferr)
{
	struct pfd_hw_table *t = &d->hw->tables[((size_t)pipe * d->hw->nports + pidx) * 2 + miss];
	struct pfd_pipe *pp = &d->pipes[pipe];
	uint16_t dport = d->ports[d->hw->port_of[pidx]].dpdk_port;
	struct rte_flow_pattern_template_attr pta = { .relaxed_matching = 1, .ingress = 1 };
	struct rte_flow_actions_template_attr ata = { .ingress = 1 };
	struct rte_flow_template_table_attr tta = { .flow_attr = r->attr, .nb_flows = d->max_entries };
	struct rule_buf masks;

	if (t->tried)
		return t->tbl && t->shape == actions_shape(r) ? t : NULL;
	t->tried = true;
	t->shape = actions_shape(r);
	/* the template's masks are the pipe's: values come with each rule */
	build_rule(d, &masks, pipe, NULL);
	if (!miss)
		build_pattern(&masks, pp->nmasks ? &pp->masks[0] : &(struct pf_fields){ 0 }, NULL);
	for (int i = 0; masks.items[i].type != RTE_FLOW_ITEM_TYPE_END; i++)
		masks.items[i].spec = NULL;
	t->pt = rte_flow_pattern_template_create(dport, &pta, masks.items, ferr);
	/* zero action masks: every value is given per rule */
	memset(&masks.actions, 0, sizeof(masks.actions));
	for (int i = 0; r->actions[i].type != RTE_FLOW_ACTION_TYPE_END; i++)
		masks.actions[i].type = r->actions[i].type;
	if (t->pt)
		t->at = rte_flow_actions_template_create(dport, &ata, r->actions, masks.actions, ferr);
	tta.flow_attr.priority = miss ? 1 : 0;
	if (t->pt && t->at)
		t->tbl = rte_flow_template_table_create(dport, &tta, &t->pt, 1, &t->at, 1, ferr);
	return t->tbl ? t : NULL;
}

/* ---- rules ------------------------------------------------------------------------------------- */

/* e: the entry the rule is for, NULL for the pipe's miss rule. */
static struct rte_flow *rule_create(struct pfd *d, uint32_t pipe, uint32_t pidx, const struct pfd_entry *e,
				    struct rule_buf *r, struct rte_flow_error *ferr, int *ret)
{
	struct pfd_port *p = &d->ports[d->hw->port_of[pidx]];
	struct rte_flow *f;

	*ret = 0;
	if (p->flow_async) {
		struct rte_flow_op_attr op = { .postpone = 0 };
		struct pfd_hw_table *t;

		/* a table's pattern template holds the pipe's first mask only */
		if (e && e->mask_idx != 0) {
			*ret = -ENOTSUP;
			ferr->message = "template tables hold the first mask of a control pipe only";
			return NULL;
		}
		t = table_for(d, pipe, pidx, r, !e, ferr);
		if (!t) {
			*ret = -ENOTSUP;
			return NULL;
		}
		f = rte_flow_async_create(p->dpdk_port, PFD_ASYNC_QUEUE, &op, t->tbl, r->items, 0, r->actions, 0, NULL,
					  ferr);
		if (f && (*ret = async_complete(p->dpdk_port, ferr)) != 0)
			f = NULL;
		return f;
	}
	f = rte_flow_create(p->dpdk_port, &r->attr, r->items, r->actions, ferr);
	if (!f)
		*ret = -rte_errno;
	return f;
}

static void rule_destroy(struct pfd *d, uint32_t pidx, struct rte_flow *f)
{
	struct pfd_port *p = &d->ports[d->hw->port_of[pidx]];
	struct rte_flow_error ferr = { 0 };

	if (!f)
		return;
	if (p->flow_async) {
		struct rte_flow_op_attr op = { .postpone = 0 };

		if (!rte_flow_async_destroy(p->dpdk_port, PFD_ASYNC_QUEUE, &op, f, NULL, &ferr))
			async_complete(p->dpdk_port, &ferr);
	} else {
		rte_flow_destroy(p->dpdk_port, f, &ferr);
	}
}

/* Does this rule belong on this port? A match on meta.port places it on that port only. */
static bool rule_on_port(const struct pfd *d, uint32_t pipe, const struct pfd_entry *e, uint32_t port)
{
	const struct pfd_pipe *pp = &d->pipes[pipe];

	if (!e || e->mask_idx >= pp->nmasks || !pp->masks[e->mask_idx].port)
		return true;
	return (e->match.port & pp->masks[e->mask_idx].port) == (port & pp->masks[e->mask_idx].port);
}

/* Rules of one entry on every port it belongs on; the caller holds hw_lock. */
static int entry_rules_create(struct pfd *d, uint32_t id, bool quiet)
{
	struct pfd_hw *hw = d->hw;
	const struct pfd_entry *e = &d->entries[id];
	struct rule_buf r;
	int ret = 0;

	for (uint32_t i = 0; i < hw->nports; i++) {
		struct rte_flow **slot = &hw->entry_flows[(size_t)id * hw->nports + i];
		struct rte_flow_error ferr = { 0 };

		if (*slot || !rule_on_port(d, e->pipe, e, hw->port_of[i]))
			continue;
		build_rule(d, &r, e->pipe, e);
		if (r.unsupported) {
			ret = -ENOTSUP;
			if (!quiet)
				pf_debug("entry %u of pipe %u stays in software: %s", id, e->pipe, r.unsupported);
			break;
		}
		*slot = rule_create(d, e->pipe, i, e, &r, &ferr, &ret);
		if (!*slot) {
			hw->refused++;
			if (!quiet)
				pf_info("entry %u of pipe %u on %s stays in software (rte_flow: %s)", id, e->pipe,
					d->ports[hw->port_of[i]].name, flow_msg(&ferr, ret));
			ret = ret ? ret : -EIO;
			break;
		}
		hw->created++;
	}
	return ret;
}

static void entry_rules_destroy(struct pfd *d, uint32_t id)
{
	struct pfd_hw *hw = d->hw;

	for (uint32_t i = 0; i < hw->nports; i++) {
		struct rte_flow **slot = &hw->entry_flows[(size_t)id * hw->nports + i];

		rule_destroy(d, i, *slot);
		*slot = NULL;
	}
}

/* A control pipe is priority ordered: with one rule missing in the NIC a lower one could win there.
 * Remove all its entry rules; its miss rule sends every frame to the software pipe. */
static void demote_pipe(struct pfd *d, uint32_t pipe)
{
	d->hw->demoted[pipe] = true;
	d->pipes[pipe].offloaded = false;
	for (uint32_t id = 0; id < d->max_entries; id++)
		if (d->entries[id].in_use && d->entries[id].pipe == pipe)
			entry_rules_destroy(d, id);
	pf_warn("pipe %u: a rule was refused, so the whole (priority ordered) pipe now runs in software", pipe);
}

void pfd_rte_flow_entry_added(struct pfd *d, uint32_t id)
{
	uint32_t pipe;

	pthread_mutex_lock(&hw_lock);
	if (!d->hw || id >= d->max_entries) {
		pthread_mutex_unlock(&hw_lock);
		return;
	}
	pipe = d->entries[id].pipe;
	entry_rules_destroy(d, id);     /* an update in place replaces the rules */
	if (!d->hw->demoted[pipe] && entry_rules_create(d, id, false)) {
		entry_rules_destroy(d, id);
		if (d->pipes[pipe].cfg.type == PF_PIPE_CONTROL)
			demote_pipe(d, pipe);
	}
	pthread_mutex_unlock(&hw_lock);
}

void pfd_rte_flow_entry_removed(struct pfd *d, uint32_t id)
{
	pthread_mutex_lock(&hw_lock);
	if (d->hw && id < d->max_entries)
		entry_rules_destroy(d, id);
	pthread_mutex_unlock(&hw_lock);
}

bool pfd_rte_flow_entry_offloaded(struct pfd *d, uint32_t id)
{
	bool any = false, all = true;

	pthread_mutex_lock(&hw_lock);
	if (d->hw && id < d->max_entries && d->entries[id].in_use) {
		const struct pfd_entry *e = &d->entries[id];

		for (uint32_t i = 0; i < d->hw->nports; i++) {
			if (!rule_on_port(d, e->pipe, e, d->hw->port_of[i]))
				continue;
			if (d->hw->entry_flows[(size_t)id * d->hw->nports + i])
				any = true;
			else
				all = false;
		}
	}
	pthread_mutex_unlock(&hw_lock);
	return any && all;
}

void pfd_rte_flow_entry_counts(struct pfd *d, uint32_t id, struct pf_counter *out)
{
	struct rte_flow_action count_action[2] = { { RTE_FLOW_ACTION_TYPE_COUNT, NULL },
						   { RTE_FLOW_ACTION_TYPE_END, NULL } };

	pthread_mutex_lock(&hw_lock);
	for (uint32_t i = 0; d->hw && id < d->max_entries && i < d->hw->nports; i++) {
		struct rte_flow *f = d->hw->entry_flows[(size_t)id * d->hw->nports + i];
		struct rte_flow_query_count q = { 0 };
		struct rte_flow_error ferr = { 0 };

		if (f && !rte_flow_query(d->ports[d->hw->port_of[i]].dpdk_port, f, count_action, &q, &ferr)) {
			out->packets += q.hits_set ? q.hits : 0;
			out->bytes += q.bytes_set ? q.bytes : 0;
		}
	}
	pthread_mutex_unlock(&hw_lock);
}

static void tables_destroy(struct pfd *d, struct pfd_hw *hw)
{
	for (uint32_t pipe = 0; pipe < PF_MAX_PIPES; pipe++)
		for (uint32_t k = 0; k < hw->nports * 2; k++) {
			struct pfd_hw_table *t = &hw->tables[(size_t)pipe * hw->nports * 2 + k];
			uint16_t dport = d->ports[hw->port_of[k / 2]].dpdk_port;
			struct rte_flow_error ferr = { 0 };

			if (t->tbl)
				rte_flow_template_table_destroy(dport, t->tbl, &ferr);
			if (t->at)
				rte_flow_actions_template_destroy(dport, t->at, &ferr);
			if (t->pt)
				rte_flow_pattern_template_destroy(dport, t->pt, &ferr);
			memset(t, 0, sizeof(*t));
		}
}

/* Every rule, table and template; the software pipes carry on alone. */
void pfd_rte_flow_remove(struct pfd *d)
{
	struct pfd_hw *hw;
	uint64_t n = 0;

	pthread_mutex_lock(&hw_lock);
	hw = d->hw;
	if (!hw) {
		pthread_mutex_unlock(&hw_lock);
		return;
	}
	for (uint32_t id = 0; id < d->max_entries; id++)
		for (uint32_t i = 0; i < hw->nports; i++) {
			struct rte_flow **slot = &hw->entry_flows[(size_t)id * hw->nports + i];

			n += *slot != NULL;
			rule_destroy(d, i, *slot);
			*slot = NULL;
		}
	for (uint32_t k = 0; k < PF_MAX_PIPES * hw->nports; k++) {
		n += hw->miss_flows[k] != NULL;
		rule_destroy(d, k % hw->nports, hw->miss_flows[k]);
		hw->miss_flows[k] = NULL;
	}
	tables_destroy(d, hw);
	d->hw = NULL;
	pthread_mutex_unlock(&hw_lock);
	if (n)
		pf_info("rte_flow: %lu rules destroyed", (unsigned long)n);
	free(hw->entry_flows);
	free(hw->miss_flows);
	free(hw->tables);
	free(hw);
}

static struct pfd_hw *hw_new(struct pfd *d)
{
	struct pfd_hw *hw = calloc(1, sizeof(*hw));

	if (!hw)
		return NULL;
	for (uint32_t port = 0; port < PF_MAX_PORTS; port++)
		if (d->ports[port].in_use)
			hw->port_of[hw->nports++] = port;
	hw->entry_flows = calloc((size_t)d->max_entries * hw->nports, sizeof(*hw->entry_flows));
	hw->miss_flows = calloc((size_t)PF_MAX_PIPES * hw->nports, sizeof(*hw->miss_flows));
	hw->tables = calloc((size_t)PF_MAX_PIPES * hw->nports * 2, sizeof(*hw->tables));
	if (!hw->entry_flows || !hw->miss_flows || !hw->tables) {
		free(hw->entry_flows);
		free(hw->miss_flows);
		free(hw->tables);
		free(hw);
		return NULL;
	}
	return hw;
}

/* The rule the PMD is asked about for a pipe: its first entry, else the pipe's miss rule. */
static void representative_rule(struct pfd *d, uint32_t pipe, struct rule_buf *r)
{
	for (uint32_t id = 0; id < d->max_entries; id++)
		if (d->entries[id].in_use && d->entries[id].pipe == pipe) {
			build_rule(d, r, pipe, &d->entries[id]);
			return;
		}
	build_rule(d, r, pipe, NULL);
}

/* Why a pipe's own rules cannot be rte_flow rules (its miss rule or any entry's), NULL if they can.
 * Start keeps such a pipe, and (rules are all or nothing) every other pipe, in the software pipes;
 * the plan reports the same answer. */
static const char *pipe_software_reason(struct pfd *d, uint32_t pipe)
{
	struct rule_buf r;

	if (d->rte_flow_mode == PFD_RTE_FLOW_OFF)
		return "rte_flow off (PYFLOW_DPDK_RTE_FLOW=off)";
	build_rule(d, &r, pipe, NULL);
	if (r.unsupported)
		return r.unsupported;
	for (uint32_t id = 0; id < d->max_entries; id++)
		if (d->entries[id].in_use && d->entries[id].pipe == pipe) {
			build_rule(d, &r, pipe, &d->entries[id]);
			if (r.unsupported)
				return r.unsupported;
		}
	return NULL;
}

/* Validate every pipe on every port (before the ports start) and report. */
void pfd_rte_flow_probe(struct pfd *d)
{
	uint32_t accepted = 0, total = 0;
	const char *driver = "";

	d->rte_flow_all = false;
	for (uint32_t pipe = 0; pipe < PF_MAX_PIPES; pipe++) {
		struct pfd_pipe *pp = &d->pipes[pipe];
		const char *why;
		struct rule_buf r;
		bool all = true;

		if (!(pp->cfg.flags & PF_PIPE_IN_USE))
			continue;
		total++;
		why = pipe_software_reason(d, pipe);
		/* the same rule is asked of every port */
		if (!why)
			representative_rule(d, pipe, &r);
		for (uint32_t port = 0; port < PF_MAX_PORTS; port++) {
			struct rte_flow_error ferr = { 0 };
			struct rte_eth_dev_info info;
			int ret;

			if (!d->ports[port].in_use)
				continue;
			rte_eth_dev_info_get(d->ports[port].dpdk_port, &info);
			driver = info.driver_name;
			if (d->rte_flow_mode == PFD_RTE_FLOW_OFF) {
				all = false;
				continue;
			}
			if (why) {
				all = false;
				pf_info("pipe %u: software (%s)", pipe, why);
				break;
			}
			ret = rte_flow_validate(d->ports[port].dpdk_port, &r.attr, r.items, r.actions, &ferr);
			if (ret) {
				all = false;
				pf_info("pipe %u on %s (%s): software (rte_flow: %s)", pipe, d->ports[port].name,
					info.driver_name, flow_msg(&ferr, ret));
			} else {
				pf_info("pipe %u on %s (%s): rte_flow accepts group %u", pipe, d->ports[port].name,
					info.driver_name, r.attr.group);
			}
		}
		pp->offloaded = false;
		accepted += all;
	}
	d->rte_flow_all = total && accepted == total;
	if (d->rte_flow_mode == PFD_RTE_FLOW_OFF)
		snprintf(d->mode_reason, sizeof(d->mode_reason),
			 "rte_flow off (PYFLOW_DPDK_RTE_FLOW=off); the software pipes on lcores run the pipeline");
	else
		snprintf(d->mode_reason, sizeof(d->mode_reason),
			 "rte_flow accepted %u of %u pipes on every port (%s); %s", accepted, total, driver,
			 d->rte_flow_all ? "creating the rules" : "the software pipes on lcores run the pipeline");
	if (d->rte_flow_all)
		pf_info("%s", d->mode_reason);
	else
		pf_warn("%s", d->mode_reason);
}

/* After the ports started: create every rule, all or nothing. */
int pfd_rte_flow_install(struct pfd *d)
{
	struct pfd_hw *hw;
	uint32_t entries = 0, misses = 0;
	bool force = d->rte_flow_mode == PFD_RTE_FLOW_FORCE;
	const char *why = NULL;
	char msg[200] = "";

	if (d->rte_flow_mode == PFD_RTE_FLOW_OFF || (!d->rte_flow_all && !force))
		return 0;
	hw = hw_new(d);
	if (!hw) {
		pf_warn("rte_flow: out of memory for rule handles; software pipes only");
		return -ENOMEM;
	}
	pthread_mutex_lock(&hw_lock);
	d->hw = hw;
	for (uint32_t pipe = 0; pipe < PF_MAX_PIPES && !why; pipe++) {
		if (!(d->pipes[pipe].cfg.flags & PF_PIPE_IN_USE))
			continue;
		for (uint32_t i = 0; i < hw->nports && !why; i++) {
			struct rule_buf r;
			struct rte_flow_error ferr = { 0 };
			int ret;

			build_rule(d, &r, pipe, NULL);
			hw->miss_flows[pipe * hw->nports + i] = rule_create(d, pipe, i, NULL, &r, &ferr, &ret);
			if (!hw->miss_flows[pipe * hw->nports + i]) {
				snprintf(msg, sizeof(msg), "miss rule of pipe %u on %s: %s", pipe,
					 d->ports[hw->port_of[i]].name, flow_msg(&ferr, ret));
				why = msg;
			}
			misses++;
		}
	}
	for (uint32_t id = 0; id < d->max_entries && !why; id++) {
		if (!d->entries[id].in_use)
			continue;
		if (entry_rules_create(d, id, true)) {
			snprintf(msg, sizeof(msg), "entry %u of pipe %u refused", id, d->entries[id].pipe);
			why = msg;
		}
		entries++;
	}
	pthread_mutex_unlock(&hw_lock);
	if (why) {
		pf_warn("rte_flow: creating the rules failed (%s); all rules removed, the software pipes run the "
			"pipeline", why);
		snprintf(d->mode_reason, sizeof(d->mode_reason), "rte_flow refused at creation (%.150s); software pipes",
			 why);
		pfd_rte_flow_remove(d);
		return -ENOTSUP;
	}
	for (uint32_t pipe = 0; pipe < PF_MAX_PIPES; pipe++)
		d->pipes[pipe].offloaded = !!(d->pipes[pipe].cfg.flags & PF_PIPE_IN_USE);
	snprintf(d->mode_reason, sizeof(d->mode_reason),
		 "rte_flow: every pipe offloaded (%u entries as %lu rules, %u miss rules); misses continue in software",
		 entries, (unsigned long)hw->created, misses);
	pf_info("%s", d->mode_reason);
	return 0;
}

/* ---- describe: every pipe's rules as dpdk-testpmd commands, for the plan (dry) and a run ---------- */

static void put_mac(struct pf_jbuf *b, const uint8_t *a)
{
	pf_jb_put(b, "%02x:%02x:%02x:%02x:%02x:%02x", a[0], a[1], a[2], a[3], a[4], a[5]);
}

static void put_ip4(struct pf_jbuf *b, rte_be32_t a)
{
	const uint8_t *p = (const uint8_t *)&a;

	pf_jb_put(b, "%u.%u.%u.%u", p[0], p[1], p[2], p[3]);
}

static void put_ip6(struct pf_jbuf *b, const uint8_t *a)
{
	char text[INET6_ADDRSTRLEN];

	pf_jb_put(b, "%s", inet_ntop(AF_INET6, a, text, sizeof(text)) ? text : "?");
}

enum tp_kind { TP_UINT, TP_HEX, TP_MAC, TP_IP4, TP_IP6 };

/* One field of an item in testpmd's words: "NAME is V" under a full mask, else "NAME spec V NAME mask M";
 * nothing when the mask is zero. */
static void put_field(struct pf_jbuf *b, const char *name, enum tp_kind kind, const void *spec, const void *mask,
		      size_t n, uint64_t full)
{
	uint64_t v = 0, m = 0;
	bool is_full;

	if (!nonzero(mask, n))
		return;
	if (kind == TP_UINT || kind == TP_HEX) {
		memcpy(&v, spec, n);
		memcpy(&m, mask, n);
		is_full = m == full;
	} else {
		is_full = true;
		for (size_t i = 0; i < n; i++)
			is_full &= ((const uint8_t *)mask)[i] == 0xff;
	}
	for (int pass = 0; pass < (is_full ? 1 : 2); pass++) {
		const void *p = pass ? mask : spec;
		uint64_t x = pass ? m : v;

		pf_jb_put(b, " %s %s ", name, is_full ? "is" : pass ? "mask" : "spec");
		switch (kind) {
		case TP_UINT:
			pf_jb_put(b, pass ? "0x%" PRIx64 : "%" PRIu64, x);
			break;
		case TP_HEX:
			pf_jb_put(b, "0x%" PRIx64, x);
			break;
		case TP_MAC:
			put_mac(b, p);
			break;
		case TP_IP4:
			put_ip4(b, *(const rte_be32_t *)p);
			break;
		case TP_IP6:
			put_ip6(b, p);
			break;
		}
	}
}

static void put_be16_field(struct pf_jbuf *b, const char *name, enum tp_kind kind, rte_be16_t spec, rte_be16_t mask)
{
	uint16_t v = rte_be_to_cpu_16(spec), m = rte_be_to_cpu_16(mask);

	put_field(b, name, kind, &v, &m, 2, 0xffff);
}

static uint32_t mpls_label(const uint8_t *l)
{
	return ((uint32_t)l[0] << 12) | ((uint32_t)l[1] << 4) | (l[2] >> 4);
}

/* The pattern, from the rule's rte_flow_item array. */
static void put_items(struct pf_jbuf *b, const struct rte_flow_item *it)
{
	for (; it->type != RTE_FLOW_ITEM_TYPE_END; it++) {
		switch (it->type) {
		case RTE_FLOW_ITEM_TYPE_ETH: {
			const struct rte_flow_item_eth *v = it->spec, *m = it->mask;

			pf_jb_put(b, "eth");
			put_field(b, "dst", TP_MAC, v->hdr.dst_addr.addr_bytes, m->hdr.dst_addr.addr_bytes, 6, 0);
			put_field(b, "src", TP_MAC, v->hdr.src_addr.addr_bytes, m->hdr.src_addr.addr_bytes, 6, 0);
			put_be16_field(b, "type", TP_HEX, v->hdr.ether_type, m->hdr.ether_type);
			break;
		}
		case RTE_FLOW_ITEM_TYPE_VLAN: {
			const struct rte_flow_item_vlan *v = it->spec, *m = it->mask;
			uint16_t tci = rte_be_to_cpu_16(v->hdr.vlan_tci), tmask = rte_be_to_cpu_16(m->hdr.vlan_tci);

			pf_jb_put(b, "vlan");
			if (tmask == 0x0fff)
				pf_jb_put(b, " vid is %u", tci & 0x0fff);
			else
				put_field(b, "tci", TP_UINT, &tci, &tmask, 2, 0xffff);
			break;
		}
		case RTE_FLOW_ITEM_TYPE_MPLS: {
			const struct rte_flow_item_mpls *v = it->spec, *m = it->mask;
			uint32_t label = mpls_label(v->label_tc_s), lmask = mpls_label(m->label_tc_s);

			pf_jb_put(b, "mpls");
			put_field(b, "label", TP_UINT, &label, &lmask, 4, 0xfffff);
			break;
		}
		case RTE_FLOW_ITEM_TYPE_IPV4: {
			const struct rte_flow_item_ipv4 *v = it->spec, *m = it->mask;

			pf_jb_put(b, "ipv4");
			put_field(b, "src", TP_IP4, &v->hdr.src_addr, &m->hdr.src_addr, 4, 0);
			put_field(b, "dst", TP_IP4, &v->hdr.dst_addr, &m->hdr.dst_addr, 4, 0);
			put_field(b, "proto", TP_UINT, &v->hdr.next_proto_id, &m->hdr.next_proto_id, 1, 0xff);
			put_field(b, "ttl", TP_UINT, &v->hdr.time_to_live, &m->hdr.time_to_live, 1, 0xff);
			put_field(b, "tos", TP_HEX, &v->hdr.type_of_service, &m->hdr.type_of_service, 1, 0xff);
			break;
		}
		case RTE_FLOW_ITEM_TYPE_IPV6: {
			const struct rte_flow_item_ipv6 *v = it->spec, *m = it->mask;

			pf_jb_put(b, "ipv6");
			put_field(b, "src", TP_IP6, v->hdr.src_addr, m->hdr.src_addr, 16, 0);
			put_field(b, "dst", TP_IP6, v->hdr.dst_addr, m->hdr.dst_addr, 16, 0);
			put_field(b, "proto", TP_UINT, &v->hdr.proto, &m->hdr.proto, 1, 0xff);
			break;
		}
		case RTE_FLOW_ITEM_TYPE_TCP: {
			const struct rte_flow_item_tcp *v = it->spec, *m = it->mask;

			pf_jb_put(b, "tcp");
			put_be16_field(b, "src", TP_UINT, v->hdr.src_port, m->hdr.src_port);
			put_be16_field(b, "dst", TP_UINT, v->hdr.dst_port, m->hdr.dst_port);
			put_field(b, "flags", TP_HEX, &v->hdr.tcp_flags, &m->hdr.tcp_flags, 1, 0xff);
			break;
		}
		case RTE_FLOW_ITEM_TYPE_UDP: {
			const struct rte_flow_item_udp *v = it->spec, *m = it->mask;

			pf_jb_put(b, "udp");
			put_be16_field(b, "src", TP_UINT, v->hdr.src_port, m->hdr.src_port);
			put_be16_field(b, "dst", TP_UINT, v->hdr.dst_port, m->hdr.dst_port);
			break;
		}
		case RTE_FLOW_ITEM_TYPE_MARK: {
			const struct rte_flow_item_mark *v = it->spec, *m = it->mask;

			pf_jb_put(b, "mark");
			put_field(b, "id", TP_UINT, &v->id, &m->id, 4, 0xffffffff);
			break;
		}
		default:
			pf_jb_put(b, "item%d", (int)it->type);
			break;
		}
		pf_jb_put(b, " / ");
	}
	pf_jb_put(b, "end");
}

/* The actions, from the rule's rte_flow_action array. */
static void put_actions(struct pf_jbuf *b, const struct rte_flow_action *a)
{
	for (; a->type != RTE_FLOW_ACTION_TYPE_END; a++) {
		switch (a->type) {
		case RTE_FLOW_ACTION_TYPE_COUNT:
			pf_jb_put(b, "count");
			break;
		case RTE_FLOW_ACTION_TYPE_OF_POP_VLAN:
			pf_jb_put(b, "of_pop_vlan");
			break;
		case RTE_FLOW_ACTION_TYPE_SET_MAC_SRC:
		case RTE_FLOW_ACTION_TYPE_SET_MAC_DST:
			pf_jb_put(b, "set_mac_%s mac_addr ", a->type == RTE_FLOW_ACTION_TYPE_SET_MAC_SRC ? "src" : "dst");
			put_mac(b, ((const struct rte_flow_action_set_mac *)a->conf)->mac_addr);
			break;
		case RTE_FLOW_ACTION_TYPE_SET_IPV4_SRC:
		case RTE_FLOW_ACTION_TYPE_SET_IPV4_DST:
			pf_jb_put(b, "set_ipv4_%s ipv4_addr ", a->type == RTE_FLOW_ACTION_TYPE_SET_IPV4_SRC ? "src" : "dst");
			put_ip4(b, ((const struct rte_flow_action_set_ipv4 *)a->conf)->ipv4_addr);
			break;
		case RTE_FLOW_ACTION_TYPE_SET_IPV6_SRC:
		case RTE_FLOW_ACTION_TYPE_SET_IPV6_DST:
			pf_jb_put(b, "set_ipv6_%s ipv6_addr ", a->type == RTE_FLOW_ACTION_TYPE_SET_IPV6_SRC ? "src" : "dst");
			put_ip6(b, ((const struct rte_flow_action_set_ipv6 *)a->conf)->ipv6_addr);
			break;
		case RTE_FLOW_ACTION_TYPE_SET_TP_SRC:
		case RTE_FLOW_ACTION_TYPE_SET_TP_DST:
			pf_jb_put(b, "set_tp_%s port %u", a->type == RTE_FLOW_ACTION_TYPE_SET_TP_SRC ? "src" : "dst",
				  rte_be_to_cpu_16(((const struct rte_flow_action_set_tp *)a->conf)->port));
			break;
		case RTE_FLOW_ACTION_TYPE_SET_IPV4_DSCP:
			pf_jb_put(b, "set_ipv4_dscp dscp %u", ((const struct rte_flow_action_set_dscp *)a->conf)->dscp);
			break;
		case RTE_FLOW_ACTION_TYPE_DEC_TTL:
			pf_jb_put(b, "dec_ttl");
			break;
		case RTE_FLOW_ACTION_TYPE_OF_PUSH_VLAN:
			pf_jb_put(b, "of_push_vlan ethertype 0x%04x",
				  rte_be_to_cpu_16(((const struct rte_flow_action_of_push_vlan *)a->conf)->ethertype));
			break;
		case RTE_FLOW_ACTION_TYPE_OF_SET_VLAN_VID:
			pf_jb_put(b, "of_set_vlan_vid vlan_vid %u",
				  rte_be_to_cpu_16(((const struct rte_flow_action_of_set_vlan_vid *)a->conf)->vlan_vid));
			break;
		case RTE_FLOW_ACTION_TYPE_MARK:
			pf_jb_put(b, "mark id %u", ((const struct rte_flow_action_mark *)a->conf)->id);
			break;
		case RTE_FLOW_ACTION_TYPE_JUMP:
			pf_jb_put(b, "jump group %u", ((const struct rte_flow_action_jump *)a->conf)->group);
			break;
		case RTE_FLOW_ACTION_TYPE_PORT_ID:
			pf_jb_put(b, "port_id id %u", ((const struct rte_flow_action_port_id *)a->conf)->id);
			break;
		case RTE_FLOW_ACTION_TYPE_QUEUE:
			pf_jb_put(b, "queue index %u", ((const struct rte_flow_action_queue *)a->conf)->index);
			break;
		case RTE_FLOW_ACTION_TYPE_DROP:
			pf_jb_put(b, "drop");
			break;
		default:
			pf_jb_put(b, "action%d", (int)a->type);
			break;
		}
		pf_jb_put(b, " / ");
	}
	pf_jb_put(b, "end");
}

#define PLAN_PMD_ANSWER "offloaded if the PMD accepts it"

/* a dry instance (pyflow plan) has no EAL behind it */
static bool is_dry(const struct pfd *d)
{
	return d->inst == NULL;
}

/* What the PMD said of one rule on one port: created, or what rte_flow_validate answers now. */
static void put_pmd_answer(struct pfd *d, struct pf_jbuf *b, uint32_t port, struct rule_buf *r, bool created)
{
	struct rte_flow_error ferr = { 0 };
	char msg[320];
	int ret;

	if (is_dry(d)) {
		pf_jb_str(b, PLAN_PMD_ANSWER);
		return;
	}
	if (created) {
		pf_jb_str(b, "created");
		return;
	}
	ret = rte_flow_validate(d->ports[port].dpdk_port, &r->attr, r->items, r->actions, &ferr);
	if (ret)
		snprintf(msg, sizeof(msg), "refused by the PMD: %s", flow_msg(&ferr, ret));
	else
		snprintf(msg, sizeof(msg), "accepted by the PMD, not created (%s)", d->mode_reason);
	pf_jb_str(b, msg);
}

/* One rule: where it goes, its testpmd command, and the PMD's answer (a plan: that it decides). */
static void put_rule(struct pfd *d, struct pf_jbuf *b, uint32_t pipe, uint32_t port, const struct pfd_entry *e,
		     uint32_t id, bool *first)
{
	struct pfd_hw *hw = d->hw;
	struct rule_buf r;
	bool created = false;

	build_rule(d, &r, pipe, e);
	if (hw)
		for (uint32_t i = 0; i < hw->nports; i++)
			if (hw->port_of[i] == port)
				created = e ? hw->entry_flows[(size_t)id * hw->nports + i] != NULL
					    : hw->miss_flows[pipe * hw->nports + i] != NULL;
	pf_jb_put(b, "%s{\"port\": %u, \"entry\": ", *first ? "" : ", ", port);
	if (e)
		pf_jb_put(b, "%u", id);
	else
		pf_jb_put(b, "null");
	pf_jb_put(b, ", \"flow\": \"flow create %u %s group %u priority %u pattern ", d->ports[port].dpdk_port,
		  r.attr.egress ? "egress" : "ingress", r.attr.group, r.attr.priority);
	put_items(b, r.items);
	pf_jb_put(b, " actions ");
	put_actions(b, r.actions);
	pf_jb_put(b, "\", \"pmd\": ");
	put_pmd_answer(d, b, port, &r, created);
	pf_jb_put(b, "}");
	*first = false;
}

/* {"rte_flow": mode, "offload": summary, "pipes": [{"id", "group", "software": reason | null, "rules": [...]}]}:
 * the rules start would create (a dry instance) or did (a started one), from the same build_rule. */
static int rte_flow_describe(struct pfd *d, char *buf, uint32_t len, uint32_t *needed, struct pf_error *err)
{
	static const char *const modes[] = { "auto", "off", "force" };
	struct pf_jbuf b = { 0 };
	const char *blocker = NULL;
	uint32_t blocker_pipe = 0;
	char all_or_none[200], summary[320];

	for (uint32_t pipe = 0; pipe < PF_MAX_PIPES && !blocker; pipe++)
		if (d->pipes[pipe].cfg.flags & PF_PIPE_IN_USE) {
			blocker = pipe_software_reason(d, pipe);
			blocker_pipe = pipe;
		}
	snprintf(all_or_none, sizeof(all_or_none), "rules are created for every pipe or none, and pipe %u runs in "
		 "software (%s)", blocker_pipe, blocker ? blocker : "");
	if (is_dry(d))
		snprintf(summary, sizeof(summary), "%s", blocker ? "the software pipes on lcores run the pipeline"
			 : "rte_flow rules for every pipe if the PMD accepts every pipe on every port (rte_flow_validate at "
			   "start), else the software pipes on lcores run the pipeline");
	else
		snprintf(summary, sizeof(summary), "%s", d->mode_reason);
	pthread_mutex_lock(&hw_lock);
	pf_jb_put(&b, "{\"rte_flow\": \"%s\", \"dry\": %s, \"offload\": ", modes[d->rte_flow_mode],
		  is_dry(d) ? "true" : "false");
	pf_jb_str(&b, summary);
	pf_jb_put(&b, ", \"pipes\": [");
	for (uint32_t pipe = 0, first_pipe = 1; pipe < PF_MAX_PIPES; pipe++) {
		const char *why;
		bool first = true;

		if (!(d->pipes[pipe].cfg.flags & PF_PIPE_IN_USE))
			continue;
		why = pipe_software_reason(d, pipe);
		if (!why && blocker)
			why = all_or_none;
		pf_jb_put(&b, "%s{\"id\": %u, \"group\": %u, \"offloaded\": %s, \"software\": ", first_pipe ? "" : ", ",
			  pipe, pipe_group(d, pipe), is_dry(d) ? "null" : d->pipes[pipe].offloaded ? "true" : "false");
		pf_jb_str(&b, why);
		pf_jb_put(&b, ", \"rules\": [");
		first_pipe = 0;
		for (uint32_t id = 0; id < d->max_entries && !why; id++) {
			const struct pfd_entry *e = &d->entries[id];

			if (!e->in_use || e->pipe != pipe)
				continue;
			for (uint32_t port = 0; port < PF_MAX_PORTS; port++)
				if (d->ports[port].in_use && rule_on_port(d, pipe, e, port))
					put_rule(d, &b, pipe, port, e, id, &first);
		}
		for (uint32_t port = 0; port < PF_MAX_PORTS && !why; port++)
			if (d->ports[port].in_use)
				put_rule(d, &b, pipe, port, NULL, 0, &first);
		pf_jb_put(&b, "]}");
	}
	pf_jb_put(&b, "]}");
	pthread_mutex_unlock(&hw_lock);
	return pf_jb_finish(&b, buf, len, needed, err);
}

int pfd_rte_flow_describe(pf_instance *inst, char *buf, uint32_t len, uint32_t *needed, struct pf_error *err)
{
	return rte_flow_describe(inst->priv, buf, len, needed, err);
}

/* ---- a dry instance (pyflow plan): the model kept in plain memory, no EAL and no device -------- */

static struct pfd *dry_of(pf_instance *inst)
{
	return inst->priv;
}

static int dry_open(pf_instance *inst, const struct pf_instance_opts *opts, struct pf_error *err)
{
	struct pfd *d = calloc(1, sizeof(*d));

	if (!d)
		return pf_err(err, -ENOMEM, "out of memory");
	d->max_entries = opts->max_entries ? opts->max_entries : PF_DEFAULT_MAX_ENTRIES;
	d->entries = calloc(d->max_entries, sizeof(*d->entries));
	if (!d->entries) {
		free(d);
		return pf_err(err, -ENOMEM, "out of memory for %u entries", opts->max_entries);
	}
	d->rte_flow_mode = pfd_rte_flow_mode_from_env();
	inst->priv = d;
	return 0;
}

static void dry_close(pf_instance *inst)
{
	struct pfd *d = dry_of(inst);

	if (d)
		free(d->entries);
	free(d);
	inst->priv = NULL;
}

static int dry_info(pf_instance *inst, struct pf_instance_info *info, struct pf_error *err)
{
	memset(info, 0, sizeof(*info));
	return 0;
}

static int dry_start(pf_instance *inst, struct pf_error *err)
{
	struct pfd *d = dry_of(inst);

	if (!d->root_set)
		return pf_err(err, -EINVAL, "backend dpdk: no root pipe set");
	return 0;
}

static int dry_stop(pf_instance *inst, struct pf_error *err)
{
	return 0;
}

/* A numeric binding is the DPDK port id; a device name is only known to an EAL, so the rules say the config
 * port's id for it. */
static int dry_port_set(pf_instance *inst, uint32_t port_id, const char *binding, const struct pf_port *port,
			struct pf_error *err)
{
	struct pfd_port *p = &dry_of(inst)->ports[port_id];
	char *end = NULL;
	unsigned long v = binding && *binding ? strtoul(binding, &end, 10) : port_id;

	if (port && (port->flags & PF_PORT_EGRESS_PIPE) && port->egress_pipe >= PF_MAX_PIPES)
		return pf_err(err, -ERANGE, "port %u: egress pipe %u out of range", port_id, port->egress_pipe);
	if (end && (*end || v >= RTE_MAX_ETHPORTS))
		v = port_id;
	else if (end)
		for (uint32_t other = 0; other < PF_MAX_PORTS; other++)
			if (other != port_id && dry_of(inst)->ports[other].in_use &&
			    dry_of(inst)->ports[other].dpdk_port == v)
				return pf_err(err, -EBUSY, "port %u: DPDK port %lu is already bound to port %u", port_id,
					      v, other);
	if (port)
		p->cfg = *port;
	p->cfg.flags |= PF_PORT_IN_USE;
	p->dpdk_port = (uint16_t)v;
	snprintf(p->name, sizeof(p->name), "%s", binding && *binding ? binding : "");
	p->in_use = true;
	return 0;
}

static int dry_pipe_set(pf_instance *inst, uint32_t pipe_id, const struct pf_pipe *pipe, const struct pf_fields *masks,
			uint32_t nmasks, struct pf_error *err)
{
	struct pfd_pipe *pp = &dry_of(inst)->pipes[pipe_id];

	if (pipe->type > PF_PIPE_HASH)
		return pf_err(err, -EINVAL, "pipe %u: type %u unknown (expected basic, control, lpm or hash)", pipe_id,
			      pipe->type);
	memcpy(pp->masks, masks, nmasks * sizeof(*masks));
	pp->nmasks = nmasks;
	pp->cfg = *pipe;
	pp->cfg.flags |= PF_PIPE_IN_USE;
	pp->cfg.nmasks = (uint8_t)nmasks;
	return 0;
}

static int dry_root_set(pf_instance *inst, uint32_t pipe_id, struct pf_error *err)
{
	struct pfd *d = dry_of(inst);

	if (pipe_id >= PF_MAX_PIPES || !(d->pipes[pipe_id].cfg.flags & PF_PIPE_IN_USE))
		return pf_err(err, -ENOENT, "root pipe %u is not defined", pipe_id);
	d->root_pipe = pipe_id;
	d->root_set = true;
	return 0;
}

static int dry_session_set(pf_instance *inst, uint32_t session_id, const struct pf_session *s, struct pf_error *err)
{
	dry_of(inst)->sessions[session_id] = *s;
	return 0;
}

static int dry_entry_add(pf_instance *inst, uint32_t pipe_id, uint32_t mask_idx, uint32_t prefixlen,
			 const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err)
{
	struct pfd *d = dry_of(inst);

	if (pipe_id >= PF_MAX_PIPES || !(d->pipes[pipe_id].cfg.flags & PF_PIPE_IN_USE))
		return pf_err(err, -ENOENT, "entry for pipe %u: the pipe is not defined", pipe_id);
	for (uint32_t id = 0; id < d->max_entries; id++) {
		struct pfd_entry *e = &d->entries[id];

		if (e->in_use)
			continue;
		entry->id = id;
		*e = (struct pfd_entry){ .in_use = 1, .pipe = pipe_id, .mask_idx = mask_idx, .prefixlen = prefixlen,
					 .match = *match, .e = *entry };
		return 0;
	}
	return pf_err(err, -ENOSPC, "pipe %u: entry table full (%u entries)", pipe_id, d->max_entries);
}

static int dry_entry_del(pf_instance *inst, uint32_t entry_id, struct pf_error *err)
{
	struct pfd *d = dry_of(inst);

	if (entry_id >= d->max_entries || !d->entries[entry_id].in_use)
		return pf_err(err, -ENOENT, "entry %u does not exist", entry_id);
	d->entries[entry_id].in_use = 0;
	return 0;
}

const struct pf_backend_ops pf_backend_dpdk_dry = {
	.name = "dpdk",
	.open = dry_open,
	.close = dry_close,
	.info = dry_info,
	.start = dry_start,
	.stop = dry_stop,
	.destroy = dry_stop,
	.port_set = dry_port_set,
	.pipe_set = dry_pipe_set,
	.root_set = dry_root_set,
	.session_set = dry_session_set,
	.entry_add = dry_entry_add,
	.entry_del = dry_entry_del,
	.describe = pfd_rte_flow_describe,
};
#endif
