// SPDX-License-Identifier: BSD-2-Clause
/*
 * Tables of the software pipes: an open-addressing index of compact keys for
 * every exact/control pipe, one rte_hash (lock-free readers) keyed by struct
 * pf_flow_key for IPv6 lpm prefixes, rte_lpm per IPv4 lpm pipe, buckets for
 * hash pipes, and the entry array by id.
 * Writers serialise on write_lock; readers never lock. A removed entry's key
 * slot and id are reused only after an RCU grace period of every reader.
 */
#ifdef PF_HAVE_DPDK
#define ALLOW_EXPERIMENTAL_API 1   /* rte_lpm_rcu_qsbr_add: RCU-safe LPM deletes */
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include "dpdk.h"
#include "pyflow/packet.h"

void pfd_rcu_reader_enter(struct pfd *d, uint32_t slot)
{
	rte_rcu_qsbr_thread_online(d->rcu, slot);
}

void pfd_rcu_reader_leave(struct pfd *d, uint32_t slot)
{
	rte_rcu_qsbr_thread_offline(d->rcu, slot);
}

/*
 * Hash of the IPv6 prefix table's key (13 words). CRC32C (one instruction per
 * word where the CPU has it) runs in two independent lanes so the chains
 * overlap, and the lanes are folded at the end.
 */
#define PFD_KEY_WORDS (sizeof(struct pf_flow_key) / sizeof(uint64_t))
_Static_assert(sizeof(struct pf_flow_key) % sizeof(uint64_t) == 0, "flow key is whole words");
_Static_assert(sizeof(struct pf_fields) == (PFD_KEY_WORDS - 1) * sizeof(uint64_t), "pipe + mask_idx is one word");

static inline uint32_t key_hash_fold(uint32_t even, uint32_t odd)
{
	return rte_hash_crc_4byte(odd, even);
}

static uint32_t flow_key_hash(const void *key, uint32_t key_len, uint32_t init_val)
{
	const uint8_t *k = key;
	uint32_t even = init_val, odd = ~init_val;

	RTE_SET_USED(key_len);  /* always sizeof(struct pf_flow_key): the table is created with it */
#pragma GCC unroll 13
	for (size_t i = 0; i < PFD_KEY_WORDS; i++) {
		uint64_t w;

		memcpy(&w, k + i * sizeof(w), sizeof(w));
		if (i & 1)
			odd = rte_hash_crc_8byte(w, odd);
		else
			even = rte_hash_crc_8byte(w, even);
	}
	return key_hash_fold(even, odd);
}

static inline uint32_t table_lookup(const struct rte_hash *h, const struct pf_flow_key *key, uint32_t sig)
{
	void *data;

	return rte_hash_lookup_with_hash_data(h, key, sig, &data) >= 0 ? (uint32_t)(uintptr_t)data : PFD_NO_ENTRY;
}

/*
 * The exact-match index. A key is (pipe, mask slot, the pieces of the fields that mask keeps any
 * bit of, masked): the same equality as the full pf_flow_key, since every other byte of it is
 * zero, at a fraction of the hashing and comparing. Readers take no lock; writers hold write_lock.
 */
static inline uint64_t piece_load(const void *base, uint32_t off, uint32_t width)
{
	return pf_load_uint((const uint8_t *)base + off, width);
}

/* The key pieces of f under a pipe's mask slot; returns their hash. */
static inline uint32_t xkey_build(const struct pfd_pipe *pp, uint32_t mask_idx,
				  const struct pf_fields *f, uint64_t *w)
{
	const struct pfd_key_layout *k = &pp->keys[mask_idx];
	uint32_t h = k->seed;

	for (uint32_t j = 0; j < k->n; j++) {
		w[j] = piece_load(f, k->off[j], k->width[j]) & k->mask[j];
		h = rte_hash_crc_8byte(w[j], h);
	}
	return h;
}

static inline bool xkey_is(const struct pfd *d, uint32_t id, const struct pfd_pipe *pp, uint32_t pipe,
			   uint32_t mask_idx, const uint64_t *w)
{
	const struct pfd_entry *e = &d->entries[id];
	const struct pfd_key_layout *k = &pp->keys[mask_idx];
	uint64_t diff = (uint64_t)(e->pipe ^ pipe) | (e->mask_idx ^ mask_idx);

	for (uint32_t j = 0; j < k->n; j++)
		diff |= (piece_load(&e->match, k->off[j], k->width[j]) & k->mask[j]) ^ w[j];
	return diff == 0;
}

static inline uint32_t xindex_find(const struct pfd *d, const struct pfd_pipe *pp, uint32_t pipe, uint32_t mask_idx,
				   const uint64_t *w, uint32_t h)
{
	const struct pfd_xindex *x = __atomic_load_n(&d->xindex, __ATOMIC_ACQUIRE);
	uint32_t limit = __atomic_load_n(&x->probe_limit, __ATOMIC_RELAXED);

	for (uint32_t p = 0; p <= limit; p++) {
		uint64_t s = __atomic_load_n(&x->slots[(h + p) & x->mask], __ATOMIC_ACQUIRE);
		uint32_t id = (uint32_t)s;

		if (id == PFD_XSLOT_EMPTY)
			break;
		if ((uint32_t)(s >> 32) == h && id != PFD_XSLOT_REMOVED && xkey_is(d, id, pp, pipe, mask_idx, w))
			return id;
	}
	return PFD_NO_ENTRY;
}

static uint32_t xindex_lookup(const struct pfd *d, uint32_t pipe, uint32_t mask_idx, const struct pf_fields *f)
{
	const struct pfd_pipe *pp = &d->pipes[pipe];
	uint64_t w[PFD_KEY_PIECES];

	return xindex_find(d, pp, pipe, mask_idx, w, xkey_build(pp, mask_idx, f, w));
}

/* An index of n slots (a power of two), all empty. */
static struct pfd_xindex *xindex_alloc(uint32_t n)
{
	struct pfd_xindex *x = rte_malloc("pfd_xindex", sizeof(*x) + n * sizeof(uint64_t), RTE_CACHE_LINE_SIZE);

	if (!x)
		return NULL;
	*x = (struct pfd_xindex){ .mask = n - 1 };
	memset(x->slots, 0xff, n * sizeof(uint64_t));
	return x;
}

/* Slots for every entry at most half full: the index never grows past this. */
static uint32_t xindex_max_slots(const struct pfd *d)
{
	uint32_t n = PFD_XINDEX_MIN_SLOTS;

	while (n < 2 * (uint64_t)d->max_entries)
		n <<= 1;
	return n;
}

/* Place (h, id) in the first free or removed slot from h's home (the key is known to be absent). */
static void xindex_place(struct pfd_xindex *x, uint32_t h, uint32_t id)
{
	for (uint32_t p = 0;; p++) {
		uint64_t *s = &x->slots[(h + p) & x->mask];
		uint32_t cur = (uint32_t)*s;

		if (cur != PFD_XSLOT_EMPTY && cur != PFD_XSLOT_REMOVED)
			continue;
		if (p > x->probe_limit)
			__atomic_store_n(&x->probe_limit, p, __ATOMIC_RELEASE);
		x->removed -= cur == PFD_XSLOT_REMOVED;
		x->used++;
		__atomic_store_n(s, (uint64_t)h << 32 | id, __ATOMIC_RELEASE);
		return;
	}
}

/* A copy of the index with n slots and no removed ones takes its place; readers may still be on the
 * old one, which is freed by xindex_reclaim after a grace period. Returns -ENOMEM (the old one stays). */
static int xindex_rebuild(struct pfd *d, uint32_t n)
{
	struct pfd_xindex *old = d->xindex, *x;

	if (d->nretired == RTE_DIM(d->xindex_retired) || !(x = xindex_alloc(n)))
		return -ENOMEM;
	for (uint32_t i = 0; i <= old->mask; i++) {
		uint32_t id = (uint32_t)old->slots[i];

		if (id != PFD_XSLOT_EMPTY && id != PFD_XSLOT_REMOVED)
			xindex_place(x, (uint32_t)(old->slots[i] >> 32), id);
	}
	d->xindex_retired[d->nretired++] = old;
	__atomic_store_n(&d->xindex, x, __ATOMIC_RELEASE);
	return 0;
}

/* Free the indexes replaced before the caller's last grace period. */
static void xindex_reclaim(struct pfd *d)
{
	while (d->nretired)
		rte_free(d->xindex_retired[--d->nretired]);
}

/* Before an insert: a small index for a few entries (fewer pages per lookup), doubled as it fills,
 * rebuilt in place of removed slots. A failed rebuild leaves a fuller index, still correct, until
 * no slot is left for the key (-ENOSPC). */
static int xindex_reserve(struct pfd *d)
{
	uint32_t n = d->xindex->mask + 1;

	if ((d->xindex->used + d->xindex->removed + 1) * 2 > n && n < xindex_max_slots(d))
		xindex_rebuild(d, (d->xindex->used + 1) * 4 > n ? n * 2 : n);
	return d->xindex->used + 1 < d->xindex->mask + 1 ? 0 : -ENOSPC;
}

static uint32_t xindex_entry_hash(const struct pfd *d, const struct pfd_entry *e)
{
	uint64_t w[PFD_KEY_PIECES];

	return xkey_build(&d->pipes[e->pipe], e->mask_idx, &e->match, w);
}

static void xindex_unlink(struct pfd *d, const struct pfd_entry *e, uint32_t id)
{
	struct pfd_xindex *x = d->xindex;
	uint32_t h = xindex_entry_hash(d, e);

	for (uint32_t p = 0; p <= x->probe_limit; p++) {
		uint64_t *s = &x->slots[(h + p) & x->mask];

		if ((uint32_t)*s == PFD_XSLOT_EMPTY)
			return;
		if (*s == ((uint64_t)h << 32 | id)) {
			__atomic_store_n(s, (uint64_t)h << 32 | PFD_XSLOT_REMOVED, __ATOMIC_RELEASE);
			x->used--;
			x->removed++;
			return;
		}
	}
}

/* After a removal's grace period: free replaced indexes, and once removed slots fill a quarter of the
 * index (misses probe far), rebuild it without them. The caller is no RCU reader. */
static void xindex_compact(struct pfd *d)
{
	xindex_reclaim(d);
	if (d->xindex->removed > (d->xindex->mask + 1) / 4 && !xindex_rebuild(d, d->xindex->mask + 1)) {
		rte_rcu_qsbr_synchronize(d->rcu, RTE_QSBR_THRID_INVALID);
		xindex_reclaim(d);
	}
}

/* struct pf_fields member by member: a key piece never straddles two of them. */
#define PFD_FIELD(m) { offsetof(struct pf_fields, m), sizeof(((struct pf_fields *)0)->m) }
static const struct { uint8_t off, len; } pfd_field_layout[] = {
	PFD_FIELD(port), PFD_FIELD(mark), PFD_FIELD(packet_path), PFD_FIELD(mpegts_frame), PFD_FIELD(ip_proto),
	PFD_FIELD(ip_ttl), PFD_FIELD(ip_dscp), PFD_FIELD(tcp_flags), PFD_FIELD(eth_type), PFD_FIELD(eth_dst),
	PFD_FIELD(eth_src), PFD_FIELD(vlan_id), PFD_FIELD(vlan_inner), PFD_FIELD(mpls_label), PFD_FIELD(ipv4_src),
	PFD_FIELD(ipv4_dst), PFD_FIELD(ipv6_src), PFD_FIELD(ipv6_dst), PFD_FIELD(l4_sport), PFD_FIELD(l4_dport),
	PFD_FIELD(_pad),
};
_Static_assert(sizeof(struct pf_fields) == 88, "pfd_field_layout lists every member of struct pf_fields");

/* The pieces of the fields a mask keeps any bit of, each the widest aligned load inside its field. */
static void key_layout(uint32_t pipe, uint32_t mask_idx, const struct pf_fields *mask, struct pfd_key_layout *k)
{
	const uint8_t *m = (const uint8_t *)mask;

	k->n = 0;
	k->seed = rte_hash_crc_8byte((uint64_t)pipe << 32 | mask_idx, 0);
	for (size_t i = 0; i < RTE_DIM(pfd_field_layout); i++) {
		uint32_t off = pfd_field_layout[i].off, end = off + pfd_field_layout[i].len;

		while (off < end) {
			uint32_t w = 8;

			while (w > 1 && (off % w || off + w > end))
				w >>= 1;
			if (piece_load(m, off, w)) {
				k->off[k->n] = (uint8_t)off;
				k->width[k->n] = (uint8_t)w;
				k->mask[k->n++] = piece_load(m, off, w);
			}
			off += w;
		}
	}
}

int pfd_tables_init(struct pfd *d, struct pf_error *err)
{
	char name[RTE_HASH_NAMESIZE];
	struct rte_hash_parameters hp = {
		.name = name,
		.entries = d->max_entries * 2,  /* cuckoo tables fill best below ~50% */
		.key_len = sizeof(struct pf_flow_key),
		.hash_func = flow_key_hash,
		.hash_func_init_val = 0,
		.socket_id = (int)rte_socket_id(),
		.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_NO_FREE_ON_DEL |
			      RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	size_t rcu_size;

	snprintf(name, sizeof(name), "pfd_tbl_%.16s", d->inst->name);
	d->table = rte_hash_create(&hp);
	if (!d->table)
		return pf_err(err, -rte_errno ? -rte_errno : -ENOMEM,
			      "backend dpdk: cannot create the entry table (%u entries): %s; give EAL more memory (-m)",
			      hp.entries, rte_strerror(rte_errno));
	d->xindex = xindex_alloc(RTE_MIN(xindex_max_slots(d), PFD_XINDEX_START_SLOTS));
	if (!d->xindex)
		return pf_err(err, -ENOMEM, "backend dpdk: cannot allocate the exact-match index (%u entries)",
			      d->max_entries);
	d->entries = calloc(d->max_entries, sizeof(*d->entries));
	d->counters = rte_zmalloc("pfd_counters", sizeof(*d->counters) * PFD_NSLOTS, RTE_CACHE_LINE_SIZE);
	if (!d->entries || !d->counters)
		return pf_err(err, -ENOMEM, "backend dpdk: out of memory for %u entries", d->max_entries);
	for (int s = 0; s < PFD_NSLOTS; s++) {
		d->counters[s].entries = calloc(d->max_entries, sizeof(struct pf_counter));
		if (!d->counters[s].entries)
			return pf_err(err, -ENOMEM, "backend dpdk: out of memory for entry counters");
	}
	rcu_size = rte_rcu_qsbr_get_memsize(PFD_NSLOTS);
	d->rcu = rte_zmalloc("pfd_rcu", rcu_size, RTE_CACHE_LINE_SIZE);
	if (!d->rcu || rte_rcu_qsbr_init(d->rcu, PFD_NSLOTS))
		return pf_err(err, -ENOMEM, "backend dpdk: cannot set up RCU for %u readers", PFD_NSLOTS);
	for (unsigned int s = 0; s < PFD_NSLOTS; s++)
		rte_rcu_qsbr_thread_register(d->rcu, s);
	memset(d->buckets, 0xff, sizeof(d->buckets));
	pthread_mutex_init(&d->write_lock, NULL);
	return 0;
}

void pfd_tables_free(struct pfd *d)
{
	for (int p = 0; p < PF_MAX_PIPES; p++) {
		rte_lpm_free(d->pipes[p].lpm);
		d->pipes[p].lpm = NULL;
	}
	rte_hash_free(d->table);
	d->table = NULL;
	xindex_reclaim(d);
	rte_free(d->xindex);
	d->xindex = NULL;
	if (d->counters)
		for (int s = 0; s < PFD_NSLOTS; s++)
			free(d->counters[s].entries);
	rte_free(d->counters);
	d->counters = NULL;
	free(d->entries);
	d->entries = NULL;
	rte_free(d->rcu);
	d->rcu = NULL;
}

static bool lpm_is_v6(const struct pf_pipe *p)
{
	return p->lpm_field == PF_LPM_IPV6_DST || p->lpm_field == PF_LPM_IPV6_SRC;
}

int pfd_pipe_set(struct pfd *d, uint32_t pipe_id, const struct pf_pipe *pipe, const struct pf_fields *masks,
		 uint32_t nmasks, struct pf_error *err)
{
	struct pfd_pipe *pp = &d->pipes[pipe_id];
	int ret = 0;

	if (pipe->type > PF_PIPE_HASH)
		return pf_err(err, -EINVAL, "pipe %u: type %u unknown (expected basic, control, lpm or hash)",
			      pipe_id, pipe->type);
	if (pipe->type == PF_PIPE_LPM && pipe->lpm_field > PF_LPM_IPV6_SRC)
		return pf_err(err, -EINVAL, "pipe %u: lpm_field %u unknown", pipe_id, pipe->lpm_field);
	if ((pipe->type == PF_PIPE_BASIC || pipe->type == PF_PIPE_CONTROL) && nmasks == 0)
		return pf_err(err, -EINVAL, "pipe %u: an exact or control pipe needs at least one mask", pipe_id);
	if (pipe->type == PF_PIPE_HASH && (pipe->hash_slot >= PF_MAX_HASH_PIPES || pipe->nbuckets > PF_HASH_BUCKETS))
		return pf_err(err, -ERANGE, "pipe %u: hash slot %u / %u buckets out of range (max %u / %u)", pipe_id,
			      pipe->hash_slot, pipe->nbuckets, PF_MAX_HASH_PIPES - 1, PF_HASH_BUCKETS);
	pthread_mutex_lock(&d->write_lock);
	if (pp->cfg.flags & PF_PIPE_IN_USE && pp->cfg.type != pipe->type) {
		ret = pf_err(err, -EBUSY, "pipe %u: cannot change its type once set", pipe_id);
		goto out;
	}
	if (pipe->type == PF_PIPE_LPM && !lpm_is_v6(pipe) && !pp->lpm) {
		char name[RTE_LPM_NAMESIZE];
		struct rte_lpm_config lc = {
			.max_rules = d->max_entries,
			.number_tbl8s = 256,
		};
		struct rte_lpm_rcu_config rc = { .v = d->rcu, .mode = RTE_LPM_QSBR_MODE_SYNC };

		snprintf(name, sizeof(name), "pfd_lpm%u_%.12s", pipe_id, d->inst->name);
		pp->lpm4_default = PFD_NO_ENTRY;
		pp->lpm = rte_lpm_create(name, (int)rte_socket_id(), &lc);
		if (!pp->lpm || rte_lpm_rcu_qsbr_add(pp->lpm, &rc)) {
			ret = pf_err(err, -ENOMEM, "pipe %u: cannot create an IPv4 LPM table of %u rules: %s",
				     pipe_id, lc.max_rules, rte_strerror(rte_errno));
			goto out;
		}
	}
	memcpy(pp->masks, masks, nmasks * sizeof(*masks));
	pp->nmasks = nmasks;
	for (uint32_t i = 0; i < nmasks; i++)
		key_layout(pipe_id, i, &pp->masks[i], &pp->keys[i]);
	pp->cfg = *pipe;
	pp->cfg.flags |= PF_PIPE_IN_USE;
	pp->cfg.nmasks = (uint8_t)nmasks;
out:
	pthread_mutex_unlock(&d->write_lock);
	return ret;
}

static int alloc_entry_id(struct pfd *d, uint32_t *id)
{
	for (uint32_t i = 0; i < d->max_entries; i++) {
		uint32_t cand = (d->next_free_hint + i) % d->max_entries;

		if (!d->entries[cand].in_use) {
			*id = cand;
			d->next_free_hint = (cand + 1) % d->max_entries;
			return 0;
		}
	}
	return -ENOSPC;
}

static void lpm_addr_bytes(const struct pf_pipe *p, const struct pf_fields *f, uint8_t *addr, uint32_t *width)
{
	switch (p->lpm_field) {
	case PF_LPM_IPV4_DST: memcpy(addr, &f->ipv4_dst, 4); *width = 32; break;
	case PF_LPM_IPV4_SRC: memcpy(addr, &f->ipv4_src, 4); *width = 32; break;
	case PF_LPM_IPV6_DST: memcpy(addr, f->ipv6_dst, 16); *width = 128; break;
	default: memcpy(addr, f->ipv6_src, 16); *width = 128; break;
	}
}

/* The hash key of an IPv6 prefix: address masked to plen, everything else zero. */
static void lpm6_key(struct pf_flow_key *k, uint32_t pipe, const uint8_t *addr, uint32_t plen)
{
	memset(k, 0, sizeof(*k));
	k->pipe = pipe;
	k->mask_idx = PFD_LPM6_MASK_FLAG | plen;
	for (uint32_t i = 0; i < 16; i++) {
		uint32_t bits = plen > i * 8 ? plen - i * 8 : 0;

		k->f.ipv6_dst[i] = bits >= 8 ? addr[i] : (uint8_t)(addr[i] & (0xff00 >> bits));
	}
}

/* An IPv4 lpm pipe's address of f, host order (rte_lpm's). */
static uint32_t lpm4_addr(const struct pf_pipe *p, const struct pf_fields *f)
{
	return rte_be_to_cpu_32(p->lpm_field == PF_LPM_IPV4_DST ? f->ipv4_dst : f->ipv4_src);
}

/* Which table key an entry lives under; fills key. Returns -errno with err on bad input. */
static int entry_key(struct pfd *d, uint32_t pipe, uint32_t mask_idx, uint32_t prefixlen,
		     const struct pf_fields *match, struct pf_flow_key *key, struct pf_error *err)
{
	const struct pfd_pipe *pp = &d->pipes[pipe];

	memset(key, 0, sizeof(*key));
	switch (pp->cfg.type) {
	case PF_PIPE_BASIC:
	case PF_PIPE_CONTROL:
		if (mask_idx >= pp->nmasks)
			return pf_err(err, -ERANGE, "pipe %u: mask slot %u out of range (pipe has %u)", pipe, mask_idx,
				      pp->nmasks);
		key->pipe = pipe;
		key->mask_idx = mask_idx;
		pf_fields_and(match, &pp->masks[mask_idx], &key->f);
		return 0;
	case PF_PIPE_LPM: {
		uint8_t addr[16];
		uint32_t width;

		lpm_addr_bytes(&pp->cfg, match, addr, &width);
		if (prefixlen > width)
			return pf_err(err, -ERANGE, "pipe %u: prefix length %u longer than the address (%u bits)", pipe,
				      prefixlen, width);
		if (width == 128)
			lpm6_key(key, pipe, addr, prefixlen);
		return 0;
	}
	default:
		return 0;
	}
}

/* The id of the entry already stored under this key, if any. */
static bool find_existing(struct pfd *d, const struct pfd_pipe *pp, const struct pf_flow_key *key, uint32_t mask_idx,
			  uint32_t prefixlen, const struct pf_fields *match, uint32_t *id)
{
	void *data;

	switch (pp->cfg.type) {
	case PF_PIPE_LPM:
		if (!lpm_is_v6(&pp->cfg) && prefixlen == 0) {
			*id = pp->lpm4_default;
			return pp->lpm4_default != PFD_NO_ENTRY;
		}
		if (!lpm_is_v6(&pp->cfg))
			return rte_lpm_is_rule_present(pp->lpm, lpm4_addr(&pp->cfg, match), (uint8_t)prefixlen, id) == 1;
		/* fall through: IPv6 prefixes live in the hash */
		if (rte_hash_lookup_data(d->table, key, &data) < 0)
			return false;
		*id = (uint32_t)(uintptr_t)data;
		return true;
	case PF_PIPE_BASIC:
	case PF_PIPE_CONTROL:
		*id = xindex_lookup(d, (uint32_t)(pp - d->pipes), mask_idx, match);
		return *id != PFD_NO_ENTRY;
	case PF_PIPE_HASH:
		if (mask_idx >= PF_HASH_BUCKETS || d->buckets[pp->cfg.hash_slot][mask_idx] == PFD_NO_ENTRY)
			return false;
		*id = d->buckets[pp->cfg.hash_slot][mask_idx];
		return true;
	}
	return false;
}

/* Make id findable under key in its pipe's table (d->write_lock held). */
static int table_link(struct pfd *d, struct pfd_pipe *pp, const struct pf_flow_key *key, uint32_t mask_idx,
		      uint32_t prefixlen, const struct pf_fields *match, uint32_t id)
{
	switch (pp->cfg.type) {
	case PF_PIPE_BASIC:
	case PF_PIPE_CONTROL:
		if (xindex_reserve(d))
			return -ENOSPC;
		xindex_place(d->xindex, xindex_entry_hash(d, &d->entries[id]), id);
		return 0;
	case PF_PIPE_LPM:
		if (lpm_is_v6(&pp->cfg)) {
			int ret = rte_hash_add_key_data(d->table, key, (void *)(uintptr_t)id);

			if (!ret)
				pp->lpm6_lengths[prefixlen / 64] |= 1ull << (prefixlen % 64);
			return ret;
		}
		if (prefixlen == 0) {
			if (pp->lpm4_default != PFD_NO_ENTRY)
				return -EEXIST;
			pp->lpm4_default = id;
			return 0;
		}
		return rte_lpm_add(pp->lpm, lpm4_addr(&pp->cfg, match), (uint8_t)prefixlen, id);
	case PF_PIPE_HASH: {
		/* the entry owns buckets [mask_idx, mask_idx + prefixlen), sized by its weight */
		uint32_t *buckets = d->buckets[pp->cfg.hash_slot], n = prefixlen ? prefixlen : 1;

		if (mask_idx + n > PF_HASH_BUCKETS)
			return -ERANGE;
		for (uint32_t b = mask_idx; b < mask_idx + n; b++)
			buckets[b] = id;
		return 0;
	}
	}
	return -EINVAL;
}

/* Take slot (entry id) out of its pipe's table (d->write_lock held). Returns the rte_hash
 * position to free once readers are done with it, or -1. */
static int32_t table_unlink(struct pfd *d, struct pfd_entry *slot, uint32_t id)
{
	struct pfd_pipe *pp = &d->pipes[slot->pipe];
	struct pf_flow_key key;
	int32_t pos = -1;

	entry_key(d, slot->pipe, slot->mask_idx, slot->prefixlen, &slot->match, &key, NULL);
	switch (pp->cfg.type) {
	case PF_PIPE_BASIC:
	case PF_PIPE_CONTROL:
		xindex_unlink(d, slot, id);
		break;
	case PF_PIPE_LPM:
		if (lpm_is_v6(&pp->cfg))
			/* keep the length bit: other prefixes of that length may remain; a stale bit only costs a lookup */
			pos = rte_hash_del_key(d->table, &key);
		else if (slot->prefixlen == 0 && pp->lpm4_default == id)
			pp->lpm4_default = PFD_NO_ENTRY;
		else if (slot->prefixlen)
			rte_lpm_delete(pp->lpm, lpm4_addr(&pp->cfg, &slot->match), (uint8_t)slot->prefixlen);
		break;
	case PF_PIPE_HASH: {
		uint32_t *b = d->buckets[pp->cfg.hash_slot], n = slot->prefixlen ? slot->prefixlen : 1;

		for (uint32_t i = slot->mask_idx; i < slot->mask_idx + n && i < PF_HASH_BUCKETS; i++)
			if (b[i] == id)
				b[i] = PFD_NO_ENTRY;
		break;
	}
	}
	return pos;
}

/* Install one entry with d->write_lock held; its rte_flow rules are the caller's to add after. */
static int entry_install_locked(struct pfd *d, uint32_t pipe, uint32_t mask_idx, uint32_t prefixlen,
				const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err)
{
	struct pfd_pipe *pp;
	struct pf_flow_key key;
	struct pfd_entry *slot;
	uint32_t id;
	int ret;

	if (pipe >= PF_MAX_PIPES || !(d->pipes[pipe].cfg.flags & PF_PIPE_IN_USE))
		return pf_err(err, -ENOENT, "pipe %u is not defined", pipe);
	pp = &d->pipes[pipe];
	ret = entry_key(d, pipe, mask_idx, prefixlen, match, &key, err);
	if (ret)
		return ret;
	/* An existing key is updated in place and keeps its id (as the ebpf backend does). */
	if (find_existing(d, pp, &key, mask_idx, prefixlen, match, &id)) {
		slot = &d->entries[id];
		entry->id = id;
		slot->e.priority = entry->priority;
		slot->e.flags = entry->flags;
		slot->e.fwd = entry->fwd;
		slot->e.act = entry->act;
		rte_smp_wmb();
		return 0;
	}
	ret = alloc_entry_id(d, &id);
	if (ret)
		return pf_err(err, ret, "pipe %u: entry table full (%u entries)", pipe, d->max_entries);
	slot = &d->entries[id];
	memset(slot, 0, sizeof(*slot));
	slot->pipe = pipe;
	slot->mask_idx = mask_idx;
	slot->prefixlen = prefixlen;
	slot->match = *match;
	slot->e = *entry;
	slot->e.id = id;
	for (int s = 0; s < PFD_NSLOTS; s++)
		d->counters[s].entries[id] = (struct pf_counter){ 0 };
	/* the entry is complete before any reader can find its id */
	rte_smp_wmb();

	ret = table_link(d, pp, &key, mask_idx, prefixlen, match, id);
	if (ret)
		return pf_err(err, ret < 0 ? ret : -ENOSPC, "pipe %u: cannot add entry: %s", pipe, rte_strerror(-ret));
	slot->in_use = 1;
	entry->id = id;
	return 0;
}

int pfd_entry_install(struct pfd *d, uint32_t pipe, uint32_t mask_idx, uint32_t prefixlen,
		      const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err)
{
	int ret;

	pthread_mutex_lock(&d->write_lock);
	ret = entry_install_locked(d, pipe, mask_idx, prefixlen, match, entry, err);
	pthread_mutex_unlock(&d->write_lock);
	if (!ret)
		pfd_rte_flow_entry_added(d, entry->id);    /* no-op unless rte_flow rules are in use */
	return ret;
}

/* pf_entry_add_batch: every entry under one hold of the write lock, in order, stopping at the
 * first failure (what came before it stays); rte_flow rules follow once the lock is released. */
int pfd_entry_install_batch(struct pfd *d, struct pf_entry_req *reqs, uint32_t n, uint32_t *added,
			    struct pf_error *err)
{
	uint32_t done = 0;
	int ret = 0;

	pthread_mutex_lock(&d->write_lock);
	for (; done < n; done++) {
		struct pf_entry_req *r = &reqs[done];

		ret = entry_install_locked(d, r->pipe, r->mask_idx, r->prefixlen, &r->match, &r->entry, err);
		r->result = ret;
		if (ret)
			break;
	}
	pthread_mutex_unlock(&d->write_lock);
	for (uint32_t i = 0; i < done; i++)
		pfd_rte_flow_entry_added(d, reqs[i].entry.id);
	if (ret)
		pf_err_batch_index(err, done, n);
	if (added)
		*added = done;
	return ret;
}

int pfd_entry_replace(struct pfd *d, uint32_t id, uint32_t pipe, uint32_t mask_idx, uint32_t prefixlen,
		      const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err)
{
	struct pfd_entry *slot;
	struct pf_flow_key key;
	uint32_t other = UINT32_MAX;
	bool rekey;
	int32_t pos;
	int ret;

	if (id >= d->max_entries)
		return pf_err(err, -ERANGE, "entry id %u out of range (max %u)", id, d->max_entries - 1);
	if (pipe >= PF_MAX_PIPES || !(d->pipes[pipe].cfg.flags & PF_PIPE_IN_USE))
		return pf_err(err, -ENOENT, "pipe %u is not defined", pipe);
	ret = entry_key(d, pipe, mask_idx, prefixlen, match, &key, err);
	if (ret)
		return ret;
	pfd_rte_flow_entry_removed(d, id);
	pthread_mutex_lock(&d->write_lock);
	slot = &d->entries[id];
	if (!slot->in_use || slot->pipe != pipe) {
		ret = pf_err(err, slot->in_use ? -EINVAL : -ENOENT, "entry %u: %s", id,
			     slot->in_use ? "a replacement stays in the entry's pipe" : "does not exist");
		goto out;
	}
	if (d->pipes[pipe].cfg.type == PF_PIPE_HASH) {
		ret = pf_err(err, -EINVAL, "entry %u: hash-pipe members are replaced through the config", id);
		goto out;
	}
	rekey = !find_existing(d, &d->pipes[pipe], &key, mask_idx, prefixlen, match, &other);
	if (!rekey && other != id) {
		ret = pf_err(err, -EEXIST, "entry %u: entry %u already has this match in pipe %u", id, other, pipe);
		goto out;
	}
	entry->id = id;
	if (rekey) {
		/* a new match: the id (and so its counters) moves to the new key */
		pos = table_unlink(d, slot, id);
		rte_rcu_qsbr_synchronize(d->rcu, RTE_QSBR_THRID_INVALID);
		if (pos >= 0)
			rte_hash_free_key_with_position(d->table, pos);
		xindex_compact(d);
		slot->mask_idx = mask_idx;
		slot->prefixlen = prefixlen;
		slot->match = *match;
	}
	slot->e.priority = entry->priority;
	slot->e.flags = entry->flags;
	slot->e.fwd = entry->fwd;
	slot->e.act = entry->act;
	rte_smp_wmb();
	if (rekey && (ret = table_link(d, &d->pipes[pipe], &key, mask_idx, prefixlen, match, id))) {
		slot->in_use = 0;
		ret = pf_err(err, ret < 0 ? ret : -ENOSPC, "pipe %u: cannot add entry: %s", pipe, rte_strerror(-ret));
	}
out:
	pthread_mutex_unlock(&d->write_lock);
	if (!ret)
		pfd_rte_flow_entry_added(d, id);
	return ret;
}

int pfd_entry_remove(struct pfd *d, uint32_t id, struct pf_error *err)
{
	struct pfd_entry *slot;
	int32_t pos = -1;
	int ret = 0;

	if (id >= d->max_entries)
		return pf_err(err, -ERANGE, "entry id %u out of range (max %u)", id, d->max_entries - 1);
	/* the NIC stops matching first; frames then fall through to the software table until it is gone too */
	pfd_rte_flow_entry_removed(d, id);
	pthread_mutex_lock(&d->write_lock);
	slot = &d->entries[id];
	if (!slot->in_use) {
		ret = pf_err(err, -ENOENT, "entry %u does not exist", id);
		goto out;
	}
	pos = table_unlink(d, slot, id);
	/* Readers that found the id before the delete may still use the entry: wait them out. */
	rte_rcu_qsbr_synchronize(d->rcu, RTE_QSBR_THRID_INVALID);
	if (pos >= 0)
		rte_hash_free_key_with_position(d->table, pos);
	slot->in_use = 0;
	xindex_compact(d);
out:
	pthread_mutex_unlock(&d->write_lock);
	return ret;
}

int pfd_entry_list(struct pfd *d, uint32_t pipe, struct pf_entry_info *out, uint32_t max, uint32_t *count,
		   struct pf_error *err)
{
	uint32_t n = 0;

	pthread_mutex_lock(&d->write_lock);
	for (uint32_t id = 0; id < d->max_entries; id++) {
		const struct pfd_entry *s = &d->entries[id];

		if (!s->in_use || (pipe != PFD_NO_ENTRY && s->pipe != pipe))
			continue;
		if (out && n < max) {
			memset(&out[n], 0, sizeof(out[n]));
			out[n].pipe = s->pipe;
			out[n].mask_idx = s->mask_idx;
			out[n].prefixlen = s->prefixlen;
			out[n].last_seen_ns = s->last_seen_ns;
			out[n].match = s->match;
			out[n].entry = s->e;
		}
		n++;
	}
	pthread_mutex_unlock(&d->write_lock);
	*count = n;
	return 0;
}

void pfd_counters_sum_entry(struct pfd *d, uint32_t id, struct pf_counter *out)
{
	*out = (struct pf_counter){ 0 };
	if (id >= d->max_entries)
		return;
	for (int s = 0; s < PFD_NSLOTS; s++)
		pf_u64_add(out, &d->counters[s].entries[id], sizeof(*out));
	pfd_rte_flow_entry_counts(d, id, out);     /* what the NIC counted for its rules */
}

void pfd_counters_sum_pipe(struct pfd *d, uint32_t pipe, struct pf_pipe_counter *out)
{
	*out = (struct pf_pipe_counter){ 0 };
	for (int s = 0; s < PFD_NSLOTS; s++)
		pf_u64_add(out, &d->counters[s].pipes[pipe], sizeof(*out));
}

void pfd_counters_sum_port(struct pfd *d, uint32_t port, struct pf_port_counter *out)
{
	*out = (struct pf_port_counter){ 0 };
	for (int s = 0; s < PFD_NSLOTS; s++)
		pf_u64_add(out, &d->counters[s].ports[port], sizeof(*out));
}

/* Lookup of one pipe: entry id or PFD_NO_ENTRY. f holds the frame's fields. */
uint32_t pfd_lookup(struct pfd *d, uint32_t pipe, const struct pf_fields *f, uint32_t flow_hash)
{
	const struct pfd_pipe *pp = &d->pipes[pipe];
	struct pf_flow_key key;

	switch (pp->cfg.type) {
	case PF_PIPE_BASIC:
		return xindex_lookup(d, pipe, 0, f);
	case PF_PIPE_CONTROL: {
		uint32_t best = PFD_NO_ENTRY, best_prio = UINT32_MAX;

		for (uint32_t i = 0; i < pp->nmasks; i++) {
			uint32_t id = xindex_lookup(d, pipe, i, f);

			/* lower value wins; on a tie the earlier mask slot */
			if (id != PFD_NO_ENTRY && d->entries[id].e.priority < best_prio) {
				best = id;
				best_prio = d->entries[id].e.priority;
			}
		}
		return best;
	}
	case PF_PIPE_LPM: {
		uint8_t addr[16];
		uint32_t width;

		lpm_addr_bytes(&pp->cfg, f, addr, &width);
		if (width == 32) {
			uint32_t a, nh;

			memcpy(&a, addr, 4);
			return rte_lpm_lookup(pp->lpm, rte_be_to_cpu_32(a), &nh) == 0 ? nh : pp->lpm4_default;
		}
		for (int plen = 128; plen >= 0; plen--) {
			uint32_t id;

			if (!(pp->lpm6_lengths[plen / 64] & (1ull << (plen % 64))))
				continue;
			lpm6_key(&key, pipe, addr, (uint32_t)plen);
			id = table_lookup(d->table, &key, flow_key_hash(&key, sizeof(key), 0));
			if (id != PFD_NO_ENTRY)
				return id;
		}
		return PFD_NO_ENTRY;
	}
	case PF_PIPE_HASH:
		if (!pp->cfg.nbuckets)
			return PFD_NO_ENTRY;
		return d->buckets[pp->cfg.hash_slot][flow_hash % pp->cfg.nbuckets % PF_HASH_BUCKETS];
	}
	return PFD_NO_ENTRY;
}
#endif
