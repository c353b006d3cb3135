// SPDX-License-Identifier: BSD-2-Clause
/*
 * rte_flow probe: translate every pipe into the rule it would become (root in
 * group 0, every other pipe in its own group reached by JUMP, COUNT, fwd as
 * JUMP / PORT_ID / QUEUE to the miss queue / DROP) and ask each port's PMD with
 * rte_flow_validate. The answer is reported per pipe with the PMD's own
 * message; pipes the PMD refuses run in software (all of them on vdevs).
 */
#ifdef PF_HAVE_DPDK
#define ALLOW_EXPERIMENTAL_API 1   /* rte_flow_info_get: is the template API there? */
#include <stdio.h>
#include <string.h>
#include <rte_flow.h>
#include "dpdk.h"

#define PFD_MAX_ITEMS 8

struct rule_buf {
	struct rte_flow_item items[PFD_MAX_ITEMS];
	struct rte_flow_item_eth eth_spec, eth_mask;
	struct rte_flow_item_vlan vlan_spec, vlan_mask;
	struct rte_flow_item_ipv4 ip4_spec, ip4_mask;
	struct rte_flow_item_ipv6 ip6_spec, ip6_mask;
	struct rte_flow_item_udp udp_spec, udp_mask;
	struct rte_flow_item_tcp tcp_spec, tcp_mask;
	struct rte_flow_item_mpls mpls_spec, mpls_mask;
	struct rte_flow_item_mark mark_spec, mark_mask;
	struct rte_flow_action actions[4];
	struct rte_flow_action_count count;
	struct rte_flow_action_jump jump;
	struct rte_flow_action_port_id port;
	struct rte_flow_action_queue queue;
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

/* Items for the pipe's first mask: spec 0 and the mask itself (a template of the pipe's entries). */
static void build_pattern(struct rule_buf *r, const struct pf_fields *m)
{
	int n = 0;

	memset(r, 0, sizeof(*r));
	memcpy(r->eth_mask.hdr.dst_addr.addr_bytes, m->eth_dst, 6);
	memcpy(r->eth_mask.hdr.src_addr.addr_bytes, m->eth_src, 6);
	r->eth_mask.hdr.ether_type = m->eth_type;
	r->items[n++] = (struct rte_flow_item){ RTE_FLOW_ITEM_TYPE_ETH, &r->eth_spec, NULL, &r->eth_mask };
	if (m->vlan_id) {
		r->vlan_mask.hdr.vlan_tci = rte_cpu_to_be_16(m->vlan_id & 0x0fff);
		r->items[n++] = (struct rte_flow_item){ RTE_FLOW_ITEM_TYPE_VLAN, &r->vlan_spec, NULL, &r->vlan_mask };
	}
	if (m->mpls_label) {
		r->mpls_mask.label_tc_s[0] = 0xff;
		r->mpls_mask.label_tc_s[1] = 0xff;
		r->mpls_mask.label_tc_s[2] = 0xf0;
		r->items[n++] = (struct rte_flow_item){ RTE_FLOW_ITEM_TYPE_MPLS, &r->mpls_spec, NULL, &r->mpls_mask };
	}
	if (m->ipv4_src || m->ipv4_dst || m->ip_ttl || m->ip_dscp ||
	    (m->ip_proto && !nonzero(m->ipv6_src, 16) && !nonzero(m->ipv6_dst, 16))) {
		r->ip4_mask.hdr.src_addr = m->ipv4_src;
		r->ip4_mask.hdr.dst_addr = m->ipv4_dst;
		r->ip4_mask.hdr.next_proto_id = m->ip_proto;
		r->ip4_mask.hdr.time_to_live = m->ip_ttl;
		r->ip4_mask.hdr.type_of_service = (uint8_t)(m->ip_dscp << 2);
		r->items[n++] = (struct rte_flow_item){ RTE_FLOW_ITEM_TYPE_IPV4, &r->ip4_spec, NULL, &r->ip4_mask };
	} else if (nonzero(m->ipv6_src, 16) || nonzero(m->ipv6_dst, 16)) {
		memcpy(r->ip6_mask.hdr.src_addr, m->ipv6_src, 16);
		memcpy(r->ip6_mask.hdr.dst_addr, m->ipv6_dst, 16);
		r->ip6_mask.hdr.proto = m->ip_proto;
		r->items[n++] = (struct rte_flow_item){ RTE_FLOW_ITEM_TYPE_IPV6, &r->ip6_spec, NULL, &r->ip6_mask };
	}
	if (m->l4_sport || m->l4_dport || m->tcp_flags) {
		if (m->tcp_flags) {
			r->tcp_mask.hdr.src_port = m->l4_sport;
			r->tcp_mask.hdr.dst_port = m->l4_dport;
			r->tcp_mask.hdr.tcp_flags = m->tcp_flags;
			r->items[n++] = (struct rte_flow_item){ RTE_FLOW_ITEM_TYPE_TCP, &r->tcp_spec, NULL, &r->tcp_mask };
		} else {
			r->udp_mask.hdr.src_port = m->l4_sport;
			r->udp_mask.hdr.dst_port = m->l4_dport;
			r->items[n++] = (struct rte_flow_item){ RTE_FLOW_ITEM_TYPE_UDP, &r->udp_spec, NULL, &r->udp_mask };
		}
	}
	if (m->mark) {
		r->mark_mask.id = m->mark;
		r->items[n++] = (struct rte_flow_item){ RTE_FLOW_ITEM_TYPE_MARK, &r->mark_spec, NULL, &r->mark_mask };
	}
	r->items[n].type = RTE_FLOW_ITEM_TYPE_END;
}

static void build_actions(struct pfd *d, struct rule_buf *r, const struct pf_fwd *fwd)
{
	int n = 0;

	r->actions[n++] = (struct rte_flow_action){ RTE_FLOW_ACTION_TYPE_COUNT, &r->count };
	switch (fwd->type) {
	case PF_FWD_PIPE:
		r->jump.group = pipe_group(d, fwd->target);
		r->actions[n++] = (struct rte_flow_action){ RTE_FLOW_ACTION_TYPE_JUMP, &r->jump };
		break;
	case PF_FWD_PORT:
		r->port.id = fwd->target < PF_MAX_PORTS ? d->ports[fwd->target].dpdk_port : 0;
		r->actions[n++] = (struct rte_flow_action){ RTE_FLOW_ACTION_TYPE_PORT_ID, &r->port };
		break;
	case PF_FWD_MISS:
		r->queue.index = 0;     /* the miss queue */
		r->actions[n++] = (struct rte_flow_action){ RTE_FLOW_ACTION_TYPE_QUEUE, &r->queue };
		break;
	default:
		r->actions[n++] = (struct rte_flow_action){ RTE_FLOW_ACTION_TYPE_DROP, NULL };
		break;
	}
	r->actions[n].type = RTE_FLOW_ACTION_TYPE_END;
}

void pfd_rte_flow_probe(struct pfd *d)
{
	uint32_t accepted = 0, total = 0;
	const char *driver = "";

	for (uint32_t port = 0; port < PF_MAX_PORTS; port++) {
		struct rte_flow_port_info pinfo;
		struct rte_flow_queue_info qinfo;
		struct rte_flow_error ferr = { 0 };
		int ret;

		if (!d->ports[port].in_use)
			continue;
		ret = rte_flow_info_get(d->ports[port].dpdk_port, &pinfo, &qinfo, &ferr);
		if (ret == 0)
			pf_info("rte_flow on %s: template API available (%u counters, %u queues): async rules", d->ports[port].name,
				pinfo.max_nb_counters, pinfo.max_nb_queues);
		else
			pf_info("rte_flow on %s: no template API (%s); sync API", d->ports[port].name,
				ferr.message ? ferr.message : rte_strerror(-ret));
	}
	for (uint32_t pipe = 0; pipe < PF_MAX_PIPES; pipe++) {
		struct pfd_pipe *pp = &d->pipes[pipe];
		bool all = true;

		if (!(pp->cfg.flags & PF_PIPE_IN_USE))
			continue;
		total++;
		for (uint32_t port = 0; port < PF_MAX_PORTS; port++) {
			struct rule_buf r;
			struct rte_flow_attr attr = { 0 };
			struct rte_flow_error ferr = { 0 };
			struct rte_eth_dev_info info;
			int ret;

			if (!d->ports[port].in_use)
				continue;
			build_pattern(&r, pp->nmasks ? &pp->masks[0] : &(struct pf_fields){ 0 });
			build_actions(d, &r, pp->cfg.fwd.type ? &pp->cfg.fwd : &pp->cfg.fwd_miss);
			attr.group = pipe_group(d, pipe);
			attr.priority = 0;
			attr.ingress = pp->cfg.domain == PF_DOMAIN_INGRESS;
			attr.egress = pp->cfg.domain == PF_DOMAIN_EGRESS;
			ret = rte_flow_validate(d->ports[port].dpdk_port, &attr, r.items, r.actions, &ferr);
			rte_eth_dev_info_get(d->ports[port].dpdk_port, &info);
			driver = info.driver_name;
			if (ret) {
				all = false;
				pf_info("pipe %u on %s (%s): software (rte_flow: %s)", pipe, d->ports[port].name,
					info.driver_name, ferr.message ? ferr.message : rte_strerror(-ret));
			} else {
				pf_info("pipe %u on %s (%s): rte_flow accepts group %u", pipe, d->ports[port].name,
					info.driver_name, attr.group);
			}
		}
		pp->offloaded = all;
		accepted += all;
	}
	snprintf(d->mode_reason, sizeof(d->mode_reason),
		 "rte_flow accepted %u of %u pipes on every port (%s); the software pipes on lcores run the pipeline",
		 accepted, total, driver);
	if (accepted < total)
		pf_warn("%s", d->mode_reason);
	else
		pf_info("%s", d->mode_reason);
}
#endif
