/* SPDX-License-Identifier: BSD-2-Clause */
/* DOCA Flow field vocabulary: each field the backend uses, named as DOCA's documentation writes it
 * (doca_flow_match / doca_flow_actions members), and where it sits in the declared structs.
 * The backend renders its pipe graph with it; the simulator renders its dump and matches with it. */
#ifndef PYFLOW_DOCA_FIELDS_H
#define PYFLOW_DOCA_FIELDS_H

#include <stddef.h>
#include "doca_flow_api.h"

struct pfdoca_field {
	const char *name;
	size_t match_off;       /* in struct doca_flow_match */
	size_t action_off;      /* in struct doca_flow_actions, (size_t)-1 if not modifiable */
	unsigned size;
	unsigned l3;            /* 4 / 6: only valid with that l3_type */
	unsigned l4;            /* 1: needs an L4 header */
	unsigned host;          /* 1: a host-order integer (metadata), rendered in decimal */
};

#define MO(m) offsetof(struct doca_flow_match, m)
#define AO(m) offsetof(struct doca_flow_actions, m)
#define NA ((size_t)-1)
static const struct pfdoca_field pfdoca_fields[] = {
	{ "meta.pkt_meta", MO(meta.pkt_meta), AO(meta.pkt_meta), 4, 0, 0, 1 },
	{ "meta.mark", MO(meta.mark), AO(meta.mark), 4, 0, 0, 1 },
	{ "parser_meta.port_id", MO(parser_meta.port_id), NA, 4, 0, 0, 1 },
	{ "parser_meta.outer_l4_type", MO(parser_meta.outer_l4_type), NA, 4, 0, 0, 1 },
	{ "outer.eth.dst_mac", MO(outer.eth.dst_mac), AO(outer.eth.dst_mac), 6, 0, 0 },
	{ "outer.eth.src_mac", MO(outer.eth.src_mac), AO(outer.eth.src_mac), 6, 0, 0 },
	{ "outer.eth.type", MO(outer.eth.type), NA, 2, 0, 0 },
	{ "outer.eth_vlan[0].tci", MO(outer.eth_vlan[0].tci), AO(outer.eth_vlan[0].tci), 2, 0, 0 },
	{ "outer.eth_vlan[1].tci", MO(outer.eth_vlan[1].tci), NA, 2, 0, 0 },
	{ "outer.ip4.src_ip", MO(outer.ip4.src_ip), AO(outer.ip4.src_ip), 4, 4, 0 },
	{ "outer.ip4.dst_ip", MO(outer.ip4.dst_ip), AO(outer.ip4.dst_ip), 4, 4, 0 },
	{ "outer.ip4.dscp_ecn", MO(outer.ip4.dscp_ecn), AO(outer.ip4.dscp_ecn), 1, 4, 0 },
	{ "outer.ip4.next_proto", MO(outer.ip4.next_proto), NA, 1, 4, 0 },
	{ "outer.ip4.ttl", MO(outer.ip4.ttl), AO(outer.ip4.ttl), 1, 4, 0 },
	{ "outer.ip6.src_ip", MO(outer.ip6.src_ip), AO(outer.ip6.src_ip), 16, 6, 0 },
	{ "outer.ip6.dst_ip", MO(outer.ip6.dst_ip), AO(outer.ip6.dst_ip), 16, 6, 0 },
	{ "outer.ip6.traffic_class", MO(outer.ip6.traffic_class), AO(outer.ip6.traffic_class), 1, 6, 0 },
	{ "outer.ip6.next_proto", MO(outer.ip6.next_proto), NA, 1, 6, 0 },
	{ "outer.ip6.hop_limit", MO(outer.ip6.hop_limit), AO(outer.ip6.hop_limit), 1, 6, 0 },
	{ "outer.transport.src_port", MO(outer.transport.src_port), AO(outer.transport.src_port), 2, 0, 1 },
	{ "outer.transport.dst_port", MO(outer.transport.dst_port), AO(outer.transport.dst_port), 2, 0, 1 },
	{ "outer.tcp.flags", MO(outer.tcp.flags), NA, 1, 0, 1 },
};
#undef MO
#undef AO
#undef NA
#define PFDOCA_NFIELDS (sizeof(pfdoca_fields) / sizeof(pfdoca_fields[0]))

#endif
