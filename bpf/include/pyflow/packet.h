/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet semantics written once: parse a frame into struct pf_fields, apply
 * struct pf_actions with incremental checksums, hash a flow.
 *
 * Header-only; compiled by clang -target bpf (XDP) and by gcc (DPDK software
 * pipes, the miss handler). Every read is bounds-checked against data_end in
 * a form the verifier accepts. Frame-size changes go through hooks the
 * includer defines before including this file:
 *
 *   PF_PKT_CTX                 type of the frame handle (struct xdp_md, struct rte_mbuf, ...)
 *   PF_PKT_DATA(ctx)           start of the frame (uint8_t *)
 *   PF_PKT_DATA_END(ctx)       one past its end (uint8_t *)
 *   PF_PKT_ADJUST_HEAD(ctx, d) grow (d < 0) or shrink (d > 0) the frame at its head; 0 on success
 *   PF_PKT_RANDOM()            a uniformly random uint32_t (drop percentage)
 *
 * Without them (and outside BPF), a plain buffer, struct pf_buf, is used.
 *
 * Conventions beyond shared.h:
 *   - ICMP / ICMPv6: l4_sport holds the type and l4_dport the code (network order, as OVS does).
 *   - IPv4 non-first fragments have no L4 header: ports, tcp_flags and mpegts stay 0.
 *   - IPv6: only the base header is parsed; ip_proto is its next header.
 *   - MPLS: up to PF_MPLS_MAX labels are parsed; the IP header after the
 *     bottom of stack is recognised by its version nibble. A deeper stack is
 *     forwarded as L2 + MPLS only (no IP fields).
 *   - pf_actions.mpls_labels[i]: bits 0-19 label, bits 20-22 traffic class.
 */
#ifndef PYFLOW_PACKET_H
#define PYFLOW_PACKET_H

#include "pyflow/shared.h"

#ifdef __bpf__
#define PF_INLINE static __always_inline
#else
#include <string.h>
#define PF_INLINE static inline __attribute__((always_inline))
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define PF_HTONS(x) ((uint16_t)__builtin_bswap16((uint16_t)(x)))
#define PF_HTONL(x) ((uint32_t)__builtin_bswap32((uint32_t)(x)))
#else
#define PF_HTONS(x) ((uint16_t)(x))
#define PF_HTONL(x) ((uint32_t)(x))
#endif
#define PF_NTOHS(x) PF_HTONS(x)
#define PF_NTOHL(x) PF_HTONL(x)

#define PF_ETH_P_IPV4 0x0800
#define PF_ETH_P_IPV6 0x86DD
#define PF_ETH_P_8021Q 0x8100
#define PF_ETH_P_8021AD 0x88A8
#define PF_ETH_P_MPLS_UC 0x8847
#define PF_ETH_P_MPLS_MC 0x8848

#define PF_IPPROTO_ICMP 1
#define PF_IPPROTO_TCP 6
#define PF_IPPROTO_UDP 17
#define PF_IPPROTO_ICMPV6 58

#define PF_MPEGTS_SYNC 0x47
#define PF_MPEGTS_PKT_LEN 188
#define PF_MPEGTS_MAX_PKTS 7    /* 7 x 188 fits a 1500-byte MTU */
/* Header offsets never exceed this (2 tags + 4 labels + IPv4 with options):
 * the checks against it also tell the verifier how far a pointer can reach. */
#define PF_MAX_HDR_OFF 255

/* ---- wire headers (own definitions so both compilers see the same thing) ---- */

/* Past the Ethernet header a frame is only 2-byte aligned (mbufs, AF_XDP and test buffers start
 * it 4- or 8-aligned, and 14 bytes of Ethernet follow): user-space compilers must not assume more
 * for the 32-bit fields. Same layout; the BPF build keeps its plain loads. */
#ifdef __bpf__
#define PF_WIRE
#else
#define PF_WIRE __attribute__((packed, aligned(2)))
#endif

struct pf_eth_hdr {
	uint8_t dst[6];
	uint8_t src[6];
	uint16_t type;
} PF_WIRE;

struct pf_vlan_hdr {
	uint16_t tci;
	uint16_t type;          /* encapsulated type */
} PF_WIRE;

struct pf_ipv4_hdr {
	uint8_t ver_ihl;
	uint8_t tos;
	uint16_t tot_len;
	uint16_t id;
	uint16_t frag_off;
	uint8_t ttl;
	uint8_t proto;
	uint16_t check;
	uint32_t saddr;
	uint32_t daddr;
} PF_WIRE;

struct pf_ipv6_hdr {
	uint32_t ver_tc_flow;
	uint16_t payload_len;
	uint8_t next;
	uint8_t hop_limit;
	uint8_t saddr[16];
	uint8_t daddr[16];
} PF_WIRE;

struct pf_tcp_hdr {
	uint16_t sport;
	uint16_t dport;
	uint32_t seq;
	uint32_t ack;
	uint8_t doff_res;
	uint8_t flags;
	uint16_t window;
	uint16_t check;
	uint16_t urg;
} PF_WIRE;

struct pf_udp_hdr {
	uint16_t sport;
	uint16_t dport;
	uint16_t len;
	uint16_t check;
} PF_WIRE;

struct pf_icmp_hdr {
	uint8_t type;
	uint8_t code;
	uint16_t check;
} PF_WIRE;

/* ---- parse result ---- */

enum pf_l3_kind {
	PF_L3_NONE = 0,
	PF_L3_IPV4 = 4,
	PF_L3_IPV6 = 6,
};

struct pf_pkt {
	struct pf_fields f;
	uint16_t type_off;      /* offset of the ethertype after the VLAN tags */
	uint16_t mpls_off;      /* first label, 0 if none */
	uint16_t l3_off;        /* IP header, 0 if none */
	uint16_t l4_off;        /* TCP/UDP/ICMP header, 0 if none */
	uint16_t payload_off;   /* after the L4 header, 0 if none */
	uint8_t nvlan;
	uint8_t nmpls;          /* labels parsed (bounded by PF_MPLS_MAX) */
	uint8_t l3;             /* enum pf_l3_kind */
	uint8_t l4;             /* IP protocol whose header was parsed, 0 if none */
	uint8_t mpls_bos;       /* the bottom of stack was seen */
	uint8_t mpegts_deferred;/* UDP payload not classified yet (PF_PARSE_DEFER_MPEGTS) */
};

/* pf_parse_ex() flags. */
enum pf_parse_flag {
	/* Leave f.mpegts_frame for pf_pkt_mpegts(): deep inspection of every UDP
	 * payload is wasted on pipelines that never match the frame class. */
	PF_PARSE_DEFER_MPEGTS = 1u << 0,
};

enum pf_parse_result {
	PF_PARSE_OK = 0,
	PF_PARSE_ERR_ETH = -1,          /* shorter than an Ethernet header */
	PF_PARSE_ERR_VLAN = -2,         /* truncated VLAN tag */
	PF_PARSE_ERR_MPLS = -3,         /* truncated label stack */
	PF_PARSE_ERR_IPV4 = -4,         /* truncated or invalid IPv4 header / length */
	PF_PARSE_ERR_IPV6 = -5,
	PF_PARSE_ERR_L4 = -6,           /* truncated TCP/UDP/ICMP header */
};

/* Actions failed to apply: the frame must be dropped (PF_DROP_ACTION_FAIL). */
enum pf_action_result {
	PF_ACT_OK = 0,
	PF_ACT_SAMPLED_DROP = 1,        /* drop_pct chose this frame: PF_DROP_SAMPLED */
	PF_ACT_ERR_NO_HEADER = -1,      /* the header the action needs is absent */
	PF_ACT_ERR_TTL = -2,            /* TTL / hop limit expired */
	PF_ACT_ERR_ROOM = -3,           /* could not grow / shrink the frame */
	PF_ACT_ERR_BOUNDS = -4,         /* frame shorter than its parse said */
};

/* ---- checksums (RFC 1071 one's complement, RFC 1624 incremental) ---- */

PF_INLINE uint16_t pf_csum_fold(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* RFC 1624: HC' = ~(~HC + ~m + m') over the 16-bit words that change, words
 * in the header's byte order. pf_csum_diff* sum the ~m + m' part (one change
 * moves the IP and the L4 checksum by the same sum); pf_csum_apply folds it in. */
PF_INLINE uint16_t pf_csum_apply(uint16_t check, uint32_t diff)
{
	return (uint16_t)~pf_csum_fold((uint16_t)~check + diff);
}

PF_INLINE uint32_t pf_csum_diff16(uint16_t old, uint16_t new_)
{
	return (uint32_t)(uint16_t)~old + new_;
}

PF_INLINE uint32_t pf_csum_diff32(uint32_t old, uint32_t new_)
{
	return pf_csum_diff16(old & 0xffff, new_ & 0xffff) + pf_csum_diff16(old >> 16, new_ >> 16);
}

PF_INLINE uint32_t pf_csum_diff128(const uint8_t *old, const uint8_t *new_)
{
	uint32_t diff = 0;
	int i;

	for (i = 0; i < 16; i += 2) {
		uint16_t o, n;

		__builtin_memcpy(&o, old + i, 2);
		__builtin_memcpy(&n, new_ + i, 2);
		diff += pf_csum_diff16(o, n);
	}
	return diff;
}

PF_INLINE uint16_t pf_csum_replace16(uint16_t check, uint16_t old, uint16_t new_)
{
	return pf_csum_apply(check, pf_csum_diff16(old, new_));
}

/* ---- parser ---- */

PF_INLINE void pf_pkt_clear(struct pf_pkt *pkt)
{
	__builtin_memset(pkt, 0, sizeof(*pkt));
}

PF_INLINE int pf_is_vlan_type(uint16_t type_net)
{
	return type_net == PF_HTONS(PF_ETH_P_8021Q) || type_net == PF_HTONS(PF_ETH_P_8021AD);
}

/* MPEG-TS over UDP: PSI when a TS packet carries program-specific information
 * (PAT/CAT by PID, a PMT section by table_id), else reference when a TS
 * packet's adaptation field carries random_access_indicator, non-reference
 * otherwise, none unless the payload starts with the sync byte. PSI wins: a
 * datagram holding a PAT or PMT must never be thinned as video. */
PF_INLINE int pf_mpegts_is_psi(const uint8_t *ts, const uint8_t *data_end)
{
	uint32_t pid = ((uint32_t)(ts[1] & 0x1f) << 8) | ts[2];
	uint32_t off;
	const uint8_t *sec;

	if (pid <= 1)                   /* PAT, CAT */
		return 1;
	/* a section starts here (payload_unit_start_indicator), payload present */
	if (!(ts[1] & 0x40) || !(ts[3] & 0x10))
		return 0;
	off = 4;
	if (ts[3] & 0x20)
		off += 1 + (uint32_t)ts[4];
	if (off > PF_MPEGTS_PKT_LEN - 2)
		return 0;
	sec = ts + off;
	if (sec + 2 > data_end)
		return 0;
	/* a PES packet starts 00 00 01; a section with pointer_field, then table_id 0x02 (PMT) */
	if (sec[0] > PF_MPEGTS_PKT_LEN - 2)
		return 0;
	off += 1 + (uint32_t)sec[0];
	if (off > PF_MPEGTS_PKT_LEN - 1)
		return 0;
	sec = ts + off;
	if (sec + 1 > data_end)
		return 0;
	return sec[0] == 0x02;
}

PF_INLINE uint8_t pf_parse_mpegts(const uint8_t *p, const uint8_t *data_end)
{
	uint8_t cls = PF_MPEGTS_NON_REFERENCE;
	int i;

	if (p + 1 > data_end || p[0] != PF_MPEGTS_SYNC)
		return PF_MPEGTS_NONE;
#ifdef __bpf__
#pragma unroll
#endif
	for (i = 0; i < PF_MPEGTS_MAX_PKTS; i++) {
		const uint8_t *ts = p + i * PF_MPEGTS_PKT_LEN;

		if (ts + 6 > data_end || ts[0] != PF_MPEGTS_SYNC)
			break;
		if (pf_mpegts_is_psi(ts, data_end))
			return PF_MPEGTS_PSI;
		/* adaptation_field_control 2 or 3, a non-empty field, random_access_indicator */
		if ((ts[3] & 0x20) && ts[4] > 0 && (ts[5] & 0x40))
			cls = PF_MPEGTS_REFERENCE;
	}
	return cls;
}

PF_INLINE int pf_parse_l4(const uint8_t *data, const uint8_t *data_end, uint32_t off, uint8_t proto,
			  struct pf_pkt *pkt, const uint32_t flags)
{
	const uint8_t *p = data + off;

	if (proto == PF_IPPROTO_TCP) {
		const struct pf_tcp_hdr *tcp = (const void *)p;
		uint32_t hlen;

		if ((const uint8_t *)(tcp + 1) > data_end)
			return PF_PARSE_ERR_L4;
		hlen = (uint32_t)(tcp->doff_res >> 4) * 4;
		if (hlen < sizeof(*tcp) || p + hlen > data_end)
			return PF_PARSE_ERR_L4;
		pkt->f.l4_sport = tcp->sport;
		pkt->f.l4_dport = tcp->dport;
		pkt->f.tcp_flags = tcp->flags;
		pkt->payload_off = off + hlen;
	} else if (proto == PF_IPPROTO_UDP) {
		const struct pf_udp_hdr *udp = (const void *)p;

		if ((const uint8_t *)(udp + 1) > data_end)
			return PF_PARSE_ERR_L4;
		pkt->f.l4_sport = udp->sport;
		pkt->f.l4_dport = udp->dport;
		pkt->payload_off = off + sizeof(*udp);
		if (flags & PF_PARSE_DEFER_MPEGTS)
			pkt->mpegts_deferred = 1;
		else
			pkt->f.mpegts_frame = pf_parse_mpegts((const uint8_t *)(udp + 1), data_end);
	} else if (proto == PF_IPPROTO_ICMP || proto == PF_IPPROTO_ICMPV6) {
		const struct pf_icmp_hdr *icmp = (const void *)p;

		if ((const uint8_t *)(icmp + 1) > data_end)
			return PF_PARSE_ERR_L4;
		pkt->f.l4_sport = PF_HTONS(icmp->type);
		pkt->f.l4_dport = PF_HTONS(icmp->code);
		pkt->payload_off = off + sizeof(*icmp);
	} else {
		return PF_PARSE_OK;
	}
	pkt->l4_off = off;
	pkt->l4 = proto;
	return PF_PARSE_OK;
}

PF_INLINE int pf_parse_ipv4(const uint8_t *data, const uint8_t *data_end, uint32_t off, struct pf_pkt *pkt,
			    const uint32_t flags)
{
	const struct pf_ipv4_hdr *ip = (const void *)(data + off);
	uint32_t ihl, tot;

	if ((const uint8_t *)(ip + 1) > data_end)
		return PF_PARSE_ERR_IPV4;
	ihl = (uint32_t)(ip->ver_ihl & 0x0f) * 4;
	tot = PF_NTOHS(ip->tot_len);
	if ((ip->ver_ihl >> 4) != 4 || ihl < sizeof(*ip) || tot < ihl)
		return PF_PARSE_ERR_IPV4;
	/* options must be present, and the datagram must not extend past the frame */
	if (data + off + ihl > data_end || data + off + tot > data_end)
		return PF_PARSE_ERR_IPV4;
	pkt->l3 = PF_L3_IPV4;
	pkt->l3_off = off;
	pkt->f.ip_proto = ip->proto;
	pkt->f.ip_ttl = ip->ttl;
	pkt->f.ip_dscp = ip->tos >> 2;
	pkt->f.ipv4_src = ip->saddr;
	pkt->f.ipv4_dst = ip->daddr;
	if (ip->frag_off & PF_HTONS(0x1fff))
		return PF_PARSE_OK;     /* non-first fragment: no L4 header here */
	return pf_parse_l4(data, data_end, off + ihl, ip->proto, pkt, flags);
}

PF_INLINE int pf_parse_ipv6(const uint8_t *data, const uint8_t *data_end, uint32_t off, struct pf_pkt *pkt,
			    const uint32_t flags)
{
	const struct pf_ipv6_hdr *ip6 = (const void *)(data + off);
	uint32_t vtf;

	if ((const uint8_t *)(ip6 + 1) > data_end)
		return PF_PARSE_ERR_IPV6;
	vtf = PF_NTOHL(ip6->ver_tc_flow);
	if ((vtf >> 28) != 6)
		return PF_PARSE_ERR_IPV6;
	if (data + off + sizeof(*ip6) + PF_NTOHS(ip6->payload_len) > data_end)
		return PF_PARSE_ERR_IPV6;
	pkt->l3 = PF_L3_IPV6;
	pkt->l3_off = off;
	pkt->f.ip_proto = ip6->next;
	pkt->f.ip_ttl = ip6->hop_limit;
	pkt->f.ip_dscp = (vtf >> 22) & 0x3f;
	__builtin_memcpy(pkt->f.ipv6_src, ip6->saddr, 16);
	__builtin_memcpy(pkt->f.ipv6_dst, ip6->daddr, 16);
	return pf_parse_l4(data, data_end, off + sizeof(*ip6), ip6->next, pkt, flags);
}

/* Parse a frame; pkt->f.port / mark / packet_path are left for the caller.
 * flags: enum pf_parse_flag (a compile-time constant, so unused paths vanish). */
PF_INLINE int pf_parse_ex(const uint8_t *data, const uint8_t *data_end, struct pf_pkt *pkt, const uint32_t flags)
{
	const struct pf_eth_hdr *eth = (const void *)data;
	uint32_t off = sizeof(*eth);
	uint16_t type;
	int i;

	if ((const uint8_t *)(eth + 1) > data_end)
		return PF_PARSE_ERR_ETH;
	__builtin_memcpy(pkt->f.eth_dst, eth->dst, 6);
	__builtin_memcpy(pkt->f.eth_src, eth->src, 6);
	type = eth->type;
	pkt->type_off = 12;

#ifdef __bpf__
#pragma unroll
#endif
	for (i = 0; i < 2; i++) {
		const struct pf_vlan_hdr *vh = (const void *)(data + off);

		if (!pf_is_vlan_type(type))
			break;
		if ((const uint8_t *)(vh + 1) > data_end)
			return PF_PARSE_ERR_VLAN;
		if (i == 0)
			pkt->f.vlan_id = PF_NTOHS(vh->tci) & 0x0fff;
		else
			pkt->f.vlan_inner = PF_NTOHS(vh->tci) & 0x0fff;
		pkt->nvlan = i + 1;
		type = vh->type;
		pkt->type_off = off + 2;
		off += sizeof(*vh);
	}
	pkt->f.eth_type = type;

	if (type == PF_HTONS(PF_ETH_P_MPLS_UC) || type == PF_HTONS(PF_ETH_P_MPLS_MC)) {
		pkt->mpls_off = off;
#ifdef __bpf__
#pragma unroll
#endif
		for (i = 0; i < PF_MPLS_MAX; i++) {
			const uint8_t *lse = data + off;
			uint32_t v;

			if (lse + 4 > data_end)
				return PF_PARSE_ERR_MPLS;
			v = ((uint32_t)lse[0] << 24) | ((uint32_t)lse[1] << 16) | ((uint32_t)lse[2] << 8) | lse[3];
			if (i == 0)
				pkt->f.mpls_label = v >> 12;
			pkt->nmpls = i + 1;
			off += 4;
			if (v & 0x100) {
				pkt->mpls_bos = 1;
				break;
			}
		}
		if (!pkt->mpls_bos)
			return PF_PARSE_OK;
		/* no next-protocol field in MPLS: look at the IP version nibble */
		if (data + off + 1 > data_end)
			return PF_PARSE_ERR_MPLS;       /* bottom of stack with nothing under it */
		if ((data[off] >> 4) == 4)
			return pf_parse_ipv4(data, data_end, off, pkt, flags);
		if ((data[off] >> 4) == 6)
			return pf_parse_ipv6(data, data_end, off, pkt, flags);
		return PF_PARSE_OK;
	}
	if (type == PF_HTONS(PF_ETH_P_IPV4))
		return pf_parse_ipv4(data, data_end, off, pkt, flags);
	if (type == PF_HTONS(PF_ETH_P_IPV6))
		return pf_parse_ipv6(data, data_end, off, pkt, flags);
	return PF_PARSE_OK;
}

/* Parse everything, MPEG-TS frame class included. */
PF_INLINE int pf_parse(const uint8_t *data, const uint8_t *data_end, struct pf_pkt *pkt)
{
	return pf_parse_ex(data, data_end, pkt, 0);
}

/* Classify a deferred UDP payload (PF_PARSE_DEFER_MPEGTS) into f.mpegts_frame, as
 * pf_parse() would have. data/data_end: the frame now; actions that resize the
 * head keep payload_off in step, and none of them touches the payload. */
PF_INLINE void pf_pkt_mpegts(const uint8_t *data, const uint8_t *data_end, struct pf_pkt *pkt)
{
	uint32_t off = pkt->payload_off;

	if (!pkt->mpegts_deferred)
		return;
	pkt->mpegts_deferred = 0;
	/* headers never reach past PF_MAX_HDR_OFF + the L4 header: a bound the verifier can use */
	if (off > PF_MAX_HDR_OFF + 60)
		return;
	pkt->f.mpegts_frame = pf_parse_mpegts(data + off, data_end);
}

/* ---- matching helpers ---- */

/* out = f & mask, word by word (pf_fields has no implicit padding). */
PF_INLINE void pf_fields_and(const struct pf_fields *f, const struct pf_fields *mask, struct pf_fields *out)
{
	const uint32_t *a = (const uint32_t *)f;
	const uint32_t *m = (const uint32_t *)mask;
	uint32_t *o = (uint32_t *)out;
	int i;

#ifdef __bpf__
#pragma unroll
#endif
	for (i = 0; i < (int)(sizeof(struct pf_fields) / 4); i++)
		o[i] = a[i] & m[i];
}

/* Flow hash for hash pipes and address pools: same value on every backend. */
PF_INLINE uint32_t pf_mix32(uint32_t h, uint32_t v)
{
	v *= 0xcc9e2d51u;
	v = (v << 15) | (v >> 17);
	v *= 0x1b873593u;
	h ^= v;
	h = (h << 13) | (h >> 19);
	return h * 5 + 0xe6546b64u;
}

PF_INLINE uint32_t pf_flow_hash(const struct pf_fields *f)
{
	uint32_t h = 0x70664d31u, w;
	int i;

	h = pf_mix32(h, f->ipv4_src);
	h = pf_mix32(h, f->ipv4_dst);
#ifdef __bpf__
#pragma unroll
#endif
	for (i = 0; i < 16; i += 4) {
		__builtin_memcpy(&w, f->ipv6_src + i, 4);
		h = pf_mix32(h, w);
		__builtin_memcpy(&w, f->ipv6_dst + i, 4);
		h = pf_mix32(h, w);
	}
	h = pf_mix32(h, ((uint32_t)f->l4_sport << 16) | f->l4_dport);
	h = pf_mix32(h, f->ip_proto);
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* Build the LPM key of a lookup: pipe id then the chosen address. */
PF_INLINE void pf_lpm_key_build(const struct pf_fields *f, uint32_t pipe, uint16_t field, struct pf_lpm_key *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->pipe = PF_HTONL(pipe);
	switch (field) {
	case PF_LPM_IPV4_SRC:
		k->prefixlen = PF_LPM_PREFIX_BASE + 32;
		__builtin_memcpy(k->addr, &f->ipv4_src, 4);
		break;
	case PF_LPM_IPV6_DST:
		k->prefixlen = PF_LPM_PREFIX_BASE + 128;
		__builtin_memcpy(k->addr, f->ipv6_dst, 16);
		break;
	case PF_LPM_IPV6_SRC:
		k->prefixlen = PF_LPM_PREFIX_BASE + 128;
		__builtin_memcpy(k->addr, f->ipv6_src, 16);
		break;
	default:
		k->prefixlen = PF_LPM_PREFIX_BASE + 32;
		__builtin_memcpy(k->addr, &f->ipv4_dst, 4);
		break;
	}
}

/* ---- frame access hooks ---- */

#if !defined(PF_PKT_CTX) && !defined(__bpf__)
/* A plain buffer with headroom: data points inside [base, base + cap). */
struct pf_buf {
	uint8_t *base;
	uint8_t *data;
	uint32_t len;
	uint32_t cap;
};

static inline int pf_buf_adjust_head(struct pf_buf *b, int delta)
{
	if (delta < 0 && (uint32_t)(b->data - b->base) < (uint32_t)-delta)
		return -1;
	if (delta > 0 && (uint32_t)delta > b->len)
		return -1;
	b->data += delta;
	b->len -= delta;
	return 0;
}

#include <stdlib.h>
#define PF_PKT_CTX struct pf_buf
#define PF_PKT_DATA(b) ((b)->data)
#define PF_PKT_DATA_END(b) ((b)->data + (b)->len)
#define PF_PKT_ADJUST_HEAD(b, d) pf_buf_adjust_head((b), (d))
#define PF_PKT_RANDOM() ((uint32_t)random())
#endif

#ifdef PF_PKT_CTX

/* The frame pointers are reloaded after every size change. */
#define PF_PKT_LOAD(ctx, data, data_end) \
	do { data = (uint8_t *)(PF_PKT_DATA(ctx)); data_end = (uint8_t *)(PF_PKT_DATA_END(ctx)); } while (0)

/* Move n (compile-time constant) bytes by -shift (towards the head), low to high. */
PF_INLINE int pf_move_down(uint8_t *data, uint8_t *data_end, uint32_t dst, uint32_t src, const uint32_t n)
{
	uint32_t i;

	if (data + src + n > data_end || data + dst + n > data_end)
		return PF_ACT_ERR_BOUNDS;
#ifdef __bpf__
#pragma unroll
#endif
	for (i = 0; i < n; i++)
		data[dst + i] = data[src + i];
	return PF_ACT_OK;
}

/* Move n bytes towards the tail, high to low. */
PF_INLINE int pf_move_up(uint8_t *data, uint8_t *data_end, uint32_t dst, uint32_t src, const uint32_t n)
{
	int i;

	if (data + src + n > data_end || data + dst + n > data_end)
		return PF_ACT_ERR_BOUNDS;
#ifdef __bpf__
#pragma unroll
#endif
	for (i = (int)n - 1; i >= 0; i--)
		data[dst + i] = data[src + i];
	return PF_ACT_OK;
}

/* The 12 MAC bytes plus any VLAN tags in front of the ethertype (push: the type is rewritten). */
PF_INLINE int pf_move_l2_down(uint8_t *data, uint8_t *data_end, uint32_t dst, uint32_t src, uint8_t nvlan)
{
	if (nvlan == 0)
		return pf_move_down(data, data_end, dst, src, 12);
	if (nvlan == 1)
		return pf_move_down(data, data_end, dst, src, 16);
	return pf_move_down(data, data_end, dst, src, 20);
}

/* MACs, tags and the ethertype (pop: the type moves with them). */
PF_INLINE int pf_move_l2_up(uint8_t *data, uint8_t *data_end, uint32_t dst, uint32_t src, uint8_t nvlan)
{
	if (nvlan == 0)
		return pf_move_up(data, data_end, dst, src, 14);
	if (nvlan == 1)
		return pf_move_up(data, data_end, dst, src, 18);
	return pf_move_up(data, data_end, dst, src, 22);
}

/* Offset of the L4 checksum for pkt->l4, or 0 when there is none to keep. */
PF_INLINE uint32_t pf_l4_csum_off(const struct pf_pkt *pkt)
{
	uint32_t l4 = pkt->l4_off;

	if (!l4 || l4 > PF_MAX_HDR_OFF)
		return 0;
	if (pkt->l4 == PF_IPPROTO_TCP)
		return l4 + 16;
	if (pkt->l4 == PF_IPPROTO_UDP)
		return l4 + 6;
	if (pkt->l4 == PF_IPPROTO_ICMPV6)
		return l4 + 2;
	return 0;               /* ICMPv4 has no pseudo-header */
}

/* Update the L4 checksum for a change (pf_csum_diff*) covered by the pseudo-header or the L4 header. */
PF_INLINE int pf_l4_csum_fix(uint8_t *data, uint8_t *data_end, const struct pf_pkt *pkt, uint32_t diff)
{
	uint32_t off = pf_l4_csum_off(pkt);
	uint16_t *check;

	if (!off)
		return PF_ACT_OK;
	check = (uint16_t *)(data + off);
	if ((uint8_t *)(check + 1) > data_end)
		return PF_ACT_ERR_BOUNDS;
	if (pkt->l4 == PF_IPPROTO_UDP) {
		uint16_t c;

		if (*check == 0)
			return PF_ACT_OK;       /* no checksum stays no checksum */
		c = pf_csum_apply(*check, diff);
		*check = c ? c : 0xffff;
	} else {
		*check = pf_csum_apply(*check, diff);
	}
	return PF_ACT_OK;
}

PF_INLINE int pf_set_ipv4_addr(uint8_t *data, uint8_t *data_end, struct pf_pkt *pkt, int dst, uint32_t val)
{
	uint32_t l3 = pkt->l3_off;
	struct pf_ipv4_hdr *ip;
	uint32_t old, diff;

	if (pkt->l3 != PF_L3_IPV4)
		return PF_ACT_ERR_NO_HEADER;
	if (l3 > PF_MAX_HDR_OFF)
		return PF_ACT_ERR_BOUNDS;
	ip = (void *)(data + l3);
	if ((uint8_t *)(ip + 1) > data_end)
		return PF_ACT_ERR_BOUNDS;
	old = dst ? ip->daddr : ip->saddr;
	if (dst) {
		ip->daddr = val;
		pkt->f.ipv4_dst = val;
	} else {
		ip->saddr = val;
		pkt->f.ipv4_src = val;
	}
	diff = pf_csum_diff32(old, val);
	ip->check = pf_csum_apply(ip->check, diff);
	return pf_l4_csum_fix(data, data_end, pkt, diff);
}

PF_INLINE int pf_set_ipv6_addr(uint8_t *data, uint8_t *data_end, struct pf_pkt *pkt, int dst, const uint8_t *val)
{
	uint32_t l3 = pkt->l3_off;
	struct pf_ipv6_hdr *ip6;
	uint8_t old[16];
	uint8_t *addr;

	if (pkt->l3 != PF_L3_IPV6)
		return PF_ACT_ERR_NO_HEADER;
	if (l3 > PF_MAX_HDR_OFF)
		return PF_ACT_ERR_BOUNDS;
	ip6 = (void *)(data + l3);
	if ((uint8_t *)(ip6 + 1) > data_end)
		return PF_ACT_ERR_BOUNDS;
	addr = dst ? ip6->daddr : ip6->saddr;
	__builtin_memcpy(old, addr, 16);
	__builtin_memcpy(addr, val, 16);
	__builtin_memcpy(dst ? pkt->f.ipv6_dst : pkt->f.ipv6_src, val, 16);
	return pf_l4_csum_fix(data, data_end, pkt, pf_csum_diff128(old, val));
}

PF_INLINE int pf_set_l4_port(uint8_t *data, uint8_t *data_end, struct pf_pkt *pkt, int dst, uint16_t val)
{
	uint32_t l4 = pkt->l4_off;
	uint16_t *port;
	uint16_t old;

	if (pkt->l4 != PF_IPPROTO_TCP && pkt->l4 != PF_IPPROTO_UDP)
		return PF_ACT_ERR_NO_HEADER;
	if (l4 > PF_MAX_HDR_OFF)
		return PF_ACT_ERR_BOUNDS;
	port = (uint16_t *)(data + l4 + (dst ? 2 : 0));
	if ((uint8_t *)(port + 1) > data_end)
		return PF_ACT_ERR_BOUNDS;
	old = *port;
	*port = val;
	if (dst)
		pkt->f.l4_dport = val;
	else
		pkt->f.l4_sport = val;
	return pf_l4_csum_fix(data, data_end, pkt, pf_csum_diff16(old, val));
}

PF_INLINE int pf_set_dscp(uint8_t *data, uint8_t *data_end, struct pf_pkt *pkt, uint8_t dscp)
{
	uint32_t l3 = pkt->l3_off;

	if (l3 > PF_MAX_HDR_OFF)
		return PF_ACT_ERR_BOUNDS;
	if (pkt->l3 == PF_L3_IPV4) {
		struct pf_ipv4_hdr *ip = (void *)(data + l3);
		uint16_t oldw, neww;

		if ((uint8_t *)(ip + 1) > data_end)
			return PF_ACT_ERR_BOUNDS;
		__builtin_memcpy(&oldw, ip, 2);
		ip->tos = (uint8_t)((dscp << 2) | (ip->tos & 0x03));
		__builtin_memcpy(&neww, ip, 2);
		ip->check = pf_csum_replace16(ip->check, oldw, neww);
	} else if (pkt->l3 == PF_L3_IPV6) {
		struct pf_ipv6_hdr *ip6 = (void *)(data + l3);
		uint32_t v;

		if ((uint8_t *)(ip6 + 1) > data_end)
			return PF_ACT_ERR_BOUNDS;
		v = PF_NTOHL(ip6->ver_tc_flow);
		v = (v & ~(0x3fu << 22)) | ((uint32_t)(dscp & 0x3f) << 22);
		ip6->ver_tc_flow = PF_HTONL(v);
	} else {
		return PF_ACT_ERR_NO_HEADER;
	}
	pkt->f.ip_dscp = dscp & 0x3f;
	return PF_ACT_OK;
}

PF_INLINE int pf_dec_ttl(uint8_t *data, uint8_t *data_end, struct pf_pkt *pkt)
{
	uint32_t l3 = pkt->l3_off;

	if (l3 > PF_MAX_HDR_OFF)
		return PF_ACT_ERR_BOUNDS;
	if (pkt->l3 == PF_L3_IPV4) {
		struct pf_ipv4_hdr *ip = (void *)(data + l3);
		uint16_t oldw, neww;

		if ((uint8_t *)(ip + 1) > data_end)
			return PF_ACT_ERR_BOUNDS;
		if (ip->ttl <= 1)
			return PF_ACT_ERR_TTL;
		__builtin_memcpy(&oldw, &ip->ttl, 2);
		ip->ttl--;
		__builtin_memcpy(&neww, &ip->ttl, 2);
		ip->check = pf_csum_replace16(ip->check, oldw, neww);
		pkt->f.ip_ttl = ip->ttl;
	} else if (pkt->l3 == PF_L3_IPV6) {
		struct pf_ipv6_hdr *ip6 = (void *)(data + l3);

		if ((uint8_t *)(ip6 + 1) > data_end)
			return PF_ACT_ERR_BOUNDS;
		if (ip6->hop_limit <= 1)
			return PF_ACT_ERR_TTL;
		ip6->hop_limit--;
		pkt->f.ip_ttl = ip6->hop_limit;
	} else {
		return PF_ACT_ERR_NO_HEADER;
	}
	return PF_ACT_OK;
}

/* Offsets after a change of size at the head: everything behind the L2 moved by delta. */
PF_INLINE void pf_pkt_shift(struct pf_pkt *pkt, int delta)
{
	if (pkt->l3_off)
		pkt->l3_off += delta;
	if (pkt->l4_off)
		pkt->l4_off += delta;
	if (pkt->payload_off)
		pkt->payload_off += delta;
}

PF_INLINE int pf_pop_vlan(PF_PKT_CTX *ctx, struct pf_pkt *pkt)
{
	uint8_t *data, *data_end;
	int ret;

	if (!pkt->nvlan)
		return PF_ACT_ERR_NO_HEADER;
	PF_PKT_LOAD(ctx, data, data_end);
	/* the MACs move over the outer tag, then the head shrinks by 4 */
	ret = pf_move_up(data, data_end, 4, 0, 12);
	if (ret)
		return ret;
	if (PF_PKT_ADJUST_HEAD(ctx, 4))
		return PF_ACT_ERR_ROOM;
	pkt->nvlan--;
	pkt->f.vlan_id = pkt->nvlan ? pkt->f.vlan_inner : 0;
	pkt->f.vlan_inner = 0;
	pkt->type_off -= 4;
	if (pkt->mpls_off)
		pkt->mpls_off -= 4;
	pf_pkt_shift(pkt, -4);
	return PF_ACT_OK;
}

PF_INLINE int pf_push_vlan(PF_PKT_CTX *ctx, struct pf_pkt *pkt, uint16_t vid)
{
	uint8_t *data, *data_end;
	struct pf_vlan_hdr *tag;
	int ret;

	if (pkt->nvlan >= 2)
		return PF_ACT_ERR_ROOM;         /* the parser reads two tags at most */
	if (PF_PKT_ADJUST_HEAD(ctx, -4))
		return PF_ACT_ERR_ROOM;
	PF_PKT_LOAD(ctx, data, data_end);
	ret = pf_move_down(data, data_end, 0, 4, 12);
	if (ret)
		return ret;
	/* bytes 12-15 are free now; the old ethertype (or tag) follows at 16 */
	tag = (void *)(data + 12);
	if ((uint8_t *)(tag + 1) > data_end)
		return PF_ACT_ERR_BOUNDS;
	/* an outer tag over an existing one is a service tag (802.1ad) */
	tag->tci = pkt->nvlan ? PF_HTONS(PF_ETH_P_8021AD) : PF_HTONS(PF_ETH_P_8021Q);
	tag->type = PF_HTONS(vid & 0x0fff);
	pkt->f.vlan_inner = pkt->nvlan ? pkt->f.vlan_id : 0;
	pkt->f.vlan_id = vid & 0x0fff;
	pkt->nvlan++;
	pkt->type_off += 4;
	if (pkt->mpls_off)
		pkt->mpls_off += 4;
	pf_pkt_shift(pkt, 4);
	return PF_ACT_OK;
}

PF_INLINE int pf_set_vlan(uint8_t *data, uint8_t *data_end, struct pf_pkt *pkt, uint16_t vid)
{
	uint16_t *tci = (uint16_t *)(data + 14);

	if (!pkt->nvlan)
		return PF_ACT_ERR_NO_HEADER;
	if ((uint8_t *)(tci + 1) > data_end)
		return PF_ACT_ERR_BOUNDS;
	*tci = (*tci & PF_HTONS(0xf000)) | PF_HTONS(vid & 0x0fff);
	pkt->f.vlan_id = vid & 0x0fff;
	return PF_ACT_OK;
}

PF_INLINE int pf_pop_mpls(PF_PKT_CTX *ctx, struct pf_pkt *pkt, uint8_t count)
{
	uint8_t *data, *data_end;
	uint32_t delta;
	uint16_t *type;
	int ret;

	if (!pkt->mpls_off || count == 0 || count > pkt->nmpls || count > PF_MPLS_MAX)
		return PF_ACT_ERR_NO_HEADER;
	if (pkt->type_off > 20 || pkt->mpls_off > 22)
		return PF_ACT_ERR_BOUNDS;
	delta = (uint32_t)count * 4;
	PF_PKT_LOAD(ctx, data, data_end);
	/* ethertype after the pop: still MPLS, or the IP version of the payload */
	type = (uint16_t *)(data + (pkt->type_off & 31));
	if ((uint8_t *)(type + 1) > data_end)
		return PF_ACT_ERR_BOUNDS;
	if (count == pkt->nmpls) {
		if (!pkt->mpls_bos)
			return PF_ACT_ERR_NO_HEADER;    /* cannot tell what is under a deeper stack */
		if (pkt->l3 == PF_L3_IPV4)
			*type = PF_HTONS(PF_ETH_P_IPV4);
		else if (pkt->l3 == PF_L3_IPV6)
			*type = PF_HTONS(PF_ETH_P_IPV6);
		else
			return PF_ACT_ERR_NO_HEADER;
	}
	/* MACs, tags and the ethertype move over the popped labels */
	if (delta == 4)
		ret = pf_move_l2_up(data, data_end, 4, 0, pkt->nvlan);
	else if (delta == 8)
		ret = pf_move_l2_up(data, data_end, 8, 0, pkt->nvlan);
	else if (delta == 12)
		ret = pf_move_l2_up(data, data_end, 12, 0, pkt->nvlan);
	else
		ret = pf_move_l2_up(data, data_end, 16, 0, pkt->nvlan);
	if (ret)
		return ret;
	if (PF_PKT_ADJUST_HEAD(ctx, (int)delta))
		return PF_ACT_ERR_ROOM;
	pkt->nmpls -= count;
	if (!pkt->nmpls) {
		pkt->mpls_off = 0;
		pkt->f.mpls_label = 0;
		pkt->f.eth_type = pkt->l3 == PF_L3_IPV4 ? PF_HTONS(PF_ETH_P_IPV4) : PF_HTONS(PF_ETH_P_IPV6);
	} else {
		uint8_t *lse;

		PF_PKT_LOAD(ctx, data, data_end);
		lse = data + (pkt->mpls_off & 31);
		if (lse + 3 > data_end)
			return PF_ACT_ERR_BOUNDS;
		pkt->f.mpls_label = ((uint32_t)lse[0] << 12) | ((uint32_t)lse[1] << 4) | (lse[2] >> 4);
	}
	pf_pkt_shift(pkt, -(int)delta);
	return PF_ACT_OK;
}

/* DSCP -> MPLS traffic class for PF_ACT_MPLS_TC_DSCP. An includer with a
 * configurable map defines PF_DSCP_TO_TC; the default is the class selector
 * (the DSCP's top three bits), which is also what an unmapped DSCP gets. */
#ifndef PF_DSCP_TO_TC
#define PF_DSCP_TO_TC(dscp) (((uint32_t)(dscp) >> 3) & 0x7)
#endif

PF_INLINE int pf_push_mpls(PF_PKT_CTX *ctx, struct pf_pkt *pkt, const struct pf_actions *act)
{
	uint8_t *data, *data_end;
	uint8_t count = act->mpls_count;
	uint32_t delta, type_off, i, tc;
	uint8_t ttl;
	int was_mpls = pkt->mpls_off != 0;
	int ret;

	if (count == 0 || count > PF_MPLS_MAX)
		return PF_ACT_ERR_NO_HEADER;
	if (!was_mpls && pkt->l3 == PF_L3_NONE)
		return PF_ACT_ERR_NO_HEADER;    /* only IP or MPLS payloads get a label */
	if ((uint32_t)pkt->nmpls + count > PF_MPLS_MAX)
		return PF_ACT_ERR_ROOM;
	ttl = act->mpls_ttl ? act->mpls_ttl : pkt->f.ip_ttl;
	if (!ttl)
		ttl = 64;
	delta = (uint32_t)count * 4;
	if (PF_PKT_ADJUST_HEAD(ctx, -(int)delta))
		return PF_ACT_ERR_ROOM;
	PF_PKT_LOAD(ctx, data, data_end);
	/* MACs + tags move to the new head; the ethertype slot becomes MPLS */
	if (delta == 4)
		ret = pf_move_l2_down(data, data_end, 0, 4, pkt->nvlan);
	else if (delta == 8)
		ret = pf_move_l2_down(data, data_end, 0, 8, pkt->nvlan);
	else if (delta == 12)
		ret = pf_move_l2_down(data, data_end, 0, 12, pkt->nvlan);
	else
		ret = pf_move_l2_down(data, data_end, 0, 16, pkt->nvlan);
	if (ret)
		return ret;
	type_off = pkt->type_off;
	if (type_off > 20)
		return PF_ACT_ERR_BOUNDS;
	{
		uint16_t *type = (uint16_t *)(data + (type_off & 31));

		if ((uint8_t *)(type + 1) > data_end)
			return PF_ACT_ERR_BOUNDS;
		*type = PF_HTONS(PF_ETH_P_MPLS_UC);
	}
	for (i = 0; i < PF_MPLS_MAX; i++) {
		uint8_t *lse;
		uint32_t label, v;

		if (i >= count)
			break;
		lse = data + (type_off & 31) + 2 + i * 4;
		if (lse + 4 > data_end)
			return PF_ACT_ERR_BOUNDS;
		label = act->mpls_labels[i];
		tc = (label >> 20) & 0x7;
		if ((act->flags & PF_ACT_MPLS_TC_DSCP) && pkt->l3 != PF_L3_NONE)
			tc = PF_DSCP_TO_TC(pkt->f.ip_dscp);
		v = ((label & 0xfffff) << 12) | ((tc & 0x7) << 9) | ttl;
		if (i == (uint32_t)count - 1 && !was_mpls)
			v |= 0x100;     /* bottom of stack */
		lse[0] = v >> 24;
		lse[1] = v >> 16;
		lse[2] = v >> 8;
		lse[3] = v;
	}
	pkt->mpls_off = type_off + 2;
	pkt->nmpls += count;
	if (!was_mpls)
		pkt->mpls_bos = 1;
	pkt->f.mpls_label = act->mpls_labels[0] & 0xfffff;
	pkt->f.eth_type = PF_HTONS(PF_ETH_P_MPLS_UC);
	pf_pkt_shift(pkt, (int)delta);
	return PF_ACT_OK;
}

/*
 * Apply act to the frame, in the order of shared.h: pop (VLAN, MPLS), set
 * (eth, VLAN, IPv4/IPv6, L4 ports, DSCP), dec TTL, push (MPLS, then VLAN so
 * the tag stays outside the labels), mark, sample. Clone is the datapath's
 * business (it needs the egress machinery). pkt is kept in step with the frame.
 * Returns PF_ACT_OK, PF_ACT_SAMPLED_DROP, or a negative PF_ACT_ERR_*.
 */
/* One action when its flag is set; the first failure ends the list. */
#define PF_ACT_RUN(flag, call)                  \
	do {                                    \
		if (flags & (flag)) {           \
			int ret_ = (call);      \
			if (ret_)               \
				return ret_;    \
		}                               \
	} while (0)

PF_INLINE int pf_apply_actions(PF_PKT_CTX *ctx, struct pf_pkt *pkt, const struct pf_actions *act)
{
	uint32_t flags = act->flags;
	uint8_t *data, *data_end;

	PF_ACT_RUN(PF_ACT_POP_VLAN, pf_pop_vlan(ctx, pkt));
	PF_ACT_RUN(PF_ACT_POP_MPLS, pf_pop_mpls(ctx, pkt, act->mpls_pop_count ? act->mpls_pop_count : 1));
	PF_PKT_LOAD(ctx, data, data_end);
	if (flags & (PF_ACT_SET_ETH_SRC | PF_ACT_SET_ETH_DST)) {
		struct pf_eth_hdr *eth = (void *)data;

		if ((uint8_t *)(eth + 1) > data_end)
			return PF_ACT_ERR_BOUNDS;
		if (flags & PF_ACT_SET_ETH_DST) {
			__builtin_memcpy(eth->dst, act->eth_dst, 6);
			__builtin_memcpy(pkt->f.eth_dst, act->eth_dst, 6);
		}
		if (flags & PF_ACT_SET_ETH_SRC) {
			__builtin_memcpy(eth->src, act->eth_src, 6);
			__builtin_memcpy(pkt->f.eth_src, act->eth_src, 6);
		}
	}
	PF_ACT_RUN(PF_ACT_SET_VLAN, pf_set_vlan(data, data_end, pkt, act->vlan_id));
	PF_ACT_RUN(PF_ACT_SET_IPV4_SRC, pf_set_ipv4_addr(data, data_end, pkt, 0, act->ipv4_src));
	PF_ACT_RUN(PF_ACT_SET_IPV4_DST, pf_set_ipv4_addr(data, data_end, pkt, 1, act->ipv4_dst));
	PF_ACT_RUN(PF_ACT_SET_IPV6_SRC, pf_set_ipv6_addr(data, data_end, pkt, 0, act->ipv6_src));
	PF_ACT_RUN(PF_ACT_SET_IPV6_DST, pf_set_ipv6_addr(data, data_end, pkt, 1, act->ipv6_dst));
	PF_ACT_RUN(PF_ACT_SET_L4_SPORT, pf_set_l4_port(data, data_end, pkt, 0, act->l4_sport));
	PF_ACT_RUN(PF_ACT_SET_L4_DPORT, pf_set_l4_port(data, data_end, pkt, 1, act->l4_dport));
	PF_ACT_RUN(PF_ACT_SET_DSCP, pf_set_dscp(data, data_end, pkt, act->dscp));
	PF_ACT_RUN(PF_ACT_DEC_TTL, pf_dec_ttl(data, data_end, pkt));
	PF_ACT_RUN(PF_ACT_PUSH_MPLS, pf_push_mpls(ctx, pkt, act));
	PF_ACT_RUN(PF_ACT_PUSH_VLAN, pf_push_vlan(ctx, pkt, act->vlan_id));
	if (flags & PF_ACT_SET_MARK)
		pkt->f.mark = act->mark;
	if ((flags & PF_ACT_DROP_PCT) && act->drop_pct &&
	    (act->drop_pct >= 100 || PF_PKT_RANDOM() % 100 < act->drop_pct))
		return PF_ACT_SAMPLED_DROP;
	return PF_ACT_OK;
}

#undef PF_ACT_RUN

#endif /* PF_PKT_CTX */

#endif
