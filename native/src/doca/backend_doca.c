// SPDX-License-Identifier: BSD-2-Clause
/*
 * The doca backend: the compiled pipeline as DOCA Flow (2.9) pipes in switch
 * mode on the switch manager port.
 *
 * DOCA fixes a pipe's match template, action templates and forward targets
 * when the pipe is created, and a forward names a pipe that already exists.
 * So pf_port_set / pf_pipe_set / pf_entry_add / pf_learn_set before start only
 * record; start creates everything in one go: doca_flow_init, ports, one RSS
 * pipe per pipe whose misses go to the miss handler, the pipes in forward
 * order (targets first), a resubmit root when misses are learned, then the
 * entries (DOCA_FLOW_NO_WAIT, completed with doca_flow_entries_process). Any
 * refusal undoes what was created and reports the pipe and the DOCA call.
 *
 * Misses reach RSS queues read by handler threads (one pipe queue and one RSS
 * queue each); the learner (miss/learn.c) installs through DOCA Flow from that
 * thread's queue and resubmits the frame by sending it back into the switch
 * with meta.pkt_meta = tag | missed pipe: the resubmit root forwards it
 * straight to that pipe, so it is counted from there on, as on the other backends.
 *
 * Every call is also rendered into a JSON graph of pipes and entries, from the
 * very arguments given to DOCA; with PF_INST_DRY nothing is called and only
 * the graph is made (pyflow plan --backend doca prints it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"

#ifndef PF_NO_DOCA_BACKEND
#include <arpa/inet.h>
#include "doca.h"
#include "doca_fields.h"

int pfdoca_api_available(struct pf_error *err);
int pfdoca_api_load(struct pfdoca *d, struct pf_error *err);
void pfdoca_api_unload(struct pfdoca *d);
int pfdoca_sdk_eal_init(int argc, char **argv, struct pf_error *err);

__thread uint16_t pfdoca_queue;

static struct pfdoca *pfdoca_of(pf_instance *inst)
{
	return inst->priv;
}

/* only one DOCA Flow per process: doca_flow_init may run once at a time */
static pthread_mutex_t doca_once = PTHREAD_MUTEX_INITIALIZER;
static struct pfdoca *doca_owner;

/* A DOCA call, or nothing in a dry run; e names the call for the error message. */
#define DCALL(d, fn, ...) ((d)->dry ? DOCA_SUCCESS : (d)->api->fn(__VA_ARGS__))

/* "backend doca: <where>: <call> refused: DOCA_ERROR_X (<why, if the implementation says>)" */
static int doca_fail(struct pfdoca *d, struct pf_error *err, doca_error_t e, const char *call, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int doca_fail(struct pfdoca *d, struct pf_error *err, doca_error_t e, const char *call, const char *fmt, ...)
{
	char where[256];
	const char *why = d->api && d->api->last_error ? d->api->last_error() : "";
	const char *name = d->api ? d->api->doca_error_get_name(e) : "DOCA_ERROR";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(where, sizeof(where), fmt, ap);
	va_end(ap);
	return pf_err(err, e == DOCA_ERROR_NO_MEMORY ? -ENOMEM : e == DOCA_ERROR_NOT_SUPPORTED ? -EOPNOTSUPP
			   : e == DOCA_ERROR_FULL ? -ENOSPC : e == DOCA_ERROR_ALREADY_EXIST ? -EEXIST : -EINVAL,
		      "backend doca: %s: %s refused: %s%s%s%s", where, call, name,
		      why && *why ? " (" : "", why ? why : "", why && *why ? ")" : "");
}

/* ---- graph ----------------------------------------------------------------- */

struct sbuf {
	char *s;
	size_t len, cap;
};

static void sb_put(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_put(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (b->s && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap ? b->cap * 2 : 512) + (size_t)n;
		char *s = realloc(b->s, cap);

		if (!s)
			return;
		b->s = s;
		b->cap = cap;
	}
}

static bool field_set(const void *base, size_t off, unsigned size)
{
	const uint8_t *p = (const uint8_t *)base + off;

	for (unsigned i = 0; i < size; i++)
		if (p[i])
			return true;
	return false;
}

static bool l3_ok(const struct pfdoca_field *f, enum doca_flow_l3_type t)
{
	return !f->l3 || (f->l3 == 4 && t == DOCA_FLOW_L3_TYPE_IP4) || (f->l3 == 6 && t == DOCA_FLOW_L3_TYPE_IP6);
}

/* the fields of s that sel (its mask, or its pipe's template) or s itself has set */
static void sb_fields_sel(struct sbuf *b, const void *s, const void *sel, bool actions)
{
	enum doca_flow_l3_type t = actions ? ((const struct doca_flow_actions *)s)->outer.l3_type
					   : ((const struct doca_flow_match *)s)->outer.l3_type;
	bool first = true;

	if (!sel)
		sel = s;

	sb_put(b, "{");
	for (unsigned i = 0; i < PFDOCA_NFIELDS; i++) {
		const struct pfdoca_field *f = &pfdoca_fields[i];
		size_t off = actions ? f->action_off : f->match_off;

		if (off == (size_t)-1 || !l3_ok(f, t) || !(field_set(sel, off, f->size) || field_set(s, off, f->size)))
			continue;
		sb_put(b, "%s\"%s\": \"", first ? "" : ", ", f->name);
		if (f->host) {
			uint32_t v;

			memcpy(&v, (const uint8_t *)s + off, 4);
			sb_put(b, "%u", v);
		} else {
			for (unsigned k = 0; k < f->size; k++)
				sb_put(b, "%02x", ((const uint8_t *)s + off)[k]);
		}
		sb_put(b, "\"");
		first = false;
	}
	if (actions && ((const struct doca_flow_actions *)s)->pop_vlan) {
		sb_put(b, "%s\"pop_vlan\": \"true\"", first ? "" : ", ");
		first = false;
	}
	if (actions && ((const struct doca_flow_actions *)s)->has_push) {
		const struct doca_flow_push_vlan_action *pv = &((const struct doca_flow_actions *)s)->push.vlan;

		sb_put(b, "%s\"push.vlan\": \"%04x/%04x\"", first ? "" : ", ", ntohs(pv->eth_type),
		       ntohs(pv->vlan_hdr.tci));
	}
	sb_put(b, "}");
}

static void sb_fields(struct sbuf *b, const void *s, bool actions)
{
	sb_fields_sel(b, s, NULL, actions);
}

static const char *pipe_name_of(struct pfdoca *d, const struct doca_flow_pipe *p);

static void sb_fwd(struct pfdoca *d, struct sbuf *b, const struct doca_flow_fwd *f)
{
	if (!f) {
		sb_put(b, "\"none\"");
		return;
	}
	switch (f->type) {
	case DOCA_FLOW_FWD_PORT: sb_put(b, "\"port:%u\"", f->port_id); break;
	case DOCA_FLOW_FWD_PIPE:
		if (f->next_pipe)
			sb_put(b, "\"pipe:%s\"", pipe_name_of(d, f->next_pipe));
		else
			sb_put(b, "\"pipe:per-entry\"");
		break;
	case DOCA_FLOW_FWD_DROP: sb_put(b, "\"drop\""); break;
	case DOCA_FLOW_FWD_CHANGEABLE: sb_put(b, "\"changeable\""); break;
	case DOCA_FLOW_FWD_RSS:
		sb_put(b, "\"rss:");
		for (int i = 0; i < f->rss.nr_queues; i++)
			sb_put(b, "%s%u", i ? "," : "", f->rss.queues_array[i]);
		sb_put(b, "\"");
		break;
	default: sb_put(b, "\"none\""); break;
	}
}

static struct pfdoca_gpipe *graph_pipe(struct pfdoca *d, struct sbuf *head)
{
	struct pfdoca_gpipe *g = calloc(1, sizeof(*g));

	if (!g) {
		free(head->s);
		return NULL;
	}
	g->head = head->s;
	if (d->graph_tail)
		d->graph_tail->next = g;
	else
		d->graph = g;
	d->graph_tail = g;
	return g;
}

static struct pfdoca_gentry *graph_entry(struct pfdoca_gpipe *g, void *ctx, uint32_t priority, int64_t index,
					 const struct doca_flow_match *tmpl, const struct doca_flow_match *m,
					 const struct doca_flow_match *mask, const struct doca_flow_actions *a,
					 const struct doca_flow_fwd *fwd, struct pfdoca *d)
{
	struct sbuf b = { 0 };
	struct pfdoca_gentry *ge;

	if (!g)
		return NULL;
	ge = calloc(1, sizeof(*ge));
	if (!ge)
		return NULL;
	sb_put(&b, "{\"ctx\": %lu, \"priority\": %u, ", (unsigned long)(uintptr_t)ctx, priority);
	if (index >= 0)         /* hash entries are placed by index */
		sb_put(&b, "\"index\": %u, ", (unsigned)index);
	sb_put(&b, "\"match\": ");
	if (m)
		sb_fields_sel(&b, m, mask ? mask : tmpl, false);
	else
		sb_put(&b, "{}");
	sb_put(&b, ", \"match_mask\": ");
	if (mask)
		sb_fields(&b, mask, false);
	else
		sb_put(&b, "null");
	sb_put(&b, ", \"action_idx\": %d, \"actions\": ", a ? a->action_idx : -1);
	if (a)
		sb_fields(&b, a, true);
	else
		sb_put(&b, "null");
	sb_put(&b, ", \"fwd\": ");
	if (fwd)
		sb_fwd(d, &b, fwd);
	else
		sb_put(&b, "null");
	sb_put(&b, "}");
	ge->json = b.s;
	if (g->entries_tail)
		g->entries_tail->next = ge;
	else
		g->entries = ge;
	g->entries_tail = ge;
	return ge;
}

/* a monitor field of an entry (aging_sec, shared_mirror_id), in its graph line */
static void graph_entry_extra(struct pfdoca_gentry *ge, const char *key, uint32_t value)
{
	size_t n, add;
	char *j;

	if (!ge || !ge->json)
		return;
	n = strlen(ge->json);
	add = strlen(key) + 20;
	j = realloc(ge->json, n + add);
	if (!j)
		return;
	snprintf(j + n - 1, add + 1, ", \"%s\": %u}", key, value);
	ge->json = j;
}

static void graph_free(struct pfdoca *d)
{
	for (struct pfdoca_gpipe *g = d->graph, *gn; g; g = gn) {
		gn = g->next;
		for (struct pfdoca_gentry *e = g->entries, *en; e; e = en) {
			en = e->next;
			free(e->json);
			free(e);
		}
		free(g->head);
		free(g);
	}
	d->graph = d->graph_tail = NULL;
}

/* ---- translation: pyflow fields, actions, forwards -> DOCA ------------------ */

static bool any(const void *p, size_t n)
{
	return field_set(p, 0, (unsigned)n);
}

static bool mask_is_ipv6(const struct pf_fields *m)
{
	return any(m->ipv6_src, 16) || any(m->ipv6_dst, 16);
}

static uint32_t doca_port_id(struct pfdoca *d, uint32_t port)
{
	return port < PF_MAX_PORTS && d->ports[port].in_use ? d->ports[port].doca_id : 0xffff;
}

/*
 * The fields of pyflow mask m as a DOCA match: as_mask=1 renders the mask itself,
 * else the values of v under it. Fields DOCA Flow cannot match are refused.
 */
static int to_match(struct pfdoca *d, const struct pf_fields *m, const struct pf_fields *v, bool as_mask, bool all_ones,
		    struct doca_flow_match *out, const char **bad)
{
	bool v6 = mask_is_ipv6(m);
	const struct pf_fields *s = as_mask ? m : v;

	memset(out, 0, sizeof(*out));
	*bad = NULL;
	if (m->packet_path)
		*bad = "meta.packet_path (DOCA Flow has no PSA packet path)";
	else if (m->mpegts_frame)
		*bad = "mpegts.frame (DOCA Flow does not parse MPEG-TS)";
	else if (m->mpls_label)
		*bad = "mpls.label (DOCA Flow 2.9 has MPLS only as the DOCA_FLOW_TUN_MPLS_O_UDP tunnel: labels in "
		       "match.tun.mpls[] after outer UDP, per the guide's doca_flow_tun section; none on Ethernet)";
	if (*bad)
		return -EOPNOTSUPP;
#define PUT(dst, src)                                                                           \
	do {                                                                                    \
		if (all_ones)                                                                   \
			memset(&(dst), 0xff, sizeof(dst));                                      \
		else                                                                            \
			memcpy(&(dst), &(src), sizeof(dst));                                    \
	} while (0)
	/* vnf: a pipe sees only its own port's frames, so in_port is the plane's (entry_on_plane) */
	if (m->port && !d->vnf) {
		uint32_t id = as_mask ? 0xffffffffu : doca_port_id(d, v->port);

		if (all_ones)
			id = 0xffffffffu;
		out->parser_meta.port_id = id;
	}
	/* meta.mark as set by an earlier pipe's action (the resubmit tag is in pkt_meta) */
	if (m->mark)
		PUT(out->meta.mark, s->mark);
	if (m->eth_type)
		PUT(out->outer.eth.type, s->eth_type);
	if (any(m->eth_dst, 6))
		PUT(out->outer.eth.dst_mac, s->eth_dst);
	if (any(m->eth_src, 6))
		PUT(out->outer.eth.src_mac, s->eth_src);
	if (m->vlan_id) {
		uint16_t tci = htons((uint16_t)(s->vlan_id & 0x0fff));

		PUT(out->outer.eth_vlan[0].tci, tci);
	}
	if (m->vlan_inner) {
		uint16_t tci = htons((uint16_t)(s->vlan_inner & 0x0fff));

		PUT(out->outer.eth_vlan[1].tci, tci);
	}
	/* pyflow's ip proto is IPv4's or IPv6's: without an address, TTL or DSCP that fixes the IP version it
	 * is the parser's L4 type, which DOCA matches after either */
	if (m->ip_proto && !v6 && !m->ipv4_src && !m->ipv4_dst && !m->ip_ttl && !m->ip_dscp) {
		uint8_t proto = s->ip_proto;

		if (as_mask || all_ones) {
			out->parser_meta.outer_l4_type = (enum doca_flow_l4_meta)0xffffffffu;
		} else if (proto == 6 || proto == 17 || proto == 1) {
			out->parser_meta.outer_l4_type = proto == 6 ? DOCA_FLOW_L4_META_TCP
						      : proto == 17 ? DOCA_FLOW_L4_META_UDP : DOCA_FLOW_L4_META_ICMP;
		} else {
			*bad = "ip proto other than tcp, udp or icmp without an IPv4/IPv6 field (DOCA needs the L3 type)";
			return -EOPNOTSUPP;
		}
	} else if (v6 || m->ipv4_src || m->ipv4_dst || m->ip_proto || m->ip_ttl || m->ip_dscp) {
		out->outer.l3_type = v6 ? DOCA_FLOW_L3_TYPE_IP6 : DOCA_FLOW_L3_TYPE_IP4;
	}
	if (out->parser_meta.outer_l4_type) {
		/* the proto went to the parser's L4 type */
	} else if (v6) {
		if (any(m->ipv6_src, 16))
			PUT(out->outer.ip6.src_ip, s->ipv6_src);
		if (any(m->ipv6_dst, 16))
			PUT(out->outer.ip6.dst_ip, s->ipv6_dst);
		if (m->ip_proto)
			PUT(out->outer.ip6.next_proto, s->ip_proto);
		if (m->ip_ttl)
			PUT(out->outer.ip6.hop_limit, s->ip_ttl);
		if (m->ip_dscp) {
			uint8_t tc = (uint8_t)(s->ip_dscp << 2);

			PUT(out->outer.ip6.traffic_class, tc);
		}
	} else {
		if (m->ipv4_src)
			PUT(out->outer.ip4.src_ip, s->ipv4_src);
		if (m->ipv4_dst)
			PUT(out->outer.ip4.dst_ip, s->ipv4_dst);
		if (m->ip_proto)
			PUT(out->outer.ip4.next_proto, s->ip_proto);
		if (m->ip_ttl)
			PUT(out->outer.ip4.ttl, s->ip_ttl);
		if (m->ip_dscp) {
			uint8_t ds = (uint8_t)(s->ip_dscp << 2);

			PUT(out->outer.ip4.dscp_ecn, ds);
		}
	}
	if (m->l4_sport || m->l4_dport || m->tcp_flags)
		out->outer.l4_type_ext = m->tcp_flags ? DOCA_FLOW_L4_TYPE_EXT_TCP : DOCA_FLOW_L4_TYPE_EXT_TRANSPORT;
	if (m->l4_sport)
		PUT(out->outer.transport.src_port, s->l4_sport);
	if (m->l4_dport)
		PUT(out->outer.transport.dst_port, s->l4_dport);
	if (m->tcp_flags)
		PUT(out->outer.tcp.flags, s->tcp_flags);
#undef PUT
	return 0;
}

/* the mask of an LPM entry: the pipe's mask on the lpm field, cut to prefixlen */
static void lpm_mask(const struct pfdoca_pipe *p, uint32_t prefixlen, struct pf_fields *m)
{
	uint8_t *addr;
	unsigned bytes;

	*m = p->masks[0];
	switch (p->cfg.lpm_field) {
	case PF_LPM_IPV4_DST: addr = (uint8_t *)&m->ipv4_dst; bytes = 4; break;
	case PF_LPM_IPV4_SRC: addr = (uint8_t *)&m->ipv4_src; bytes = 4; break;
	case PF_LPM_IPV6_DST: addr = m->ipv6_dst; bytes = 16; break;
	default: addr = m->ipv6_src; bytes = 16; break;
	}
	memset(addr, 0, bytes);
	for (unsigned i = 0; i < bytes && prefixlen; i++) {
		unsigned n = prefixlen >= 8 ? 8 : prefixlen;

		addr[i] = (uint8_t)(0xff00 >> n);
		prefixlen -= n;
	}
}

/* pyflow actions DOCA Flow 2.9 has no header-modify or encap for, and why */
#define PFDOCA_REFUSED_ACTIONS (PF_ACT_POP_MPLS | PF_ACT_PUSH_MPLS | PF_ACT_CLONE | PF_ACT_DROP_PCT)

static const char *refused_action(uint32_t flags)
{
	if (flags & (PF_ACT_PUSH_MPLS | PF_ACT_POP_MPLS))
		return "push_mpls/pop_mpls (DOCA Flow 2.9 pushes and pops labels only as a DOCA_FLOW_TUN_MPLS_O_UDP "
		       "tunnel encap/decap: encap_cfg.tun adds outer IP/UDP; no label push or pop on Ethernet)";
	if (flags & PF_ACT_CLONE)
		return "clone (DOCA mirrors need shared mirror resources, not mapped yet)";
	if (flags & PF_ACT_DROP_PCT)
		return "drop_pct (DOCA Flow has no random sampling drop)";
	return NULL;
}

#define TEMPLATE_FLAGS(f) ((f) & ~(uint32_t)PF_ACT_COUNT)

/* an action template: the fields its entries set, all ones (the value comes from each entry) */
static void action_template(uint32_t flags, struct doca_flow_actions *a, struct doca_flow_actions *mask, bool *has_mask,
			    struct doca_flow_action_desc *desc, struct doca_flow_action_descs *descs, uint8_t idx)
{
	memset(a, 0, sizeof(*a));
	memset(mask, 0, sizeof(*mask));
	memset(descs, 0, sizeof(*descs));
	*has_mask = false;
	a->action_idx = idx;
	a->pop_vlan = flags & PF_ACT_POP_VLAN;
	if (flags & PF_ACT_PUSH_VLAN) {
		/* TPID and TCI per entry: 802.1ad over a tag the entry's match says is there */
		a->has_push = true;
		a->push.type = DOCA_FLOW_PUSH_ACTION_VLAN;
		a->push.vlan.eth_type = 0xffff;
		a->push.vlan.vlan_hdr.tci = 0xffff;
	}
	if (flags & PF_ACT_SET_VLAN) {
		/* the VLAN id only: priority and DEI stay as they came */
		a->outer.eth_vlan[0].tci = 0xffff;
		mask->outer.eth_vlan[0].tci = htons(0x0fff);
		*has_mask = true;
	}
	if (flags & PF_ACT_SET_MARK)
		a->meta.mark = 0xffffffffu;
	if (flags & PF_ACT_SET_ETH_SRC)
		memset(a->outer.eth.src_mac, 0xff, 6);
	if (flags & PF_ACT_SET_ETH_DST)
		memset(a->outer.eth.dst_mac, 0xff, 6);
	if (flags & (PF_ACT_SET_IPV6_SRC | PF_ACT_SET_IPV6_DST)) {
		a->outer.l3_type = DOCA_FLOW_L3_TYPE_IP6;
		if (flags & PF_ACT_SET_IPV6_SRC)
			memset(a->outer.ip6.src_ip, 0xff, 16);
		if (flags & PF_ACT_SET_IPV6_DST)
			memset(a->outer.ip6.dst_ip, 0xff, 16);
	} else if (flags & (PF_ACT_SET_IPV4_SRC | PF_ACT_SET_IPV4_DST | PF_ACT_SET_DSCP | PF_ACT_DEC_TTL)) {
		a->outer.l3_type = DOCA_FLOW_L3_TYPE_IP4;
		if (flags & PF_ACT_SET_IPV4_SRC)
			a->outer.ip4.src_ip = 0xffffffffu;
		if (flags & PF_ACT_SET_IPV4_DST)
			a->outer.ip4.dst_ip = 0xffffffffu;
		if (flags & PF_ACT_SET_DSCP) {
			/* DSCP is the upper six bits: ECN stays as it came */
			a->outer.ip4.dscp_ecn = 0xff;
			mask->outer.l3_type = DOCA_FLOW_L3_TYPE_IP4;
			mask->outer.ip4.dscp_ecn = 0xfc;
			*has_mask = true;
		}
		if (flags & PF_ACT_DEC_TTL) {
			a->outer.ip4.ttl = 0xff;
			desc->type = DOCA_FLOW_ACTION_ADD;
			desc->field_op.dst.field_string = "outer.ipv4.ttl";
			desc->field_op.dst.bit_offset = 0;
			desc->field_op.width = 8;
			descs->nb_action_desc = 1;
			descs->desc_array = desc;
		}
	}
	if (flags & (PF_ACT_SET_L4_SPORT | PF_ACT_SET_L4_DPORT)) {
		a->outer.l4_type_ext = DOCA_FLOW_L4_TYPE_EXT_TRANSPORT;
		if (flags & PF_ACT_SET_L4_SPORT)
			a->outer.transport.src_port = 0xffff;
		if (flags & PF_ACT_SET_L4_DPORT)
			a->outer.transport.dst_port = 0xffff;
	}
	if (has_mask && *has_mask) {
		mask->meta.mark = a->meta.mark;
		mask->outer.l3_type = a->outer.l3_type;
		mask->outer.l4_type_ext = a->outer.l4_type_ext;
		memcpy(mask->outer.eth.src_mac, a->outer.eth.src_mac, 6);
		memcpy(mask->outer.eth.dst_mac, a->outer.eth.dst_mac, 6);
		mask->outer.ip4.src_ip = a->outer.ip4.src_ip;
		mask->outer.ip4.dst_ip = a->outer.ip4.dst_ip;
		mask->outer.ip4.ttl = a->outer.ip4.ttl;
		mask->outer.transport = a->outer.transport;
	}
}

/* an entry's values for its template (tagged: the entry matches frames that carry a VLAN tag) */
static void action_values(uint32_t flags, const struct pf_actions *v, uint8_t idx, bool tagged,
			  struct doca_flow_actions *a)
{
	memset(a, 0, sizeof(*a));
	a->action_idx = idx;
	a->pop_vlan = flags & PF_ACT_POP_VLAN;
	if (flags & PF_ACT_PUSH_VLAN) {
		a->has_push = true;
		a->push.type = DOCA_FLOW_PUSH_ACTION_VLAN;
		a->push.vlan.eth_type = htons(tagged && !(flags & PF_ACT_POP_VLAN) ? 0x88a8 : 0x8100);
		a->push.vlan.vlan_hdr.tci = htons((uint16_t)(v->vlan_id & 0x0fff));
	}
	if (flags & PF_ACT_SET_VLAN)
		a->outer.eth_vlan[0].tci = htons((uint16_t)(v->vlan_id & 0x0fff));
	if (flags & PF_ACT_SET_MARK)
		a->meta.mark = v->mark;
	if (flags & PF_ACT_SET_ETH_SRC)
		memcpy(a->outer.eth.src_mac, v->eth_src, 6);
	if (flags & PF_ACT_SET_ETH_DST)
		memcpy(a->outer.eth.dst_mac, v->eth_dst, 6);
	if (flags & (PF_ACT_SET_IPV6_SRC | PF_ACT_SET_IPV6_DST)) {
		a->outer.l3_type = DOCA_FLOW_L3_TYPE_IP6;
		if (flags & PF_ACT_SET_IPV6_SRC)
			memcpy(a->outer.ip6.src_ip, v->ipv6_src, 16);
		if (flags & PF_ACT_SET_IPV6_DST)
			memcpy(a->outer.ip6.dst_ip, v->ipv6_dst, 16);
	} else if (flags & (PF_ACT_SET_IPV4_SRC | PF_ACT_SET_IPV4_DST | PF_ACT_SET_DSCP | PF_ACT_DEC_TTL)) {
		a->outer.l3_type = DOCA_FLOW_L3_TYPE_IP4;
		if (flags & PF_ACT_SET_IPV4_SRC)
			a->outer.ip4.src_ip = v->ipv4_src;
		if (flags & PF_ACT_SET_IPV4_DST)
			a->outer.ip4.dst_ip = v->ipv4_dst;
		if (flags & PF_ACT_SET_DSCP)
			a->outer.ip4.dscp_ecn = (uint8_t)(v->dscp << 2);
		if (flags & PF_ACT_DEC_TTL)
			a->outer.ip4.ttl = 0xff;        /* added: -1 modulo 256 */
	}
	if (flags & (PF_ACT_SET_L4_SPORT | PF_ACT_SET_L4_DPORT)) {
		a->outer.l4_type_ext = DOCA_FLOW_L4_TYPE_EXT_TRANSPORT;
		if (flags & PF_ACT_SET_L4_SPORT)
			a->outer.transport.src_port = v->l4_sport;
		if (flags & PF_ACT_SET_L4_DPORT)
			a->outer.transport.dst_port = v->l4_dport;
	}
}

static const char *pipe_label(struct pfdoca *d, uint32_t id)
{
	static __thread char buf[96];

	if (id < PF_MAX_PIPES && d->pipes[id].name[0])
		snprintf(buf, sizeof(buf), "pipe %s", d->pipes[id].name);
	else
		snprintf(buf, sizeof(buf), "pipe %u", id);
	return buf;
}

/* vnf mode: a pipe's copy on each port is named <name>@<DOCA port id> */
static const char *plane_suffix(struct pfdoca *d, uint32_t k)
{
	static __thread char buf[16];

	if (!d->vnf)
		return "";
	snprintf(buf, sizeof(buf), "@%u", d->planes[k].doca_id);
	return buf;
}

static const char *pipe_name_of(struct pfdoca *d, const struct doca_flow_pipe *p)
{
	static __thread char buf[96];

	for (uint32_t k = 0; k < d->nplanes; k++) {
		for (uint32_t i = 0; i < PF_MAX_PIPES; i++) {
			if (d->pipes[i].in_use && d->pipes[i].pl[k].dp == p) {
				snprintf(buf, sizeof(buf), "%s%s", d->pipes[i].name, plane_suffix(d, k));
				return buf;
			}
			if (d->pipes[i].in_use && d->pipes[i].pl[k].rss == p) {
				snprintf(buf, sizeof(buf), "rss_%s%s", d->pipes[i].name, plane_suffix(d, k));
				return buf;
			}
		}
		if (p == d->planes[k].resubmit_root) {
			snprintf(buf, sizeof(buf), "resubmit_root%s", plane_suffix(d, k));
			return buf;
		}
	}
	return "?";
}

/* the DOCA forward of a pyflow forward (from pipe id: a miss goes to its RSS pipe) */
static int to_fwd(struct pfdoca *d, uint32_t k, uint32_t from, const struct pf_fwd *f, struct doca_flow_fwd *out,
		  struct pf_error *err)
{
	memset(out, 0, sizeof(*out));
	switch (f->type) {
	case PF_FWD_PORT:
		if (f->target >= PF_MAX_PORTS || !d->ports[f->target].in_use)
			return pf_err(err, -ENOENT, "backend doca: %s: forward to port %u, which is not bound",
				      pipe_label(d, from), f->target);
		out->type = DOCA_FLOW_FWD_PORT;
		out->port_id = d->ports[f->target].doca_id;
		return 0;
	case PF_FWD_PIPE:
		if (f->target >= PF_MAX_PIPES || !d->pipes[f->target].in_use)
			return pf_err(err, -ENOENT, "backend doca: %s: forward to pipe %u, which is not defined",
				      pipe_label(d, from), f->target);
		out->type = DOCA_FLOW_FWD_PIPE;
		out->next_pipe = d->pipes[f->target].pl[k].dp;
		return 0;
	case PF_FWD_MISS:
		out->type = DOCA_FLOW_FWD_PIPE;
		out->next_pipe = d->pipes[from].pl[k].rss;
		return 0;
	case PF_FWD_DROP:
	case PF_FWD_DEFAULT:
		out->type = DOCA_FLOW_FWD_DROP;
		return 0;
	case PF_FWD_SESSION:
		if (f->target >= PF_MAX_SESSIONS || !d->session_in_use[f->target])
			return pf_err(err, -ENOENT, "backend doca: %s: forward to group %u, which is not defined",
				      pipe_label(d, from), f->target);
		/* the first member; the entry's shared mirror copies to the rest (entry_push_plane) */
		out->type = DOCA_FLOW_FWD_PORT;
		out->port_id = d->ports[d->sessions[f->target].members[0].port].doca_id;
		return 0;
	case PF_FWD_KERNEL:
		return pf_err(err, -EOPNOTSUPP, "backend doca: %s: forward to the kernel is not supported (in switch "
			      "mode that is a port: forward to the host representor's port instead)", pipe_label(d, from));
	}
	return pf_err(err, -EINVAL, "backend doca: %s: forward type %u", pipe_label(d, from), f->type);
}

/* ---- recording (before start) --------------------------------------------- */

static int check_actions(struct pfdoca *d, uint32_t pipe, uint32_t flags, struct pf_error *err)
{
	const char *why = refused_action(flags);

	if (why)
		return pf_err(err, -EOPNOTSUPP, "backend doca: %s: action %s", pipe_label(d, pipe), why);
	return 0;
}

/* the action template index of flags in pipe p, adding one before start; -1 when full / fixed */
static int template_of(struct pfdoca_pipe *p, uint32_t flags, bool may_add)
{
	flags = TEMPLATE_FLAGS(flags);
	if (!flags)
		return -2;      /* no action: no template needed */
	for (uint32_t i = 0; i < p->ntemplates; i++)
		if (p->templates[i] == flags)
			return (int)i;
	if (!may_add || p->ntemplates >= PFDOCA_MAX_TEMPLATES)
		return -1;
	p->templates[p->ntemplates] = flags;
	return (int)p->ntemplates++;
}

static int doca_available(struct pf_error *err)
{
	return pfdoca_api_available(err);
}

static void doca_close(pf_instance *inst);

static int doca_open(pf_instance *inst, const struct pf_instance_opts *opts, struct pf_error *err)
{
	struct pfdoca *d;
	const char *mode;
	int ret;

	d = calloc(1, sizeof(*d));
	if (!d)
		return pf_err(err, -ENOMEM, "out of memory");
	d->inst = inst;
	d->dry = opts->flags & PF_INST_DRY;
	d->max_entries = opts->max_entries ? opts->max_entries : PF_DEFAULT_MAX_ENTRIES;
	d->nthreads = opts->miss_threads ? opts->miss_threads : 1;
	pthread_mutex_init(&d->lock, NULL);
	for (uint32_t i = 0; i < PF_MAX_PORTS; i++)
		d->port_of_doca[i] = -1;
	inst->priv = d;
	if (d->nthreads > PFDOCA_MAX_THREADS) {
		/* the queues are DOCA's to refuse; the thread array is ours */
		ret = pf_err(err, -ERANGE, "backend doca: %u miss threads, at most %u (one pipe queue and one RSS queue "
			     "each)", d->nthreads, PFDOCA_MAX_THREADS);
		goto fail;
	}
	d->nqueues = (uint16_t)(1 + d->nthreads);
	/* pyflow run/plan --doca-mode sets it: switch (the default) or vnf */
	mode = getenv("PYFLOW_DOCA_MODE");
	if (mode && *mode && strcmp(mode, "switch") && strcmp(mode, "vnf")) {
		ret = pf_err(err, -EINVAL, "backend doca: --doca-mode '%s': expected switch or vnf", mode);
		goto fail;
	}
	d->vnf = mode && !strcmp(mode, "vnf");
	/* the bench's side-by-side baseline: one doca_flow_entries_process per learned entry */
	d->no_batch = getenv("PYFLOW_DOCA_NO_BATCH") && strcmp(getenv("PYFLOW_DOCA_NO_BATCH"), "0");
	d->entries = calloc(d->max_entries, sizeof(*d->entries));
	for (d->key_mask = 1; d->key_mask < d->max_entries; d->key_mask <<= 1)
		;
	d->key_heads = malloc(d->key_mask * sizeof(*d->key_heads));
	d->key_next = malloc(d->max_entries * sizeof(*d->key_next));
	if (d->key_heads)
		memset(d->key_heads, 0xff, d->key_mask * sizeof(*d->key_heads));
	d->key_mask--;
	if (!d->entries || !d->key_heads || !d->key_next) {
		ret = pf_err(err, -ENOMEM, "backend doca: cannot hold %u entries", d->max_entries);
		goto fail;
	}
	if (!d->dry) {
		ret = pfdoca_api_load(d, err);
		if (ret)
			goto fail;
#ifdef PF_HAVE_DOCA_SDK
		ret = pfdoca_sdk_eal_init(opts->eal_argc, opts->eal_argv, err);
		if (ret)
			goto fail;
#else
		if (opts->eal_argc > 1)
			pf_debug("backend doca: EAL arguments are for DPDK on hardware; the simulator does not use them");
#endif
		pthread_mutex_lock(&doca_once);
		if (doca_owner) {
			pthread_mutex_unlock(&doca_once);
			ret = pf_err(err, -EBUSY, "backend doca: DOCA Flow is already driven by instance %s in this "
				     "process", doca_owner->inst->name);
			goto fail;
		}
		doca_owner = d;
		pthread_mutex_unlock(&doca_once);
		pf_info("backend doca: DOCA Flow from %s", d->api_source);
	}
	return 0;
fail:
	doca_close(inst);
	return ret;
}

static int doca_info(pf_instance *inst, struct pf_instance_info *info, struct pf_error *err)
{
	struct pfdoca *d = pfdoca_of(inst);

	memset(info, 0, sizeof(*info));
	if (d->api_source[0] && strcmp(d->api_source, "DOCA SDK"))
		snprintf(info->mode_reason, sizeof(info->mode_reason), "backend doca runs on the %s, not on a device",
			 d->api_source);
	return 0;
}

static int doca_port_set(pf_instance *inst, uint32_t port_id, const char *binding, const struct pf_port *port,
			 struct pf_error *err)
{
	struct pfdoca *d = pfdoca_of(inst);
	struct pfdoca_port *p = &d->ports[port_id];
	char *end;
	unsigned long id;

	if (d->started)
		return pf_err(err, -EBUSY, "backend doca: port %u: ports are fixed once started", port_id);
	id = binding ? strtoul(binding, &end, 10) : 0;
	if (!binding || !*binding || end == binding || (*end && *end != ',') || id >= PF_MAX_PORTS)
		return pf_err(err, -EINVAL, "backend doca: port %u: binding '%s': DOCA ports are bound by their DPDK "
			      "port id (0, 1, ... in the order the EAL's -a / -r devargs create them), optionally followed "
			      "by ,devargs", port_id, binding ? binding : "");
	if (d->port_of_doca[id] >= 0 && (uint32_t)d->port_of_doca[id] != port_id)
		return pf_err(err, -EBUSY, "backend doca: port %u: DOCA port %lu is already bound to port %d", port_id,
			      id, d->port_of_doca[id]);
	if (port && (port->flags & PF_PORT_EGRESS_PIPE))
		return pf_err(err, -EOPNOTSUPP, "backend doca: port %u: per-port egress pipes are not mapped (use an "
			      "egress-domain pipe in the forward chain)", port_id);
	if (p->in_use)
		d->port_of_doca[p->doca_id] = -1;
	p->in_use = true;
	p->doca_id = (uint16_t)id;
	snprintf(p->devargs, sizeof(p->devargs), "%s", binding);
	if (port)
		p->cfg = *port;
	d->port_of_doca[id] = (int32_t)port_id;
	return 0;
}

static int doca_pipe_set(pf_instance *inst, uint32_t pipe_id, const struct pf_pipe *pipe, const struct pf_fields *masks,
			 uint32_t nmasks, struct pf_error *err)
{
	struct pfdoca *d = pfdoca_of(inst);
	struct pfdoca_pipe *p = &d->pipes[pipe_id];
	const char *bad;
	struct doca_flow_match tmp;
	int ret;

	if (d->started)
		return pf_err(err, -EBUSY, "backend doca: %s: DOCA pipes are fixed once created; stop, change the "
			      "config and start again", pipe_label(d, pipe_id));
	if (pipe->type == PF_PIPE_HASH && (nmasks > 1 || !pipe->nbuckets || pipe->nbuckets > PF_HASH_BUCKETS))
		return pf_err(err, -EINVAL, "backend doca: %s: a hash pipe has one mask and 1..%u buckets (got %u)",
			      pipe_label(d, pipe_id), PF_HASH_BUCKETS, pipe->nbuckets);
	if (pipe->type == PF_PIPE_LPM && nmasks != 1)
		return pf_err(err, -EINVAL, "backend doca: %s: an lpm pipe has one mask", pipe_label(d, pipe_id));
	if (pipe->type == PF_PIPE_BASIC && nmasks > 1)
		return pf_err(err, -EINVAL, "backend doca: %s: a basic pipe has one mask", pipe_label(d, pipe_id));
	for (uint32_t i = 0; i < nmasks; i++) {
		ret = to_match(d, &masks[i], &masks[i], true, false, &tmp, &bad);
		if (ret)
			return pf_err(err, ret, "backend doca: %s: match on %s", pipe_label(d, pipe_id), bad);
	}
	p->cfg = *pipe;
	p->cfg.flags |= PF_PIPE_IN_USE;
	memcpy(p->masks, masks, nmasks * sizeof(*masks));
	p->nmasks = nmasks;
	if (!p->name[0])
		snprintf(p->name, sizeof(p->name), "pipe%u", pipe_id);
	p->in_use = true;
	return 0;
}

/* The DSCP -> MPLS TC map only shapes pushed MPLS labels; push_mpls is refused at the pipe that uses it
 * (refused_action), so the map is checked and has nothing to apply to here. */
static int doca_dscp_tc_set(pf_instance *inst, const uint8_t *map, struct pf_error *err)
{
	(void)inst;
	for (int i = 0; i < 64; i++)
		if (map[i] != 0xff && map[i] > 7)
			return pf_err(err, -EINVAL, "backend doca: dscp %d: traffic class %u out of range 0..7", i, map[i]);
	return 0;
}

static int doca_pipe_name_set(pf_instance *inst, uint32_t pipe_id, const char *name, struct pf_error *err)
{
	struct pfdoca *d = pfdoca_of(inst);

	if (d->started)
		return 0;
	snprintf(d->pipes[pipe_id].name, sizeof(d->pipes[pipe_id].name), "%s", name);
	return 0;
}

static int doca_root_set(pf_instance *inst, uint32_t pipe_id, struct pf_error *err)
{
	struct pfdoca *d = pfdoca_of(inst);

	if (pipe_id >= PF_MAX_PIPES || !d->pipes[pipe_id].in_use)
		return pf_err(err, -ENOENT, "root pipe %u is not defined", pipe_id);
	if (d->started)
		return pf_err(err, -EBUSY, "backend doca: the root pipe is fixed once started");
	d->root_pipe = pipe_id;
	d->root_set = true;
	return 0;
}

/* A multicast group: the packet goes to its first member, a shared mirror copies it to the others. */
static int doca_session_set(pf_instance *inst, uint32_t session_id, const struct pf_session *s, struct pf_error *err)
{
	struct pfdoca *d = pfdoca_of(inst);

	if (session_id >= PF_MAX_SESSIONS)
		return pf_err(err, -ERANGE, "backend doca: session %u: ids below %u", session_id, PF_MAX_SESSIONS);
	if (d->started)
		return pf_err(err, -EBUSY, "backend doca: session %u: DOCA mirrors are fixed once started", session_id);
	if (!s->nmembers || s->nmembers > PF_MAX_SESSION_MEMBERS)
		return pf_err(err, -EINVAL, "backend doca: session %u: 1..%u members", session_id,
			      PF_MAX_SESSION_MEMBERS);
	for (uint32_t i = 0; i < s->nmembers; i++) {
		if (s->members[i].truncate)
			return pf_err(err, -EOPNOTSUPP, "backend doca: session %u: member %u truncates to %u bytes (a "
				      "DOCA mirror target copies the whole packet; DOCA Flow documents no truncation)",
				      session_id, i, s->members[i].truncate);
		if (s->members[i].port >= PF_MAX_PORTS || !d->ports[s->members[i].port].in_use)
			return pf_err(err, -ENOENT, "backend doca: session %u: member port %u is not bound", session_id,
				      s->members[i].port);
	}
	d->sessions[session_id] = *s;
	d->session_in_use[session_id] = true;
	return 0;
}

/* ---- creating (start) ------------------------------------------------------ */

static const char *const type_names[] = { "basic", "control", "lpm", "ct", "acl", "ordered_list", "hash" };

/*
 * Hash pipes. pyflow's flow hash (pf_flow_hash) covers src, dst, ports and protocol of either IP family
 * whatever fields the pipe lists, so the DOCA hash mask declares that whole tuple; a pyflow member owns
 * the buckets [mask_idx, mask_idx + prefixlen) and becomes one DOCA hash entry per bucket index, so the
 * pipe's nr_entries is the member table's nbuckets and index = hash % nbuckets, as on ebpf and dpdk.
 */
static void hash_mask(struct doca_flow_match *m)
{
	memset(m, 0, sizeof(*m));
	m->outer.l3_type = DOCA_FLOW_L3_TYPE_IP4;
	m->outer.ip4.src_ip = UINT32_MAX;
	m->outer.ip4.dst_ip = UINT32_MAX;
	m->outer.ip4.next_proto = UINT8_MAX;
	m->outer.transport.src_port = UINT16_MAX;
	m->outer.transport.dst_port = UINT16_MAX;
}

/* the bucket indices of a hash member: [*lo, return value) */
static uint32_t hash_span(const struct pfdoca_pipe *p, const struct pfdoca_entry *en, uint32_t *lo)
{
	uint32_t hi = en->mask_idx + (en->prefixlen ? en->prefixlen : 1);

	*lo = en->mask_idx;
	return hi < p->cfg.nbuckets ? hi : p->cfg.nbuckets;
}

/* vnf: an entry matching another port's in_port can never match on plane k, so it is not added there */
static bool entry_on_plane(struct pfdoca *d, const struct pfdoca_entry *en, uint32_t k)
{
	const struct pfdoca_pipe *p = &d->pipes[en->pipe];
	const struct pf_fields *m = &p->masks[en->mask_idx < p->nmasks ? en->mask_idx : 0];

	if (!d->vnf || p->cfg.type == PF_PIPE_HASH || !p->nmasks || !m->port)
		return true;
	return d->planes[k].pf_port >= 0 && en->match.port == (uint32_t)d->planes[k].pf_port;
}

static bool entry_pushed(const struct pfdoca_entry *en)
{
	for (uint32_t k = 0; k < PFDOCA_MAX_PLANES; k++)
		if (en->de[k])
			return true;
	return false;
}

/* every DOCA entry of a pyflow entry completed (a hash member has one per bucket, on every plane) */
static bool entry_done(struct pfdoca *d, struct pfdoca_entry *en)
{
	struct pfdoca_pipe *p = &d->pipes[en->pipe];
	uint32_t lo, hi;

	for (uint32_t k = 0; k < d->nplanes; k++) {
		if (!entry_on_plane(d, en, k))
			continue;
		if (p->cfg.type != PF_PIPE_HASH) {
			if (!en->de[k] ||
			    d->api->doca_flow_pipe_entry_get_status(en->de[k]) != DOCA_FLOW_ENTRY_STATUS_SUCCESS)
				return false;
			continue;
		}
		hi = hash_span(p, en, &lo);
		for (uint32_t b = lo; b < hi; b++)
			if (!p->pl[k].hde[b] ||
			    d->api->doca_flow_pipe_entry_get_status(p->pl[k].hde[b]) != DOCA_FLOW_ENTRY_STATUS_SUCCESS)
				return false;
	}
	return true;
}

/* Create one DOCA pipe from its parts, rendering it into the graph. */
static int create_pipe(struct pfdoca *d, uint32_t k, const char *base, enum doca_flow_pipe_type type, bool is_root,
		       enum doca_flow_pipe_domain domain, uint32_t nr_entries, const struct doca_flow_match *match,
		       const struct doca_flow_match *mask, struct doca_flow_actions *const *actions,
		       struct doca_flow_actions *const *amasks, struct doca_flow_action_descs *const *descs,
		       uint32_t nactions, const struct doca_flow_fwd *fwd, const struct doca_flow_fwd *fwd_miss,
		       const char *label, struct doca_flow_pipe **out, struct pfdoca_gpipe **gout, struct pf_error *err)
{
	struct doca_flow_monitor mon = { .counter_type = DOCA_FLOW_RESOURCE_TYPE_NON_SHARED };
	struct doca_flow_pipe_cfg *cfg = NULL;
	struct sbuf b = { 0 };
	doca_error_t e;
	const char *call = "doca_flow_pipe_cfg_create";
	char name[96];

	snprintf(name, sizeof(name), "%s%s", base, plane_suffix(d, k));
	e = DCALL(d, doca_flow_pipe_cfg_create, &cfg, d->planes[k].port);
#define STEP(fn, ...)                                                  \
	do {                                                           \
		if (!e) {                                              \
			call = #fn;                                    \
			e = DCALL(d, fn, __VA_ARGS__);                 \
		}                                                      \
	} while (0)
	STEP(doca_flow_pipe_cfg_set_name, cfg, name);
	STEP(doca_flow_pipe_cfg_set_type, cfg, type);
	STEP(doca_flow_pipe_cfg_set_is_root, cfg, is_root);
	STEP(doca_flow_pipe_cfg_set_domain, cfg, domain);
	STEP(doca_flow_pipe_cfg_set_nr_entries, cfg, nr_entries);
	if (match || mask)
		STEP(doca_flow_pipe_cfg_set_match, cfg, match, mask);
	if (nactions)
		STEP(doca_flow_pipe_cfg_set_actions, cfg, actions, amasks, descs, nactions);
	STEP(doca_flow_pipe_cfg_set_monitor, cfg, &mon);
	STEP(doca_flow_pipe_cfg_set_miss_counter, cfg, true);
	STEP(doca_flow_pipe_create, cfg, fwd, fwd_miss, out);
#undef STEP
	if (cfg)
		DCALL(d, doca_flow_pipe_cfg_destroy, cfg);
	if (e) {
		if (d->vnf)
			return doca_fail(d, err, e, call, "%s on DOCA port %u", label, d->planes[k].doca_id);
		return doca_fail(d, err, e, call, "%s", label);
	}
	if (d->dry)
		*out = (struct doca_flow_pipe *)(uintptr_t)(d->ncreated + 1);   /* a handle for the graph's names */
	d->created[d->ncreated++] = *out;
	sb_put(&b, "{\"name\": \"%s\", \"type\": \"%s\", \"domain\": \"%s\", \"is_root\": %s, \"nr_entries\": %u, "
	       "\"match\": ", name, type_names[type], domain == DOCA_FLOW_PIPE_DOMAIN_EGRESS ? "egress" : "default",
	       is_root ? "true" : "false", nr_entries);
	if (match)
		sb_fields(&b, match, false);
	else
		sb_put(&b, "null");
	sb_put(&b, ", \"match_mask\": ");
	if (mask)
		sb_fields(&b, mask, false);
	else
		sb_put(&b, "null");
	sb_put(&b, ", \"actions\": [");
	for (uint32_t i = 0; i < nactions; i++) {
		sb_put(&b, "%s{\"fields\": ", i ? ", " : "");
		sb_fields(&b, actions[i], true);
		sb_put(&b, ", \"masks\": ");
		if (amasks && amasks[i])
			sb_fields(&b, amasks[i], true);
		else
			sb_put(&b, "null");
		sb_put(&b, ", \"descs\": [");
		for (unsigned k = 0; descs && descs[i] && k < descs[i]->nb_action_desc; k++)
			sb_put(&b, "%s\"add %s\"", k ? ", " : "", descs[i]->desc_array[k].field_op.dst.field_string);
		sb_put(&b, "]}");
	}
	sb_put(&b, "], \"counter\": true, \"miss_counter\": true, \"fwd\": ");
	sb_fwd(d, &b, fwd);
	sb_put(&b, ", \"fwd_miss\": ");
	sb_fwd(d, &b, fwd_miss);
	*gout = graph_pipe(d, &b);
	return 0;
}

static bool pipe_misses_to_handler(struct pfdoca *d, uint32_t id)
{
	struct pfdoca_pipe *p = &d->pipes[id];

	if (p->cfg.fwd_miss.type == PF_FWD_MISS || p->cfg.fwd.type == PF_FWD_MISS)
		return true;
	for (uint32_t i = 0; i < d->max_entries; i++)
		if (d->entries[i].in_use && d->entries[i].pipe == id && d->entries[i].e.fwd.type == PF_FWD_MISS)
			return true;
	return false;
}

/* the RSS pipe of pipe id: marks a missed frame with its pipe (and whether it was resubmitted) for the handler */
static int create_rss_pipe(struct pfdoca *d, uint32_t k, uint32_t id, struct pf_error *err)
{
	struct pfdoca_pipe *p = &d->pipes[id];
	struct pfdoca_plane_pipe *pl = &p->pl[k];
	struct doca_flow_actions tmpl = { 0 }, *tmpls[1] = { &tmpl };
	struct doca_flow_actions act = { 0 };
	struct doca_flow_match m = { 0 }, mm = { 0 };
	uint16_t queues[PFDOCA_MAX_THREADS];
	struct doca_flow_fwd fwd = { .type = DOCA_FLOW_FWD_RSS };
	char name[80], label[112];
	doca_error_t e;
	int ret;

	for (uint32_t q = 0; q < d->nthreads; q++)
		queues[q] = (uint16_t)q;
	fwd.rss_type = DOCA_FLOW_RESOURCE_TYPE_NON_SHARED;
	fwd.rss.queues_array = queues;
	fwd.rss.nr_queues = (int)d->nthreads;
	fwd.rss.outer_flags = DOCA_FLOW_RSS_IPV4 | DOCA_FLOW_RSS_IPV6;
	tmpl.meta.mark = 0xffffffffu;
	snprintf(name, sizeof(name), "rss_%s", p->name);
	snprintf(label, sizeof(label), "%s (its miss RSS pipe %s)", pipe_label(d, id), name);
	ret = create_pipe(d, k, name, DOCA_FLOW_PIPE_CONTROL, false, DOCA_FLOW_PIPE_DOMAIN_DEFAULT, 2, NULL, NULL, tmpls,
			  NULL, NULL, 1, &fwd, NULL, label, &pl->rss, &pl->rss_g, err);
	if (ret)
		return ret;
	/* a frame this pipe's resubmit brought back: marked so, the learner never resubmits it twice */
	m.meta.pkt_meta = PFDOCA_RESUBMIT_TAG | id;
	mm.meta.pkt_meta = 0xffffffffu;
	act.meta.mark = PFDOCA_MARK_RESUBMITTED | id;
	e = DCALL(d, doca_flow_pipe_control_add_entry, 0, 0, pl->rss, &m, &mm, NULL, &act, NULL, NULL, NULL, NULL, NULL,
		  &pl->rss_entries[0]);
	if (e)
		return doca_fail(d, err, e, "doca_flow_pipe_control_add_entry", "%s", label);
	graph_entry(pl->rss_g, NULL, 0, -1, NULL, &m, &mm, &act, NULL, d);
	memset(&m, 0, sizeof(m));
	act.meta.mark = PFDOCA_MARK_MISS | id;
	e = DCALL(d, doca_flow_pipe_control_add_entry, 0, 1, pl->rss, &m, NULL, NULL, &act, NULL, NULL, NULL, NULL, NULL,
		  &pl->rss_entries[1]);
	if (e)
		return doca_fail(d, err, e, "doca_flow_pipe_control_add_entry", "%s", label);
	graph_entry(pl->rss_g, NULL, 1, -1, NULL, &m, NULL, &act, NULL, d);
	return 0;
}

/* Action templates of a pipe: every action set its entries and the policies installing into it use. */
static int collect_templates(struct pfdoca *d, uint32_t id, struct pf_error *err)
{
	struct pfdoca_pipe *p = &d->pipes[id];
	bool fwd_override = false;

	p->ntemplates = 0;
	for (uint32_t i = 0; i < d->max_entries; i++) {
		const struct pfdoca_entry *en = &d->entries[i];

		if (!en->in_use || en->pipe != id)
			continue;
		if (template_of(p, en->e.act.flags, true) == -1)
			return pf_err(err, -ENOSPC, "backend doca: %s: more than %u distinct action sets",
				      pipe_label(d, id), PFDOCA_MAX_TEMPLATES);
		fwd_override |= en->e.fwd.type != PF_FWD_DEFAULT;
	}
	for (uint32_t i = 0; i < d->npolicies; i++) {
		const struct pf_learn *lp = &d->policies[i];
		uint32_t flags = lp->base_actions.flags;

		if (lp->to_pipe != id)
			continue;
		for (uint32_t k = 0; k < lp->nsets; k++)
			flags |= lp->sets[k].action;
		if (template_of(p, flags, true) == -1)
			return pf_err(err, -ENOSPC, "backend doca: %s: more than %u distinct action sets",
				      pipe_label(d, id), PFDOCA_MAX_TEMPLATES);
		fwd_override |= lp->fwd.type != PF_FWD_DEFAULT;
	}
	/* a pipe whose entries choose their forward leaves it changeable */
	p->fwd_changeable = fwd_override || p->cfg.fwd.type == PF_FWD_DEFAULT;
	return 0;
}

static int create_user_pipe(struct pfdoca *d, uint32_t k, uint32_t id, struct pf_error *err);

/* forward targets first: DOCA needs the pipe a forward names to exist */
static int create_deps(struct pfdoca *d, uint32_t k, uint32_t id, const struct pf_fwd *f, struct pf_error *err)
{
	if (f->type != PF_FWD_PIPE || f->target >= PF_MAX_PIPES || !d->pipes[f->target].in_use)
		return 0;
	if (d->pipes[f->target].visiting)
		return pf_err(err, -ELOOP, "backend doca: %s: forward cycle through %s (DOCA pipes forward to pipes "
			      "that exist already)", pipe_label(d, id), pipe_label(d, f->target));
	return create_user_pipe(d, k, f->target, err);
}

static int create_user_pipe(struct pfdoca *d, uint32_t k, uint32_t id, struct pf_error *err)
{
	struct pfdoca_pipe *p = &d->pipes[id];
	struct pfdoca_plane_pipe *pl = &p->pl[k];
	struct doca_flow_match match, mask;
	struct doca_flow_actions tmpl[PFDOCA_MAX_TEMPLATES], amask[PFDOCA_MAX_TEMPLATES];
	struct doca_flow_actions *tp[PFDOCA_MAX_TEMPLATES], *mp[PFDOCA_MAX_TEMPLATES];
	struct doca_flow_action_desc desc[PFDOCA_MAX_TEMPLATES];
	struct doca_flow_action_descs descs[PFDOCA_MAX_TEMPLATES], *dp[PFDOCA_MAX_TEMPLATES];
	struct doca_flow_fwd fwd, fwd_miss;
	bool any_amask = false, any_desc = false, has_mask;
	const char *bad;
	enum doca_flow_pipe_type type;
	int ret;

	if (pl->created)
		return 0;
	p->visiting = true;
	ret = create_deps(d, k, id, &p->cfg.fwd, err);
	if (!ret)
		ret = create_deps(d, k, id, &p->cfg.fwd_miss, err);
	for (uint32_t i = 0; !ret && i < d->max_entries; i++)
		if (d->entries[i].in_use && d->entries[i].pipe == id)
			ret = create_deps(d, k, id, &d->entries[i].e.fwd, err);
	for (uint32_t i = 0; !ret && i < d->npolicies; i++)
		if (d->policies[i].to_pipe == id)
			ret = create_deps(d, k, id, &d->policies[i].fwd, err);
	p->visiting = false;
	if (ret)
		return ret;
	ret = collect_templates(d, id, err);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < p->ntemplates; i++) {
		ret = check_actions(d, id, p->templates[i], err);
		if (ret)
			return ret;
		action_template(p->templates[i], &tmpl[i], &amask[i], &has_mask, &desc[i], &descs[i], (uint8_t)i);
		tp[i] = &tmpl[i];
		mp[i] = has_mask ? &amask[i] : NULL;
		dp[i] = descs[i].nb_action_desc ? &descs[i] : NULL;
		any_amask |= has_mask;
		any_desc |= dp[i] != NULL;
	}
	if (p->fwd_changeable) {
		memset(&fwd, 0, sizeof(fwd));
		fwd.type = DOCA_FLOW_FWD_CHANGEABLE;
	} else {
		ret = to_fwd(d, k, id, &p->cfg.fwd, &fwd, err);
		if (ret)
			return ret;
	}
	if (p->cfg.fwd_miss.type == PF_FWD_PORT)
		return pf_err(err, -EOPNOTSUPP, "backend doca: %s: fwd_miss to a port (a DOCA fwd_miss goes to a pipe "
			      "or is dropped)", pipe_label(d, id));
	if (p->cfg.fwd.type == PF_FWD_SESSION || p->cfg.fwd_miss.type == PF_FWD_SESSION)
		return pf_err(err, -EOPNOTSUPP, "backend doca: %s: a pipe's own fwd or fwd_miss to a group (DOCA "
			      "mirrors are named by entries' monitors: forward to the group from entries)",
			      pipe_label(d, id));
	ret = to_fwd(d, k, id, &p->cfg.fwd_miss, &fwd_miss, err);
	if (ret)
		return ret;
	type = p->cfg.type == PF_PIPE_CONTROL ? DOCA_FLOW_PIPE_CONTROL
		: p->cfg.type == PF_PIPE_LPM ? DOCA_FLOW_PIPE_LPM
		: p->cfg.type == PF_PIPE_HASH ? DOCA_FLOW_PIPE_HASH : DOCA_FLOW_PIPE_BASIC;
	if (type == DOCA_FLOW_PIPE_HASH) {
		hash_mask(&mask);
	} else if (type != DOCA_FLOW_PIPE_CONTROL) {
		/* the template: every matched field changeable, under the pipe's mask */
		struct pf_fields m = p->nmasks ? p->masks[0] : (struct pf_fields){ 0 };

		to_match(d, &m, &m, false, true, &match, &bad);
		to_match(d, &m, &m, true, false, &mask, &bad);
		p->tmpl = match;
	}
	ret = create_pipe(d, k, p->name, type, d->root_set && d->root_pipe == id && !d->npolicies,
			  p->cfg.domain == PF_DOMAIN_EGRESS ? DOCA_FLOW_PIPE_DOMAIN_EGRESS : DOCA_FLOW_PIPE_DOMAIN_DEFAULT,
			  type == DOCA_FLOW_PIPE_HASH ? p->cfg.nbuckets : d->max_entries,
			  type == DOCA_FLOW_PIPE_CONTROL || type == DOCA_FLOW_PIPE_HASH ? NULL : &match,
			  type == DOCA_FLOW_PIPE_CONTROL ? NULL : &mask, tp, any_amask ? mp : NULL, any_desc ? dp : NULL,
			  p->ntemplates, &fwd, &fwd_miss, pipe_label(d, id), &pl->dp, &pl->g, err);
	if (ret)
		return ret;
	pl->created = true;
	return 0;
}

/* root when misses are learned: resubmitted frames (pkt_meta tag | pipe) go straight to that pipe */
static int create_resubmit_root(struct pfdoca *d, uint32_t k, struct pf_error *err)
{
	struct doca_flow_fwd fwd = { .type = DOCA_FLOW_FWD_CHANGEABLE }, miss = { .type = DOCA_FLOW_FWD_DROP };
	struct doca_flow_match m, mm;
	struct doca_flow_fwd to;
	doca_error_t e;
	int ret;

	struct doca_flow_pipe **root = &d->planes[k].resubmit_root;
	struct pfdoca_gpipe **root_g = &d->planes[k].resubmit_root_g;

	ret = create_pipe(d, k, "resubmit_root", DOCA_FLOW_PIPE_CONTROL, true, DOCA_FLOW_PIPE_DOMAIN_DEFAULT,
			  d->npolicies + 1, NULL, NULL, NULL, NULL, NULL, 0, &fwd, &miss, "resubmit root pipe",
			  root, root_g, err);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < d->npolicies; i++) {
		uint32_t from = d->policies[i].from_pipe;

		memset(&m, 0, sizeof(m));
		memset(&mm, 0, sizeof(mm));
		m.meta.pkt_meta = PFDOCA_RESUBMIT_TAG | from;
		mm.meta.pkt_meta = 0xffffffffu;
		memset(&to, 0, sizeof(to));
		to.type = DOCA_FLOW_FWD_PIPE;
		to.next_pipe = d->pipes[from].pl[k].dp;
		e = DCALL(d, doca_flow_pipe_control_add_entry, 0, 0, *root, &m, &mm, NULL, NULL, NULL, NULL,
			  NULL, &to, NULL, &d->internal_entries[d->ninternal]);
		if (e)
			return doca_fail(d, err, e, "doca_flow_pipe_control_add_entry", "resubmit root pipe, entry for %s",
					 pipe_label(d, from));
		d->ninternal++;
		graph_entry(*root_g, NULL, 0, -1, NULL, &m, &mm, NULL, &to, d);
	}
	memset(&m, 0, sizeof(m));
	memset(&to, 0, sizeof(to));
	to.type = DOCA_FLOW_FWD_PIPE;
	to.next_pipe = d->pipes[d->root_pipe].pl[k].dp;
	e = DCALL(d, doca_flow_pipe_control_add_entry, 0, 1, *root, &m, NULL, NULL, NULL, NULL, NULL, NULL,
		  &to, NULL, &d->internal_entries[d->ninternal]);
	if (e)
		return doca_fail(d, err, e, "doca_flow_pipe_control_add_entry", "resubmit root pipe, entry to %s",
				 pipe_label(d, d->root_pipe));
	d->ninternal++;
	graph_entry(*root_g, NULL, 1, -1, NULL, &m, NULL, NULL, &to, d);
	return 0;
}

/* Complete every pending operation of this thread's queue (entries are not active before). */
static int process_queue(struct pfdoca *d, uint16_t q, struct pf_error *err)
{
	doca_error_t e;

	if (d->dry)
		return 0;
	/* switch mode: the switch manager's queue holds every entry; vnf: each port's its own */
	for (uint32_t k = 0; k < d->nplanes; k++) {
		e = d->api->doca_flow_entries_process(d->planes[k].port, q, 10000, 0);
		if (e)
			return doca_fail(d, err, e, "doca_flow_entries_process", "queue %u of DOCA port %u", q,
					 d->planes[k].doca_id);
	}
	return 0;
}

/* Remove every DOCA entry of pyflow entry id, on every plane (DOCA_FLOW_NO_WAIT; the caller processes). */
static int entry_unpush(struct pfdoca *d, uint32_t id, struct pf_error *err)
{
	struct pfdoca_entry *en = &d->entries[id];
	struct pfdoca_pipe *p = &d->pipes[en->pipe];
	doca_error_t e;

	for (uint32_t k = 0; k < PFDOCA_MAX_PLANES; k++) {
		struct pfdoca_plane_pipe *pl = &p->pl[k];

		if (!en->de[k])
			continue;
		if (p->cfg.type == PF_PIPE_HASH) {
			uint32_t lo, hi = hash_span(p, en, &lo);

			for (uint32_t b = lo; b < hi; b++) {
				if (!pl->hde[b])
					continue;
				e = DCALL(d, doca_flow_pipe_remove_entry, pfdoca_queue, DOCA_FLOW_NO_WAIT, pl->hde[b]);
				if (e)
					return doca_fail(d, err, e, "doca_flow_pipe_remove_entry", "%s",
							 pipe_label(d, en->pipe));
				if (pl->hg[b])
					pl->hg[b]->removed = true;
				pl->hde[b] = NULL;
				pl->hg[b] = NULL;
			}
		} else {
			e = DCALL(d, doca_flow_pipe_remove_entry, pfdoca_queue, DOCA_FLOW_NO_WAIT, en->de[k]);
			if (e)
				return doca_fail(d, err, e, "doca_flow_pipe_remove_entry", "%s", pipe_label(d, en->pipe));
		}
		if (en->g[k])
			en->g[k]->removed = true;
		en->de[k] = NULL;
		en->g[k] = NULL;
	}
	return 0;
}

/* Add entry id to its DOCA pipe on plane k from this thread's queue (DOCA_FLOW_NO_WAIT), without processing. */
static int entry_push_plane(struct pfdoca *d, uint32_t k, uint32_t id, enum doca_flow_flags_type fl,
			    struct pf_error *err)
{
	struct pfdoca_entry *en = &d->entries[id];
	struct pfdoca_pipe *p = &d->pipes[en->pipe];
	struct pfdoca_plane_pipe *pl = &p->pl[k];
	struct doca_flow_monitor mon = { .counter_type = DOCA_FLOW_RESOURCE_TYPE_NON_SHARED,
					 .aging_sec = en->aging_sec };
	const struct doca_flow_monitor *monp;
	struct doca_flow_match m, mask;
	struct doca_flow_actions a;
	struct doca_flow_fwd fwd;
	struct pf_fields pm;
	const struct pf_fwd *pf;
	const char *bad, *call;
	bool has_mask = false;
	doca_error_t e;
	int idx, ret;
	void *ctx = (void *)(uintptr_t)(id + 1);

	idx = template_of(p, en->e.act.flags, false);
	if (idx == -1)
		return pf_err(err, -EOPNOTSUPP, "backend doca: %s: this entry's actions are not among the pipe's action "
			      "templates, which DOCA fixes when the pipe is created", pipe_label(d, en->pipe));
	if (idx >= 0)
		action_values(TEMPLATE_FLAGS(en->e.act.flags), &en->e.act, (uint8_t)idx, en->match.vlan_id != 0, &a);
	pf = en->e.fwd.type != PF_FWD_DEFAULT ? &en->e.fwd : &p->cfg.fwd;
	if (p->fwd_changeable) {
		ret = to_fwd(d, k, en->pipe, pf, &fwd, err);
		if (ret)
			return ret;
	}
	if (pf->type == PF_FWD_SESSION && d->sessions[pf->target].nmembers > 1)
		mon.shared_mirror_id = pf->target + 1;
	monp = mon.aging_sec || mon.shared_mirror_id ? &mon : NULL;
	if (p->cfg.type == PF_PIPE_HASH) {
		uint32_t lo, hi = hash_span(p, en, &lo);

		if (lo >= hi)
			return pf_err(err, -ERANGE, "backend doca: %s: buckets [%u, %u) outside the pipe's %u",
				      pipe_label(d, en->pipe), en->mask_idx, en->mask_idx + en->prefixlen, p->cfg.nbuckets);
		for (uint32_t b = lo; b < hi; b++)
			if (pl->hde[b])
				return pf_err(err, -EEXIST, "backend doca: %s: bucket %u already has a member",
					      pipe_label(d, en->pipe), b);
		for (uint32_t b = lo; b < hi; b++) {
			e = DCALL(d, doca_flow_pipe_hash_add_entry, pfdoca_queue, pl->dp, b, idx >= 0 ? &a : NULL, monp,
				  p->fwd_changeable ? &fwd : NULL, DOCA_FLOW_NO_WAIT, ctx, &pl->hde[b]);
			if (e) {
				ret = doca_fail(d, err, e, "doca_flow_pipe_hash_add_entry", "%s", pipe_label(d, en->pipe));
				/* nothing half-created: the member's earlier buckets go too */
				while (b-- > lo) {
					if (!d->dry)
						d->api->doca_flow_pipe_remove_entry(pfdoca_queue, DOCA_FLOW_NO_WAIT,
										    pl->hde[b]);
					if (pl->hg[b])
						pl->hg[b]->removed = true;
					pl->hde[b] = NULL;
					pl->hg[b] = NULL;
				}
				return ret;
			}
			if (d->dry)
				pl->hde[b] = (struct doca_flow_pipe_entry *)(uintptr_t)(id + 1);
			pl->hg[b] = graph_entry(pl->g, ctx, 0, b, NULL, NULL, NULL, idx >= 0 ? &a : NULL,
						p->fwd_changeable ? &fwd : NULL, d);
		}
		en->de[k] = pl->hde[lo];
		en->g[k] = pl->hg[lo];
		return 0;
	}
	if (p->cfg.type == PF_PIPE_LPM) {
		lpm_mask(p, en->prefixlen, &pm);
		has_mask = true;
	} else {
		pm = p->masks[en->mask_idx < p->nmasks ? en->mask_idx : 0];
		has_mask = p->cfg.type == PF_PIPE_CONTROL;
	}
	ret = to_match(d, &pm, &en->match, false, false, &m, &bad);
	if (!ret)
		ret = to_match(d, &pm, &en->match, true, false, &mask, &bad);
	if (ret)
		return pf_err(err, ret, "backend doca: %s: match on %s", pipe_label(d, en->pipe), bad);
	switch (p->cfg.type) {
	case PF_PIPE_CONTROL:
		call = "doca_flow_pipe_control_add_entry";
		/* priority 0 belongs to nobody: pyflow's lowest is DOCA's 1 */
		e = DCALL(d, doca_flow_pipe_control_add_entry, pfdoca_queue, en->e.priority + 1, pl->dp, &m, &mask, NULL,
			  idx >= 0 ? &a : NULL, NULL, NULL, monp, p->fwd_changeable ? &fwd : NULL, ctx, &en->de[k]);
		break;
	case PF_PIPE_LPM:
		call = "doca_flow_pipe_lpm_add_entry";
		e = DCALL(d, doca_flow_pipe_lpm_add_entry, pfdoca_queue, pl->dp, &m, &mask, idx >= 0 ? &a : NULL, monp,
			  p->fwd_changeable ? &fwd : NULL, fl, ctx, &en->de[k]);
		break;
	default:
		call = "doca_flow_pipe_add_entry";
		e = DCALL(d, doca_flow_pipe_add_entry, pfdoca_queue, pl->dp, &m, idx >= 0 ? &a : NULL, monp,
			  p->fwd_changeable ? &fwd : NULL, fl, ctx, &en->de[k]);
		break;
	}
	if (e)
		return doca_fail(d, err, e, call, "%s", pipe_label(d, en->pipe));
	if (d->dry)
		en->de[k] = (struct doca_flow_pipe_entry *)(uintptr_t)(id + 1);
	en->g[k] = graph_entry(pl->g, ctx, p->cfg.type == PF_PIPE_CONTROL ? en->e.priority + 1 : 0, -1,
			       p->cfg.type == PF_PIPE_CONTROL ? NULL : &p->tmpl, &m,
			       has_mask ? &mask : NULL, idx >= 0 ? &a : NULL, p->fwd_changeable ? &fwd : NULL, d);
	if (en->aging_sec)
		graph_entry_extra(en->g[k], "aging_sec", en->aging_sec);
	if (mon.shared_mirror_id)
		graph_entry_extra(en->g[k], "shared_mirror_id", mon.shared_mirror_id);
	return 0;
}

/* Add entry id on every plane it can match on; nothing half-added if one refuses. On the planes in hold it
 * goes with DOCA_FLOW_WAIT_FOR_BATCH: a later entry of the batch on that plane pushes it (basic, lpm). */
static int entry_push(struct pfdoca *d, uint32_t id, uint32_t hold, struct pf_error *err)
{
	struct pfdoca_entry *en = &d->entries[id];
	int ret = check_actions(d, en->pipe, en->e.act.flags, err);

	for (uint32_t k = 0; !ret && k < d->nplanes; k++)
		if (entry_on_plane(d, en, k))
			ret = entry_push_plane(d, k, id, (hold >> k) & 1 ? DOCA_FLOW_WAIT_FOR_BATCH : DOCA_FLOW_NO_WAIT,
					       err);
	if (ret) {
		entry_unpush(d, id, NULL);
		return ret;
	}
	en->last_seen_ns = pf_now_ns();
	return 0;
}

/* what doca_flow_aging_handle reported on this thread (its callback runs inside the call) */
#define PFDOCA_AGED_MAX 256
struct pfdoca_aged {
	struct doca_flow_pipe_entry *entry;
	uint32_t id;
};
static __thread struct pfdoca_aged *aged_buf;
static __thread uint32_t aged_n;

static void entry_process_cb(struct doca_flow_pipe_entry *entry, uint16_t pipe_queue, enum doca_flow_entry_status status,
			     enum doca_flow_entry_op op, void *user_ctx)
{
	struct pfdoca *d = doca_owner;

	if (op == DOCA_FLOW_ENTRY_OP_AGED) {
		if (aged_buf && aged_n < PFDOCA_AGED_MAX)
			aged_buf[aged_n++] = (struct pfdoca_aged){ entry, (uint32_t)((uintptr_t)user_ctx - 1) };
		return;
	}

	if (status == DOCA_FLOW_ENTRY_STATUS_ERROR && d) {
		__atomic_fetch_add(&d->async_errors, 1, __ATOMIC_RELAXED);
		pf_error_log("backend doca: entry %lu: DOCA reported an error completing op %d on queue %u",
			     (unsigned long)(uintptr_t)user_ctx - 1, op, pipe_queue);
	}
}

static void *handler_main(void *arg);

static uint32_t nsessions(struct pfdoca *d)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < PF_MAX_SESSIONS; i++)
		n += d->session_in_use[i];
	return n;
}

/* a shared mirror per group of two members or more, copying to all but the first, bound to every plane's port */
static int create_mirrors(struct pfdoca *d, struct pf_error *err)
{
	uint32_t ids[PF_MAX_SESSIONS], n = 0;
	doca_error_t e;

	for (uint32_t sid = 0; sid < PF_MAX_SESSIONS; sid++) {
		const struct pf_session *s = &d->sessions[sid];
		struct doca_flow_mirror_target targets[PF_MAX_SESSION_MEMBERS];
		struct doca_flow_shared_resource_cfg cfg;

		if (!d->session_in_use[sid] || s->nmembers < 2)
			continue;
		memset(&cfg, 0, sizeof(cfg));
		memset(targets, 0, sizeof(targets));
		for (uint32_t i = 1; i < s->nmembers; i++) {
			targets[i - 1].fwd.type = DOCA_FLOW_FWD_PORT;
			targets[i - 1].fwd.port_id = d->ports[s->members[i].port].doca_id;
		}
		cfg.domain = DOCA_FLOW_PIPE_DOMAIN_DEFAULT;
		cfg.mirror_cfg.nr_targets = (int)s->nmembers - 1;
		cfg.mirror_cfg.target = targets;
		e = DCALL(d, doca_flow_shared_resource_set_cfg, DOCA_FLOW_SHARED_RESOURCE_MIRROR, sid + 1, &cfg);
		if (e)
			return doca_fail(d, err, e, "doca_flow_shared_resource_set_cfg", "session %u (shared mirror %u)",
					 sid, sid + 1);
		ids[n++] = sid + 1;
	}
	for (uint32_t k = 0; k < d->nplanes && n; k++) {
		e = DCALL(d, doca_flow_shared_resources_bind, DOCA_FLOW_SHARED_RESOURCE_MIRROR, ids, n, d->planes[k].port);
		if (e)
			return doca_fail(d, err, e, "doca_flow_shared_resources_bind", "%u shared mirrors on DOCA port %u", n,
					 d->planes[k].doca_id);
	}
	return 0;
}

static void teardown(struct pfdoca *d)
{
	d->running = false;
	for (uint32_t t = 0; t < d->nthreads; t++)
		if (d->threads[t].running) {
			pthread_join(d->threads[t].tid, NULL);
			d->threads[t].running = false;
		}
	if (!d->dry && d->inited) {
		/* documented order: pipes (those forwarded to last), ports (representors before the switch
		 * manager), then the library */
		for (uint32_t i = d->ncreated; i-- > 0;) {
			doca_error_t e = d->api->doca_flow_pipe_destroy(d->created[i]);

			if (e)
				pf_warn("backend doca: doca_flow_pipe_destroy: %s", d->api->doca_error_get_name(e));
		}
		for (int id = PF_MAX_PORTS - 1; id >= 0; id--) {
			int32_t port = d->port_of_doca[id];

			if (port >= 0 && d->ports[port].started) {
				doca_error_t e = d->api->doca_flow_port_stop(d->ports[port].dp);

				if (e)
					pf_warn("backend doca: doca_flow_port_stop(%d): %s", id,
						d->api->doca_error_get_name(e));
				d->ports[port].started = false;
			}
		}
		d->api->doca_flow_destroy();
	}
	d->inited = false;
	d->ncreated = 0;
	d->ninternal = 0;
	d->nplanes = 0;
	memset(d->planes, 0, sizeof(d->planes));
	for (uint32_t i = 0; i < PF_MAX_PIPES; i++)
		memset(d->pipes[i].pl, 0, sizeof(d->pipes[i].pl));
	for (uint32_t i = 0; i < d->max_entries; i++) {
		memset(d->entries[i].de, 0, sizeof(d->entries[i].de));
		memset(d->entries[i].g, 0, sizeof(d->entries[i].g));
	}
	graph_free(d);
	d->started = false;
}

static int doca_start(pf_instance *inst, struct pf_error *err)
{
	struct pfdoca *d = pfdoca_of(inst);
	struct doca_flow_cfg *cfg = NULL;
	doca_error_t e = DOCA_SUCCESS;
	const char *call = "doca_flow_cfg_create";
	uint32_t nports = 0;
	int ret = 0;

	if (d->started)
		return 0;
	for (uint32_t p = 0; p < PF_MAX_PORTS; p++)
		nports += d->ports[p].in_use;
	if (!nports)
		return pf_err(err, -EINVAL, "backend doca: no port is bound; bind ports before starting");
	if (!d->root_set)
		return pf_err(err, -EINVAL, "backend doca: no root pipe set");
	if (d->vnf && nports > PFDOCA_MAX_PLANES)
		return pf_err(err, -ERANGE, "backend doca: vnf mode: %u ports bound, at most %u (each port holds its own "
			      "copy of the pipes)", nports, PFDOCA_MAX_PLANES);
	pthread_mutex_lock(&d->lock);
	pfdoca_queue = 0;
	/* the library: switch mode with hardware steering, pipe queue 0 for control, one per handler */
	e = DCALL(d, doca_flow_cfg_create, &cfg);
#define STEP(fn, ...)                                          \
	do {                                                   \
		if (!e) {                                      \
			call = #fn;                            \
			e = DCALL(d, fn, __VA_ARGS__);         \
		}                                              \
	} while (0)
	STEP(doca_flow_cfg_set_pipe_queues, cfg, d->nqueues);
	STEP(doca_flow_cfg_set_mode_args, cfg, d->vnf ? "vnf,hws" : "switch,hws");
	STEP(doca_flow_cfg_set_nr_counters, cfg, d->max_entries * 2);
	STEP(doca_flow_cfg_set_cb_entry_process, cfg, entry_process_cb);
	if (nsessions(d))
		STEP(doca_flow_cfg_set_nr_shared_resource, cfg, PF_MAX_SESSIONS, DOCA_FLOW_SHARED_RESOURCE_MIRROR);
	STEP(doca_flow_init, cfg);
#undef STEP
	if (cfg)
		DCALL(d, doca_flow_cfg_destroy, cfg);
	if (e) {
		ret = doca_fail(d, err, e, call, "library (%u pipe queues, %s)", d->nqueues,
				d->vnf ? "vnf,hws" : "switch,hws");
		goto out;
	}
	d->inited = true;
	/* ports in DOCA port id order: the switch manager (lowest id, the PF) first */
	for (uint32_t id = 0; id < PF_MAX_PORTS; id++) {
		int32_t port = d->port_of_doca[id];
		struct doca_flow_port_cfg *pc = NULL;
		struct pfdoca_port *p;

		if (port < 0)
			continue;
		p = &d->ports[port];
		call = "doca_flow_port_cfg_create";
		e = DCALL(d, doca_flow_port_cfg_create, &pc);
		if (!e) {
			call = "doca_flow_port_cfg_set_devargs";
			e = DCALL(d, doca_flow_port_cfg_set_devargs, pc, p->devargs);
		}
		if (!e) {
			call = "doca_flow_port_start";
			e = DCALL(d, doca_flow_port_start, pc, &p->dp);
		}
		if (pc)
			DCALL(d, doca_flow_port_cfg_destroy, pc);
		if (e) {
			ret = doca_fail(d, err, e, call, "port %d (devargs %s)", port, p->devargs);
			goto out;
		}
		p->started = true;
		if (d->vnf) {
			/* no switch manager: every port is a plane of its own, seeing only its own frames */
			d->planes[d->nplanes].port = d->dry ? (struct doca_flow_port *)(uintptr_t)(id + 1) : p->dp;
			d->planes[d->nplanes].doca_id = (uint16_t)id;
			d->planes[d->nplanes++].pf_port = port;
		} else if (!d->nplanes) {
			d->planes[0].port = d->dry ? (struct doca_flow_port *)(uintptr_t)1
					 : d->api->doca_flow_port_switch_get(p->dp);
			d->planes[0].doca_id = (uint16_t)id;
			d->planes[0].pf_port = -1;
			d->nplanes = 1;
			if (!d->planes[0].port) {
				ret = pf_err(err, -ENODEV, "backend doca: port %d: doca_flow_port_switch_get found no "
					     "switch manager (DOCA Flow must run in switch mode on the PF)", port);
				goto out;
			}
		}
	}
	if (nsessions(d))
		ret = create_mirrors(d, err);
	for (uint32_t k = 0; k < d->nplanes && !ret; k++) {
		for (uint32_t id = 0; id < PF_MAX_PIPES && !ret; id++)
			if (d->pipes[id].in_use && pipe_misses_to_handler(d, id))
				ret = create_rss_pipe(d, k, id, err);
		for (uint32_t id = 0; id < PF_MAX_PIPES && !ret; id++)
			if (d->pipes[id].in_use)
				ret = create_user_pipe(d, k, id, err);
		if (!ret && d->npolicies)
			ret = create_resubmit_root(d, k, err);
	}
	for (uint32_t id = 0; id < d->max_entries && !ret; id++)
		if (d->entries[id].in_use)
			ret = entry_push(d, id, 0, err);
	if (!ret)
		ret = process_queue(d, 0, err);
	for (uint32_t id = 0; id < d->max_entries && !ret && !d->dry; id++) {
		struct pfdoca_entry *en = &d->entries[id];

		if (en->in_use && !entry_done(d, en))
			ret = pf_err(err, -EIO, "backend doca: %s: entry %u not completed by doca_flow_entries_process",
				     pipe_label(d, en->pipe), id);
	}
	if (ret)
		goto out;
	d->started = true;
	d->running = true;
	if (!d->dry && d->learner)
		for (uint32_t t = 0; t < d->nthreads; t++) {
			d->threads[t].d = d;
			d->threads[t].queue = (uint16_t)t;
			if (pthread_create(&d->threads[t].tid, NULL, handler_main, &d->threads[t])) {
				ret = pf_err(err, -errno, "backend doca: cannot start miss handler thread %u", t);
				goto out;
			}
			d->threads[t].running = true;
		}
	if (!d->dry)
		pf_info("backend doca: %u pipes created on %s %u, %u queues", d->ncreated,
			d->vnf ? "vnf ports, from" : "switch port", d->planes[0].doca_id, d->nqueues);
out:
	if (ret) {
		pthread_mutex_unlock(&d->lock);
		teardown(d);   /* nothing half-created */
		return ret;
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int doca_stop(pf_instance *inst, struct pf_error *err)
{
	struct pfdoca *d = pfdoca_of(inst);

	if (d->started || d->inited)
		teardown(d);
	return 0;
}

static int doca_destroy(pf_instance *inst, struct pf_error *err)
{
	return doca_stop(inst, err);    /* nothing is pinned: DOCA pipes live as long as the process drives them */
}

static void doca_close(pf_instance *inst)
{
	struct pfdoca *d = pfdoca_of(inst);

	if (!d)
		return;
	teardown(d);
	if (d->learner)
		pf_learner_free(d->learner);
	pthread_mutex_lock(&doca_once);
	if (doca_owner == d)
		doca_owner = NULL;
	pthread_mutex_unlock(&doca_once);
	pfdoca_api_unload(d);
	free(d->entries);
	free(d->key_heads);
	free(d->key_next);
	pthread_mutex_destroy(&d->lock);
	free(d);
	inst->priv = NULL;
}

/* ---- entries ----------------------------------------------------------------- */

static int key_equal(const struct pfdoca_entry *en, uint32_t pipe, uint32_t mask_idx, uint32_t prefixlen,
		     const struct pf_fields *match)
{
	return en->in_use && en->pipe == pipe && en->mask_idx == mask_idx && en->prefixlen == prefixlen &&
	       !memcmp(&en->match, match, sizeof(*match));
}

static int entry_remove_locked(struct pfdoca *d, uint32_t id, struct pf_error *err);

/* the key index: entry ids by (pipe, mask slot, prefix length, masked match), so a key is found in O(1) */
static uint32_t key_hash(uint32_t pipe, uint32_t mask_idx, uint32_t prefixlen, const struct pf_fields *match)
{
	uint32_t h = 2166136261u ^ pipe ^ (mask_idx << 8) ^ (prefixlen << 16);
	const uint8_t *p = (const uint8_t *)match;

	for (size_t i = 0; i < sizeof(*match); i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static uint32_t key_find(struct pfdoca *d, uint32_t pipe, uint32_t mask_idx, uint32_t prefixlen,
			 const struct pf_fields *match)
{
	for (uint32_t i = d->key_heads[key_hash(pipe, mask_idx, prefixlen, match) & d->key_mask]; i != UINT32_MAX;
	     i = d->key_next[i])
		if (key_equal(&d->entries[i], pipe, mask_idx, prefixlen, match))
			return i;
	return UINT32_MAX;
}

static void key_link(struct pfdoca *d, uint32_t id)
{
	const struct pfdoca_entry *en = &d->entries[id];
	uint32_t *head = &d->key_heads[key_hash(en->pipe, en->mask_idx, en->prefixlen, &en->match) & d->key_mask];

	d->key_next[id] = *head;
	*head = id;
}

static void key_unlink(struct pfdoca *d, uint32_t id)
{
	const struct pfdoca_entry *en = &d->entries[id];
	uint32_t *p = &d->key_heads[key_hash(en->pipe, en->mask_idx, en->prefixlen, &en->match) & d->key_mask];

	for (; *p != UINT32_MAX; p = &d->key_next[*p])
		if (*p == id) {
			*p = d->key_next[id];
			return;
		}
}

/* Record (before start) or install (after) an entry; an existing key is replaced and keeps its id. */
/* defer: record only (a batch pushes and completes it, entries_install_batch); called with d->lock held */
static int entry_install_locked(struct pfdoca *d, uint32_t pipe, uint32_t mask_idx, uint32_t prefixlen,
				const struct pf_fields *match, struct pf_entry *entry, uint32_t aging_sec, bool defer,
				struct pf_error *err)
{
	struct pfdoca_pipe *p;
	struct pf_fields masked;
	const struct pf_fields *m;
	uint32_t id = UINT32_MAX;
	int ret;

	if (pipe >= PF_MAX_PIPES || !d->pipes[pipe].in_use)
		return pf_err(err, -ENOENT, "backend doca: pipe %u is not defined", pipe);
	p = &d->pipes[pipe];
	if (p->cfg.type != PF_PIPE_LPM && p->cfg.type != PF_PIPE_HASH && mask_idx >= p->nmasks)
		return pf_err(err, -ERANGE, "backend doca: %s: mask slot %u, the pipe has %u", pipe_label(d, pipe),
			      mask_idx, p->nmasks);
	ret = check_actions(d, pipe, entry->act.flags, err);
	if (ret)
		return ret;
	if (entry->fwd.type == PF_FWD_SESSION || entry->fwd.type == PF_FWD_KERNEL) {
		struct doca_flow_fwd tmp;

		ret = to_fwd(d, 0, pipe, &entry->fwd, &tmp, err);
		if (ret)
			return ret;
	}
	/* the key under the pipe's mask, so equal keys are one entry */
	/* a hash member's mask_idx is its first bucket; its key is its bucket range */
	m = p->cfg.type == PF_PIPE_LPM || p->cfg.type == PF_PIPE_HASH ? &p->masks[0] : &p->masks[mask_idx];
	masked = *match;
	for (size_t i = 0; i < sizeof(masked); i++)
		((uint8_t *)&masked)[i] &= ((const uint8_t *)m)[i];
	if (p->cfg.type == PF_PIPE_LPM) {
		struct pf_fields lm;

		lpm_mask(p, prefixlen, &lm);
		for (size_t i = 0; i < sizeof(masked); i++)
			((uint8_t *)&masked)[i] &= ((const uint8_t *)&lm)[i];
	}
	id = key_find(d, pipe, mask_idx, prefixlen, &masked);
	if (id != UINT32_MAX && d->started) {
		ret = entry_remove_locked(d, id, err);
		if (ret)
			goto out;
	} else if (id == UINT32_MAX) {
		for (uint32_t n = 0; n < d->max_entries; n++) {
			uint32_t i = (d->next_free_hint + n) % d->max_entries;

			if (!d->entries[i].in_use) {
				id = i;
				break;
			}
		}
		if (id == UINT32_MAX) {
			ret = pf_err(err, -ENOSPC, "backend doca: %s: the entry table is full (%u entries)",
				     pipe_label(d, pipe), d->max_entries);
			goto out;
		}
		d->next_free_hint = id + 1;
	}
	if (id != UINT32_MAX && d->entries[id].in_use)
		key_unlink(d, id);      /* replaced before start: the same key, relinked below */
	d->entries[id] = (struct pfdoca_entry){ .in_use = true, .pipe = pipe, .mask_idx = mask_idx,
						.prefixlen = prefixlen, .match = masked, .e = *entry,
						.aging_sec = aging_sec };
	d->entries[id].e.id = id;
	key_link(d, id);
	if (d->started && !defer) {
		ret = entry_push(d, id, 0, err);
		if (!ret)
			ret = process_queue(d, pfdoca_queue, err);
		if (!ret && !d->dry && !entry_done(d, &d->entries[id]))
			ret = pf_err(err, -EIO, "backend doca: %s: doca_flow_entries_process did not complete the entry",
				     pipe_label(d, pipe));
		if (ret) {
			entry_unpush(d, id, NULL);
			process_queue(d, pfdoca_queue, NULL);
			key_unlink(d, id);
			memset(&d->entries[id], 0, sizeof(d->entries[id]));
			goto out;
		}
	}
	entry->id = id;
out:
	return ret;
}

static int entry_install(struct pfdoca *d, uint32_t pipe, uint32_t mask_idx, uint32_t prefixlen,
			 const struct pf_fields *match, struct pf_entry *entry, uint32_t aging_sec, struct pf_error *err)
{
	int ret;

	pthread_mutex_lock(&d->lock);
	ret = entry_install_locked(d, pipe, mask_idx, prefixlen, match, entry, aging_sec, false, err);
	pthread_mutex_unlock(&d->lock);
	return ret;
}

/* DOCA aging for entries the miss policy of pipe installs (whole seconds), 0 if it does not age them */
static uint32_t policy_aging_sec(struct pfdoca *d, uint32_t pipe)
{
	for (uint32_t i = 0; i < d->npolicies; i++)
		if (d->policies[i].to_pipe == pipe && d->policies[i].idle_timeout_ms)
			return (d->policies[i].idle_timeout_ms + 999) / 1000;
	return 0;
}

/*
 * pf_entry_add_batch's contract with one doca_flow_entries_process for the whole batch: every entry is
 * recorded first, then pushed with DOCA_FLOW_WAIT_FOR_BATCH except the last of the batch on each plane, then
 * the queue is processed once. A refusal while recording stops there (the earlier ones are pushed); one
 * while pushing or completing undoes the batch from there on, the rest -ECANCELED.
 */
static int entries_install_batch(struct pfdoca *d, struct pf_entry_req *reqs, uint32_t n, bool learned,
				 uint32_t *added, struct pf_error *err)
{
	uint32_t m = 0, last[PFDOCA_MAX_PLANES], ok;
	int ret = 0;

	pthread_mutex_lock(&d->lock);
	for (; m < n && !ret; m++) {
		uint32_t plen = reqs[m].prefixlen;

		if (learned && reqs[m].pipe < PF_MAX_PIPES && d->pipes[reqs[m].pipe].cfg.type == PF_PIPE_LPM)
			plen = d->pipes[reqs[m].pipe].cfg.lpm_field >= PF_LPM_IPV6_DST ? 128 : 32;
		ret = entry_install_locked(d, reqs[m].pipe, learned ? 0 : reqs[m].mask_idx, plen, &reqs[m].match,
					   &reqs[m].entry, learned ? policy_aging_sec(d, reqs[m].pipe) : 0, true, err);
		reqs[m].result = ret;
		if (ret)
			pf_err_batch_index(err, m, n);
	}
	if (ret)
		m--;            /* reqs[m] failed: entries [0, m) are recorded */
	for (uint32_t i = m + (ret ? 1 : 0); i < n; i++)
		reqs[i].result = -ECANCELED;
	ok = m;
	if (d->started && !d->dry) {
		for (uint32_t k = 0; k < PFDOCA_MAX_PLANES; k++)
			last[k] = UINT32_MAX;
		for (uint32_t i = 0; i < m; i++)
			for (uint32_t k = 0; k < d->nplanes; k++)
				if (entry_on_plane(d, &d->entries[reqs[i].entry.id], k))
					last[k] = i;
		for (uint32_t i = 0; i < m && ok == m; i++) {
			uint32_t hold = 0;
			int r;

			for (uint32_t k = 0; k < d->nplanes; k++)
				if (last[k] != UINT32_MAX && i < last[k])
					hold |= 1u << k;
			r = entry_push(d, reqs[i].entry.id, hold, ret ? NULL : err);
			if (r) {
				reqs[i].result = r;
				ok = i;
			}
		}
		if (ok == m && m && process_queue(d, pfdoca_queue, ret ? NULL : err))
			ok = 0;
		for (uint32_t i = 0; i < m && ok == m; i++)
			if (!entry_done(d, &d->entries[reqs[i].entry.id])) {
				reqs[i].result = -EIO;
				ok = i;
			}
		if (ok < m) {
			/* undo from the first that failed: the learner installs the rest one by one */
			for (uint32_t i = ok; i < m; i++) {
				entry_remove_locked(d, reqs[i].entry.id, NULL);
				if (i > ok || !reqs[i].result)
					reqs[i].result = -ECANCELED;
			}
			process_queue(d, pfdoca_queue, NULL);
			if (!ret)
				ret = pf_err(err, -EIO, "backend doca: entry %u of %u: not added by the batch", ok, n);
		}
	} else if (d->started) {
		for (uint32_t i = 0; i < m; i++)
			entry_push(d, reqs[i].entry.id, 0, NULL);
	}
	pthread_mutex_unlock(&d->lock);
	if (added)
		*added = ok;
	return ret;
}

static int entry_remove_locked(struct pfdoca *d, uint32_t id, struct pf_error *err)
{
	struct pfdoca_entry *en;

	if (id >= d->max_entries || !d->entries[id].in_use)
		return pf_err(err, -ENOENT, "backend doca: entry %u does not exist", id);
	en = &d->entries[id];
	if (d->started && entry_pushed(en)) {
		int ret = entry_unpush(d, id, err);

		process_queue(d, pfdoca_queue, NULL);
		if (ret)
			return ret;
	}
	key_unlink(d, id);
	memset(en, 0, sizeof(*en));
	return 0;
}

static int doca_entry_add(pf_instance *inst, uint32_t pipe_id, uint32_t mask_idx, uint32_t prefixlen,
			  const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err)
{
	return entry_install(pfdoca_of(inst), pipe_id, mask_idx, prefixlen, match, entry, 0, err);
}

static int doca_entry_add_batch(pf_instance *inst, struct pf_entry_req *reqs, uint32_t n, uint32_t *added,
				struct pf_error *err)
{
	return entries_install_batch(pfdoca_of(inst), reqs, n, false, added, err);
}

static int doca_entry_del(pf_instance *inst, uint32_t entry_id, struct pf_error *err)
{
	struct pfdoca *d = pfdoca_of(inst);
	int ret;

	pthread_mutex_lock(&d->lock);
	ret = entry_remove_locked(d, entry_id, err);
	pthread_mutex_unlock(&d->lock);
	return ret;
}

/* packets and bytes of an entry from its DOCA counters (summed over its hash buckets and planes) */
static void entry_counts(struct pfdoca *d, struct pfdoca_entry *en, struct pf_counter *out)
{
	struct pfdoca_pipe *p = &d->pipes[en->pipe];
	struct doca_flow_resource_query q;
	uint64_t pkts = 0, bytes = 0;

	memset(out, 0, sizeof(*out));
	if (!en->in_use || !entry_pushed(en) || d->dry || !d->started)
		return;
	for (uint32_t k = 0; k < d->nplanes; k++) {
		uint32_t lo = 0, hi = 1;

		if (!en->de[k])
			continue;
		if (p->cfg.type == PF_PIPE_HASH)
			hi = hash_span(p, en, &lo);
		for (uint32_t b = lo; b < hi; b++) {
			struct doca_flow_pipe_entry *de = p->cfg.type == PF_PIPE_HASH ? p->pl[k].hde[b] : en->de[k];

			if (de && d->api->doca_flow_resource_query_entry(de, &q) == DOCA_SUCCESS) {
				pkts += q.counter.total_pkts;
				bytes += q.counter.total_bytes;
			}
		}
	}
	out->packets = pkts;
	out->bytes = bytes;
	/* the last-seen time of aging: when the counter last moved */
	if (pkts != en->seen_pkts) {
		en->seen_pkts = pkts;
		en->last_seen_ns = pf_now_ns();
	}
}

static int doca_entry_list(pf_instance *inst, uint32_t pipe_id, struct pf_entry_info *out, uint32_t max,
			   uint32_t *count, struct pf_error *err)
{
	struct pfdoca *d = pfdoca_of(inst);
	uint32_t n = 0;

	pthread_mutex_lock(&d->lock);
	for (uint32_t i = 0; i < d->max_entries; i++) {
		struct pfdoca_entry *en = &d->entries[i];

		if (!en->in_use || en->pipe != pipe_id)
			continue;
		if (n < max) {
			struct pf_counter c;

			entry_counts(d, en, &c);
			memset(&out[n], 0, sizeof(out[n]));
			out[n].pipe = en->pipe;
			out[n].mask_idx = en->mask_idx;
			out[n].prefixlen = en->prefixlen;
			out[n].last_seen_ns = en->seen_pkts ? en->last_seen_ns : 0;
			out[n].match = en->match;
			out[n].entry = en->e;
		}
		n++;
	}
	pthread_mutex_unlock(&d->lock);
	*count = n;
	return 0;
}

/* ---- miss handler ---------------------------------------------------------------- */

static int learn_install(void *backend, uint32_t pipe, const struct pf_fields *match, struct pf_entry *entry,
			 struct pf_error *err)
{
	struct pfdoca *d = backend;
	uint32_t plen = 0;

	if (pipe < PF_MAX_PIPES && d->pipes[pipe].cfg.type == PF_PIPE_LPM)
		plen = d->pipes[pipe].cfg.lpm_field >= PF_LPM_IPV6_DST ? 128 : 32;
	/* DOCA ages in whole seconds: an idle timeout is rounded up to the next */
	return entry_install(d, pipe, 0, plen, match, entry, policy_aging_sec(d, pipe), err);
}

static int learn_install_batch(void *backend, struct pf_entry_req *reqs, uint32_t n, uint32_t *added,
			       struct pf_error *err)
{
	struct pfdoca *d = backend;

	if (d->no_batch)
		return *added = 0, 0;
	return entries_install_batch(d, reqs, n, true, added, err);
}

static int learn_remove(void *backend, uint32_t entry_id, struct pf_error *err)
{
	struct pfdoca *d = backend;
	int ret;

	pthread_mutex_lock(&d->lock);
	ret = entry_remove_locked(d, entry_id, err);
	pthread_mutex_unlock(&d->lock);
	return ret;
}

static uint64_t learn_last_seen(void *backend, uint32_t entry_id)
{
	struct pfdoca *d = backend;
	struct pf_counter c;
	uint64_t t;

	if (entry_id >= d->max_entries)
		return 0;
	pthread_mutex_lock(&d->lock);
	entry_counts(d, &d->entries[entry_id], &c);
	t = d->entries[entry_id].last_seen_ns;
	pthread_mutex_unlock(&d->lock);
	return t;
}

static int learn_installed(void *backend, uint32_t pipe, const struct pf_fields *match, uint32_t entry_id)
{
	struct pfdoca *d = backend;
	int ok;

	if (entry_id >= d->max_entries)
		return 0;
	pthread_mutex_lock(&d->lock);
	ok = d->entries[entry_id].in_use && d->entries[entry_id].pipe == pipe &&
	     !memcmp(&d->entries[entry_id].match, match, sizeof(*match));
	pthread_mutex_unlock(&d->lock);
	return ok;
}

/* back into the switch through the port it came from, tagged so the resubmit root sends it to the missed pipe */
static int learn_resubmit(void *backend, uint32_t port, uint32_t pipe, const void *frame, uint32_t len,
			  struct pf_error *err)
{
	struct pfdoca *d = backend;
	struct docasim_pkt pkt = { .data = (uint8_t *)frame, .len = len, .cap = len };

	if (port >= PF_MAX_PORTS || !d->ports[port].in_use)
		return pf_err(err, -ENODEV, "resubmit: port %u is not bound", port);
	if (pipe >= PF_MAX_PIPES)
		return pf_err(err, -EINVAL, "resubmit: the frame's missed pipe is unknown");
	pkt.port_id = d->ports[port].doca_id;
	pkt.pkt_meta = PFDOCA_RESUBMIT_TAG | pipe;
	if (d->api->tx_burst(d->ports[port].doca_id, pfdoca_queue, &pkt, 1) != 1)
		return pf_err(err, -EIO, "resubmit: tx on DOCA port %u queue %u failed", d->ports[port].doca_id,
			      pfdoca_queue);
	return 0;
}

static const struct pf_learn_ops doca_learn_ops = {
	.install = learn_install,
	.remove = learn_remove,
	.last_seen = learn_last_seen,
	.installed = learn_installed,
	.resubmit = learn_resubmit,
	.install_batch = learn_install_batch,
};

#define PFDOCA_BURST 32
#define PFDOCA_AGING_EVERY_NS 10000000ull

/*
 * DOCA's aging on this thread's queue: each reported entry copy is marked; once every copy of a learned
 * entry has aged (vnf: one per port), the learner forgets its flow and removes it (pf_learner_expire).
 */
static void handle_aged(struct pfdoca *d)
{
	for (uint32_t k = 0; k < d->nplanes; k++) {
		aged_n = 0;
		if (d->api->doca_flow_aging_handle(d->planes[k].port, pfdoca_queue, 0, PFDOCA_AGED_MAX) <= 0)
			continue;
		for (uint32_t i = 0; i < aged_n; i++) {
			uint32_t id = aged_buf[i].id, pipe = 0;
			struct pf_fields match;
			bool all = true;

			pthread_mutex_lock(&d->lock);
			if (id >= d->max_entries || !d->entries[id].in_use || !d->entries[id].aging_sec ||
			    d->entries[id].de[k] != aged_buf[i].entry)
				id = UINT32_MAX;        /* removed meanwhile */
			if (id != UINT32_MAX) {
				struct pfdoca_entry *en = &d->entries[id];

				en->aged |= (uint8_t)(1u << k);
				for (uint32_t j = 0; j < d->nplanes; j++)
					if (en->de[j] && !(en->aged & (1u << j)))
						all = false;
				pipe = en->pipe;
				match = en->match;
			}
			pthread_mutex_unlock(&d->lock);
			if (id == UINT32_MAX || !all)
				continue;
			if (!pf_learner_expire(d->learner, pipe, &match, id))
				learn_remove(d, id, NULL);
		}
	}
}

/* One handler: its RSS queue on the switch manager, its own pipe queue for the installs. */
static void *handler_main(void *arg)
{
	struct pfdoca_thread *t = arg;
	struct pfdoca *d = t->d;
	static __thread uint8_t bufs[PFDOCA_BURST][PFDOCA_FRAME_MAX];
	struct docasim_pkt pkts[PFDOCA_BURST];
	struct pf_miss_frame frames[PFDOCA_BURST];
	struct pfdoca_aged aged[PFDOCA_AGED_MAX];
	uint64_t next_aging = 0;

	aged_buf = aged;

	pfdoca_queue = (uint16_t)(1 + t->queue);
	while (d->running) {
		uint16_t n;
		uint32_t nf = 0;

		for (uint32_t i = 0; i < PFDOCA_BURST; i++) {
			pkts[i].data = bufs[i];
			pkts[i].cap = PFDOCA_FRAME_MAX;
		}
		/* switch mode: every RSS queue is the switch manager's; vnf: each port has its own */
		n = 0;
		for (uint32_t k = 0; k < d->nplanes && n < PFDOCA_BURST; k++)
			n = (uint16_t)(n + d->api->rx_burst(d->planes[k].doca_id, t->queue, pkts + n,
							     (uint16_t)(PFDOCA_BURST - n)));
		for (uint16_t i = 0; i < n; i++) {
			uint32_t mark = pkts[i].mark;
			int32_t port = pkts[i].port_id < PF_MAX_PORTS ? d->port_of_doca[pkts[i].port_id] : -1;

			if (port < 0 || !(mark & (PFDOCA_MARK_MISS | PFDOCA_MARK_RESUBMITTED)))
				continue;       /* not ours: no pipe of this instance marked it */
			frames[nf++] = (struct pf_miss_frame){
				.data = pkts[i].data, .len = pkts[i].len, .port = (uint32_t)port,
				.pipe = mark & PFDOCA_MARK_PIPE,
				.packet_path = (mark & PFDOCA_MARK_RESUBMITTED) ? PF_PATH_RESUBMIT : PF_PATH_NORMAL,
			};
		}
		if (nf)
			pf_learner_handle_batch(d->learner, frames, nf);
		/* no sweeper: DOCA ages what this queue learned (monitor.aging_sec) and reports it here */
		if (pf_now_ns() >= next_aging) {
			handle_aged(d);
			next_aging = pf_now_ns() + PFDOCA_AGING_EVERY_NS;
		}
		if (!n)
			usleep(50);
	}
	return NULL;
}

static int doca_learn_set(pf_instance *inst, const struct pf_learn *policy, struct pf_error *err)
{
	struct pfdoca *d = pfdoca_of(inst);
	uint32_t flags = policy->base_actions.flags;
	int ret;

	if (policy->to_pipe >= PF_MAX_PIPES || !d->pipes[policy->to_pipe].in_use)
		return pf_err(err, -ENOENT, "miss policy: install pipe %u is not defined", policy->to_pipe);
	if (policy->from_pipe >= PF_MAX_PIPES || !d->pipes[policy->from_pipe].in_use)
		return pf_err(err, -ENOENT, "miss policy: pipe %u is not defined", policy->from_pipe);
	if (d->started)
		return pf_err(err, -EBUSY, "backend doca: miss policies are fixed once started (their action templates "
			      "are part of the DOCA pipes)");
	for (uint32_t k = 0; k < policy->nsets; k++)
		flags |= policy->sets[k].action;
	ret = check_actions(d, policy->to_pipe, flags, err);
	if (ret)
		return ret;
	if (d->pipes[policy->to_pipe].cfg.type == PF_PIPE_CONTROL ||
	    d->pipes[policy->to_pipe].cfg.type == PF_PIPE_HASH)
		return pf_err(err, -EOPNOTSUPP, "backend doca: %s: miss policies install into basic or lpm pipes",
			      pipe_label(d, policy->to_pipe));
	if (!d->learner) {
		d->learner = pf_learner_new(&doca_learn_ops, d);
		if (!d->learner)
			return pf_err(err, -ENOMEM, "out of memory");
	}
	ret = pf_learner_set_mask(d->learner, policy->to_pipe, &d->pipes[policy->to_pipe].masks[0], err);
	if (!ret)
		ret = pf_learner_set_policy(d->learner, policy, err);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < d->npolicies; i++)
		if (d->policies[i].from_pipe == policy->from_pipe) {
			d->policies[i] = *policy;
			return 0;
		}
	d->policies[d->npolicies++] = *policy;
	d->pipes[policy->from_pipe].has_policy = true;
	return 0;
}

/* ---- counters ---------------------------------------------------------------------- */

static int doca_counters_entries(pf_instance *inst, const uint32_t *ids, uint32_t n, struct pf_counter *out,
				 struct pf_error *err)
{
	struct pfdoca *d = pfdoca_of(inst);

	pthread_mutex_lock(&d->lock);
	for (uint32_t i = 0; i < n; i++) {
		if (ids[i] < d->max_entries)
			entry_counts(d, &d->entries[ids[i]], &out[i]);
		else
			memset(&out[i], 0, sizeof(out[i]));
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* hits: the pipe's entries' counters summed; misses: its DOCA miss counter */
static int doca_counters_pipe(pf_instance *inst, uint32_t pipe_id, struct pf_pipe_counter *out, struct pf_error *err)
{
	struct pfdoca *d = pfdoca_of(inst);
	struct doca_flow_resource_query q;

	memset(out, 0, sizeof(*out));
	if (pipe_id >= PF_MAX_PIPES)
		return pf_err(err, -ERANGE, "pipe id %u out of range (max %u)", pipe_id, PF_MAX_PIPES - 1);
	pthread_mutex_lock(&d->lock);
	if (d->started && !d->dry && d->pipes[pipe_id].pl[0].dp) {
		for (uint32_t i = 0; i < d->max_entries; i++)
			if (d->entries[i].in_use && d->entries[i].pipe == pipe_id) {
				struct pf_counter c;

				entry_counts(d, &d->entries[i], &c);
				out->hits += c.packets;
			}
		for (uint32_t k = 0; k < d->nplanes; k++)
			if (d->api->doca_flow_resource_query_pipe_miss(d->pipes[pipe_id].pl[k].dp, &q) == DOCA_SUCCESS)
				out->misses += q.counter.total_pkts;
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int doca_counters_port(pf_instance *inst, uint32_t port_id, struct pf_port_counter *out, struct pf_error *err)
{
	struct pfdoca *d = pfdoca_of(inst);
	struct docasim_port_stats st;

	memset(out, 0, sizeof(*out));
	if (port_id >= PF_MAX_PORTS)
		return pf_err(err, -ERANGE, "port id %u out of range (max %u)", port_id, PF_MAX_PORTS - 1);
	if (!d->started || d->dry || !d->ports[port_id].started)
		return 0;
	if (d->api->port_stats(d->ports[port_id].doca_id, &st) == 0) {
		out->rx_packets = st.ipackets;
		out->rx_bytes = st.ibytes;
		out->tx_packets = st.opackets;
		out->tx_bytes = st.obytes;
		/* DOCA tells drops by no reason; the port's missed rx is what it knows */
		out->drops[PF_DROP_RATE_LIMIT] = st.imissed;
	}
	return 0;
}

static int doca_miss_stats(pf_instance *inst, struct pf_miss_stats *out, struct pf_error *err)
{
	struct pfdoca *d = pfdoca_of(inst);

	memset(out, 0, sizeof(*out));
	if (d->learner)
		pf_learner_stats(d->learner, out);
	return 0;
}

/* One frame through the DOCA pipes now (simulator only: hardware has no synchronous path). */
static int doca_test_run(pf_instance *inst, uint32_t in_port, const void *frame, uint32_t len, void *out,
			 uint32_t out_cap, struct pf_test_result *res, struct pf_error *err)
{
	struct pfdoca *d = pfdoca_of(inst);
	struct docasim_result r;
	int ret;

	if (in_port >= PF_MAX_PORTS || !d->ports[in_port].in_use)
		return pf_err(err, -ERANGE, "test_run: port %u is not bound", in_port);
	if (d->dry || !d->api->inject)
		return pf_err(err, -EOPNOTSUPP, "test_run: the doca backend runs frames synchronously only on the "
			      "DOCA Flow simulator");
	if (!d->started)
		return pf_err(err, -EINVAL, "test_run: start the instance first (DOCA pipes exist once started)");
	ret = d->api->inject(d->ports[in_port].doca_id, frame, len, DOCASIM_INJECT_NO_QUEUE, out, out_cap, &r);
	if (ret)
		return pf_err(err, ret, "test_run: the simulator refused the frame (%d)", ret);
	memset(res, 0, sizeof(*res));
	res->out_len = r.out_len;
	res->verdict.hops = r.hops;
	res->verdict.last_pipe = PFDOCA_NO_PIPE;
	res->verdict.entry_id = r.last_entry_ctx ? (uint32_t)((uintptr_t)r.last_entry_ctx - 1) : 0xffffffffu;
	if (res->verdict.entry_id != 0xffffffffu && res->verdict.entry_id < d->max_entries)
		res->verdict.last_pipe = d->entries[res->verdict.entry_id].pipe;
	switch (r.verdict) {
	case DOCASIM_TX:
		if (res->verdict.entry_id < d->max_entries && d->entries[res->verdict.entry_id].e.fwd.type == PF_FWD_SESSION) {
			res->verdict.kind = PF_VERDICT_REPLICATE;       /* sent to every member of the group */
			break;
		}
		res->verdict.kind = PF_VERDICT_TX;
		res->verdict.out_port = r.port_id < PF_MAX_PORTS && d->port_of_doca[r.port_id] >= 0
						? (uint32_t)d->port_of_doca[r.port_id] : r.port_id;
		break;
	case DOCASIM_RSS:
		res->verdict.kind = PF_VERDICT_MISS;
		res->verdict.last_pipe = r.mark & PFDOCA_MARK_PIPE;
		break;
	default:
		res->verdict.kind = PF_VERDICT_DROP;
		res->verdict.drop_reason = PF_DROP_ACTION;
		break;
	}
	res->retval = res->verdict.kind;
	return 0;
}

/* The graph: {"api": ..., "pipes": [...]} of what was asked of DOCA Flow (in a dry run: what would be). */
static int doca_describe(pf_instance *inst, char *buf, uint32_t len, uint32_t *needed, struct pf_error *err)
{
	struct pfdoca *d = pfdoca_of(inst);
	struct sbuf b = { 0 };
	int ret = 0;

	pthread_mutex_lock(&d->lock);
	sb_put(&b, "{\"api\": \"DOCA Flow 2.9\", \"mode\": \"%s\", \"pipe_queues\": %u, ", d->vnf ? "vnf,hws" : "switch,hws",
	       d->nqueues);
	if (!d->vnf)
		sb_put(&b, "\"switch_port\": %u, ", d->planes[0].doca_id);
	sb_put(&b, "\"ports\": [");
	for (uint32_t id = 0, first = 1; id < PF_MAX_PORTS; id++)
		if (d->port_of_doca[id] >= 0) {
			sb_put(&b, "%s{\"port_id\": %u, \"port\": %d, \"devargs\": \"%s\"}", first ? "" : ", ", id,
			       d->port_of_doca[id], d->ports[d->port_of_doca[id]].devargs);
			first = 0;
		}
	sb_put(&b, "], \"pipes\": [");
	for (struct pfdoca_gpipe *g = d->graph; g; g = g->next) {
		bool first = true;

		sb_put(&b, "%s%s, \"entries\": [", g == d->graph ? "" : ", ", g->head);
		for (struct pfdoca_gentry *e = g->entries; e; e = e->next)
			if (!e->removed) {
				sb_put(&b, "%s%s", first ? "" : ", ", e->json);
				first = false;
			}
		sb_put(&b, "]}");
	}
	sb_put(&b, "]}");
	pthread_mutex_unlock(&d->lock);
	if (!b.s)
		return pf_err(err, -ENOMEM, "out of memory");
	*needed = (uint32_t)b.len + 1;
	if (buf && len > b.len)
		memcpy(buf, b.s, b.len + 1);
	else
		ret = pf_err(err, -ENOSPC, "describe: %zu bytes needed", b.len + 1);
	free(b.s);
	return ret;
}

const struct pf_backend_ops pf_backend_doca = {
	.name = "doca",
	.available = doca_available,
	.open = doca_open,
	.close = doca_close,
	.info = doca_info,
	.start = doca_start,
	.stop = doca_stop,
	.destroy = doca_destroy,
	.port_set = doca_port_set,
	.pipe_set = doca_pipe_set,
	.pipe_name_set = doca_pipe_name_set,
	.dscp_tc_set = doca_dscp_tc_set,
	.root_set = doca_root_set,
	.session_set = doca_session_set,
	.entry_add = doca_entry_add,
	.entry_add_batch = doca_entry_add_batch,
	.entry_del = doca_entry_del,
	.entry_list = doca_entry_list,
	.learn_set = doca_learn_set,
	.counters_entries = doca_counters_entries,
	.counters_pipe = doca_counters_pipe,
	.counters_port = doca_counters_port,
	.miss_stats = doca_miss_stats,
	.test_run = doca_test_run,
	.describe = doca_describe,
};

#else /* PF_NO_DOCA_BACKEND: meson -Ddoca=disabled */

static int doca_disabled(struct pf_error *err)
{
	return pf_err(err, -ENOTSUP, "backend doca: this pyflow was built with -Ddoca=disabled; rebuild with the "
		      "NVIDIA DOCA SDK (pkg-config doca-flow) or use --backend dpdk or --backend ebpf");
}

static int doca_open(pf_instance *inst, const struct pf_instance_opts *opts, struct pf_error *err)
{
	return doca_disabled(err);
}

const struct pf_backend_ops pf_backend_doca = {
	.name = "doca",
	.available = doca_disabled,
	.open = doca_open,
};
#endif
