// SPDX-License-Identifier: BSD-2-Clause
/* Entries of the ebpf backend: ids and slots, the user-space key index, the pipe cache, single and
 * batched installs, in-place replace, removal, listing and re-adoption of pinned entries. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "ebpf/ebpf.h"
#include "pyflow/packet.h"

/* ---- entry slots ---- */

static int slot_alloc(struct pf_ebpf *eb, uint32_t *id)
{
	for (uint32_t n = 0; n < eb->max_entries; n++) {
		uint32_t i = (eb->next_id + n) % eb->max_entries;

		if (eb->slots[i].kind == PF_EBPF_SLOT_FREE) {
			eb->next_id = (i + 1) % eb->max_entries;
			*id = i;
			return 0;
		}
	}
	return -ENOSPC;
}

/* A reused id must not inherit the counters of the entry it belonged to; an id
 * never given out since the maps were created has zero counters already. */
static void entry_counters_reset(struct pf_ebpf *eb, uint32_t id)
{
	struct pf_counter zero = { 0 };
	uint64_t never = 0;

	if (!eb->id_dirty[id])
		return;
	if (!pf_ebpf_percpu_fill(eb, eb->map_entry_counters, id, &zero, sizeof(zero)) &&
	    !bpf_map_update_elem(eb->map_entry_seen, &id, &never, BPF_ANY))
		eb->id_dirty[id] = 0;
}

/* Load pipe_id's definition and masks from the maps into the cache (pipe_lock held). */
static int pipe_cache_fill(struct pf_ebpf *eb, uint32_t pipe_id)
{
	struct pf_pipe pipe;

	if (bpf_map_lookup_elem(eb->map_pipes, &pipe_id, &pipe))
		return -ENOENT;
	for (uint32_t i = 0; i < PF_MAX_MASKS; i++) {
		uint32_t key = pipe_id * PF_MAX_MASKS + i;

		if (bpf_map_lookup_elem(eb->map_pipe_masks, &key, &eb->mask_cache[key]))
			return -ENOENT;
		/* a pin of a build before mask_keys: zeros, its entries are in "entries" */
		if (bpf_map_lookup_elem(eb->map_mask_keys, &key, &eb->mkey_cache[key]))
			memset(&eb->mkey_cache[key], 0, sizeof(eb->mkey_cache[key]));
	}
	eb->pipe_cache[pipe_id] = pipe;
	eb->pipe_cached[pipe_id] = 1;
	return 0;
}

/* After a pipe's definition was written to the maps: keep the cache in step.
 * masks == NULL: only the definition changed (hash buckets). */
void pf_ebpf_pipe_cache_store(struct pf_ebpf *eb, uint32_t pipe_id, const struct pf_pipe *pipe,
			     const struct pf_fields *masks, const struct pf_mask_key *mkeys, uint32_t nmasks)
{
	pthread_mutex_lock(&eb->pipe_lock);
	if (masks) {
		for (uint32_t i = 0; i < PF_MAX_MASKS; i++) {
			struct pf_fields *slot = &eb->mask_cache[pipe_id * PF_MAX_MASKS + i];

			if (i < nmasks)
				*slot = masks[i];
			else
				memset(slot, 0, sizeof(*slot));
			eb->mkey_cache[pipe_id * PF_MAX_MASKS + i] = mkeys[i];
		}
		eb->pipe_cached[pipe_id] = 1;
	} else if (!eb->pipe_cached[pipe_id]) {
		pipe_cache_fill(eb, pipe_id);   /* the masks come from the map */
	}
	eb->pipe_cache[pipe_id] = *pipe;
	pthread_mutex_unlock(&eb->pipe_lock);
}

int pf_ebpf_pipe_get(struct pf_ebpf *eb, uint32_t pipe_id, struct pf_pipe *pipe)
{
	int ret = 0;

	if (pipe_id >= PF_MAX_PIPES)
		return -ENOENT;
	pthread_mutex_lock(&eb->pipe_lock);
	if (!eb->pipe_cached[pipe_id])
		ret = pipe_cache_fill(eb, pipe_id);
	if (!ret)
		*pipe = eb->pipe_cache[pipe_id];
	pthread_mutex_unlock(&eb->pipe_lock);
	if (ret)
		return ret;
	return pipe->flags & PF_PIPE_IN_USE ? 0 : -ENOENT;
}

int pf_ebpf_mask_get(struct pf_ebpf *eb, uint32_t pipe_id, uint32_t mask_idx, struct pf_fields *mask)
{
	struct pf_pipe pipe;
	int ret;

	if (mask_idx >= PF_MAX_MASKS)
		return -ERANGE;
	ret = pf_ebpf_pipe_get(eb, pipe_id, &pipe);
	if (ret)
		return ret;
	pthread_mutex_lock(&eb->pipe_lock);
	*mask = eb->mask_cache[pipe_id * PF_MAX_MASKS + mask_idx];
	pthread_mutex_unlock(&eb->pipe_lock);
	return 0;
}

/* ---- exact/control keys: an element of port_entries, a packed pf_ckey, or the full pf_flow_key ---- */

/* How mask packs into a pf_ckey: PF_MASK_PACKED1 / PF_MASK_PACKED, or PF_MASK_WIDE (all zero) when it
 * touches more words. */
static void mask_key_build(const struct pf_fields *mask, struct pf_mask_key *mk)
{
	const uint32_t *m = (const uint32_t *)mask;
	uint32_t n = 0;

	memset(mk, 0, sizeof(*mk));
	for (uint32_t i = 0; i < PF_FIELD_WORDS; i++) {
		if (!m[i])
			continue;
		if (n == PF_CKEY_WORDS) {
			memset(mk, 0, sizeof(*mk));
			return;
		}
		mk->word[n] = (uint8_t)i;
		mk->mask[n++] = m[i];
	}
	mk->kind = n <= 1 ? PF_MASK_PACKED1 : PF_MASK_PACKED;
	mk->nwords = (uint8_t)n;
	mk->mpegts = mask->mpegts_frame != 0;
}

static int mask_is_port_only(const struct pf_fields *mask)
{
	const struct pf_fields port_only = { .port = UINT32_MAX };

	return !memcmp(mask, &port_only, sizeof(*mask));
}

/* After a re-adopt the pipes are read back on first use; block owners are known once all are. */
static void pipe_cache_all(struct pf_ebpf *eb)
{
	struct pf_pipe unused;

	for (uint32_t p = 0; p < PF_MAX_PIPES; p++)
		if (!eb->pipe_cached[p])
			pf_ebpf_pipe_get(eb, p, &unused);
}

/* A slot on meta.port alone is looked up in its own block of port_entries. A block stays
 * with the slot that took it (even while the slot's mask is another), so entries left in it
 * are never seen by another pipe; once all are taken, such slots are packed like any other. */
void pf_ebpf_mask_keys_plan(struct pf_ebpf *eb, uint32_t pipe_id, const struct pf_fields *masks, uint32_t nmasks,
			    struct pf_mask_key *mkeys)
{
	const struct pf_fields zero = { 0 };
	uint8_t taken[PF_PORT_BLOCKS + 1] = { 0 };

	pipe_cache_all(eb);
	pthread_mutex_lock(&eb->pipe_lock);
	for (uint32_t id = 0; id < PF_MAX_PIPES * PF_MAX_MASKS; id++)
		if (eb->mkey_cache[id].port_block <= PF_PORT_BLOCKS)
			taken[eb->mkey_cache[id].port_block] = 1;
	for (uint32_t i = 0; i < PF_MAX_MASKS; i++) {
		const struct pf_fields *mask = i < nmasks ? &masks[i] : &zero;
		uint8_t block = eb->mkey_cache[pipe_id * PF_MAX_MASKS + i].port_block;

		mask_key_build(mask, &mkeys[i]);
		if (mask_is_port_only(mask) && !block)
			for (uint8_t b = 1; b <= PF_PORT_BLOCKS && !block; b++)
				if (!taken[b])
					taken[block = b] = 1;
		mkeys[i].port_block = block;
		if (mask_is_port_only(mask) && block)
			mkeys[i].kind = PF_MASK_PORT;
	}
	pthread_mutex_unlock(&eb->pipe_lock);
}

static int is_packed(uint8_t mkind)
{
	return mkind == PF_MASK_PACKED || mkind == PF_MASK_PACKED1;
}

/* slot->flow_key is set: give it the key the datapath looks up (mkey_cache as the map has it) */
static int slot_key_encode(struct pf_ebpf *eb, struct pf_ebpf_slot *slot, struct pf_error *err)
{
	uint32_t id = slot->flow_key.pipe * PF_MAX_MASKS + slot->flow_key.mask_idx;
	const uint32_t *f = (const uint32_t *)&slot->flow_key.f;
	struct pf_mask_key mk;

	pthread_mutex_lock(&eb->pipe_lock);
	mk = eb->mkey_cache[id];
	pthread_mutex_unlock(&eb->pipe_lock);
	slot->mkind = mk.kind;
	memset(&slot->ckey, 0, sizeof(slot->ckey));
	if (mk.kind == PF_MASK_PORT) {
		if (slot->flow_key.f.port >= PF_MAX_PORTS || !mk.port_block || mk.port_block > PF_PORT_BLOCKS)
			return pf_err(err, -ERANGE, "entry for pipe %u: meta.port %u out of range (max %u)",
				      slot->flow_key.pipe, slot->flow_key.f.port, PF_MAX_PORTS - 1);
		slot->ckey.slot = (mk.port_block - 1) * PF_MAX_PORTS + slot->flow_key.f.port;
	} else if (is_packed(mk.kind)) {
		slot->ckey.slot = id;
		for (uint32_t j = 0; j < PF_CKEY_WORDS; j++)
			slot->ckey.w[j] = mk.word[j] < PF_FIELD_WORDS ? f[mk.word[j]] & mk.mask[j] : 0;
	}
	return 0;
}

/* The mask slot's key as pinned, back to a flow key; 0, or -ENOENT if the slot is not of that kind now. */
static int slot_key_decode(struct pf_ebpf *eb, uint32_t mask_id, uint8_t mkind, const uint32_t *words,
			   uint32_t port, struct pf_flow_key *fk)
{
	uint32_t pipe = mask_id / PF_MAX_MASKS, mask_idx = mask_id % PF_MAX_MASKS;
	uint32_t *f = (uint32_t *)&fk->f;
	struct pf_fields mask;
	struct pf_mask_key mk;

	if (pipe >= PF_MAX_PIPES || pf_ebpf_mask_get(eb, pipe, mask_idx, &mask))
		return -ENOENT;
	pthread_mutex_lock(&eb->pipe_lock);
	mk = eb->mkey_cache[mask_id];
	pthread_mutex_unlock(&eb->pipe_lock);
	if (mk.kind != mkind)
		return -ENOENT;
	memset(fk, 0, sizeof(*fk));
	fk->pipe = pipe;
	fk->mask_idx = mask_idx;
	if (mkind == PF_MASK_PORT)
		fk->f.port = port;
	for (uint32_t j = 0; is_packed(mkind) && j < mk.nwords && j < PF_CKEY_WORDS; j++)
		if (mk.word[j] < PF_FIELD_WORDS)
			f[mk.word[j]] = words[j];
	return 0;
}

/* The mask slot that owns block (1-based) of port_entries, or UINT32_MAX. */
static uint32_t port_block_owner(struct pf_ebpf *eb, uint32_t block)
{
	uint32_t owner = UINT32_MAX;

	pipe_cache_all(eb);
	pthread_mutex_lock(&eb->pipe_lock);
	for (uint32_t id = 0; id < PF_MAX_PIPES * PF_MAX_MASKS && owner == UINT32_MAX; id++)
		if (eb->mkey_cache[id].port_block == block)
			owner = id;
	pthread_mutex_unlock(&eb->pipe_lock);
	return owner;
}

/* A hash-pipe member owns the buckets [first, first + count) the compiler gave it, sized by its
 * weight, so every backend builds the same bucket table and a flow picks the same member on each.
 * A removed member leaves its buckets empty (they select nothing: the pipe's miss). */
static int hash_buckets_write(struct pf_ebpf *eb, const struct pf_ebpf_slot *s, uint32_t id, int clear,
			      struct pf_error *err)
{
	struct pf_entry val = { 0 }, cur;
	struct pf_pipe pipe;

	if (pf_ebpf_pipe_get(eb, s->pipe, &pipe))
		return pf_err(err, -ENOENT, "pipe %u is not defined", s->pipe);
	if (!clear) {
		val = s->entry;
		val.flags |= PF_ENTRY_BUCKET;
	}
	for (uint32_t b = s->buckets.first; b < s->buckets.first + s->buckets.count; b++) {
		uint32_t key = pipe.hash_slot * PF_HASH_BUCKETS + b;

		/* never empty a bucket that another member took over since */
		if (clear && !bpf_map_lookup_elem(eb->map_buckets, &key, &cur) && (cur.flags & PF_ENTRY_BUCKET) &&
		    cur.id != id)
			continue;
		if (bpf_map_update_elem(eb->map_buckets, &key, &val, BPF_ANY))
			return pf_err(err, -errno, "hash pipe %u: bucket %u: %s", s->pipe, b, strerror(errno));
	}
	return 0;
}

int pf_ebpf_fwd_check(const struct pf_fwd *fwd, const char *what, struct pf_error *err)
{
	if (fwd->type > PF_FWD_KERNEL)
		return pf_err(err, -EINVAL, "%s: unknown forward type %u", what, fwd->type);
	if (fwd->type == PF_FWD_PORT && fwd->target >= PF_MAX_PORTS)
		return pf_err(err, -ERANGE, "%s: port %u out of range (max %u)", what, fwd->target, PF_MAX_PORTS - 1);
	if (fwd->type == PF_FWD_PIPE && fwd->target >= PF_MAX_PIPES)
		return pf_err(err, -ERANGE, "%s: pipe %u out of range (max %u)", what, fwd->target, PF_MAX_PIPES - 1);
	if (fwd->type == PF_FWD_SESSION && fwd->target >= PF_MAX_SESSIONS)
		return pf_err(err, -ERANGE, "%s: session %u out of range (max %u)", what, fwd->target,
			      PF_MAX_SESSIONS - 1);
	return 0;
}

static void pf_lpm_match_from_key(const struct pf_lpm_key *key, uint16_t field, struct pf_fields *match)
{
	memset(match, 0, sizeof(*match));
	if (field == PF_LPM_IPV4_SRC)
		memcpy(&match->ipv4_src, key->addr, 4);
	else if (field == PF_LPM_IPV6_DST)
		memcpy(match->ipv6_dst, key->addr, 16);
	else if (field == PF_LPM_IPV6_SRC)
		memcpy(match->ipv6_src, key->addr, 16);
	else
		memcpy(&match->ipv4_dst, key->addr, 4);
}

static void lpm_key_from_match(const struct pf_fields *match, uint32_t pipe_id, uint16_t field, uint32_t prefixlen,
			       struct pf_lpm_key *key)
{
	uint32_t bits = (field == PF_LPM_IPV6_DST || field == PF_LPM_IPV6_SRC) ? 128 : 32;

	pf_lpm_key_build(match, pipe_id, field, key);
	/* bits past the prefix are zeroed so one prefix is one key */
	for (uint32_t i = 0; i < 16; i++) {
		uint32_t lo = i * 8;

		if (lo >= prefixlen || lo >= bits)
			key->addr[i] = 0;
		else if (prefixlen - lo < 8)
			key->addr[i] &= (uint8_t)(0xff << (8 - (prefixlen - lo)));
	}
	key->prefixlen = PF_LPM_PREFIX_BASE + prefixlen;
}

/* ---- key index: which id holds an exact/control key, known without a syscall ---- */

#define INDEX_END UINT32_MAX

static uint32_t key_bucket(const struct pf_ebpf *eb, const struct pf_flow_key *k)
{
	const uint8_t *p = (const uint8_t *)k;
	uint64_t h = 1469598103934665603ull, w;
	size_t i = 0;

	/* a word at a time: the key is ~100 bytes and hashed twice per new entry */
	for (; i + 8 <= sizeof(*k); i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 32;
	}
	for (; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return (uint32_t)(h ^ (h >> 29)) & eb->index_mask;
}

int pf_ebpf_index_alloc(struct pf_ebpf *eb)
{
	uint32_t n = 1;

	while (n < eb->max_entries && n < (1u << 31))
		n <<= 1;
	eb->index_head = malloc((size_t)n * sizeof(uint32_t));
	eb->index_next = malloc((size_t)eb->max_entries * sizeof(uint32_t));
	if (!eb->index_head || !eb->index_next)
		return -ENOMEM;
	memset(eb->index_head, 0xff, (size_t)n * sizeof(uint32_t));
	eb->index_mask = n - 1;
	return 0;
}

/* id of the entry with this key, or INDEX_END (eb->lock held) */
static uint32_t index_find(const struct pf_ebpf *eb, const struct pf_flow_key *k)
{
	for (uint32_t id = eb->index_head[key_bucket(eb, k)]; id != INDEX_END; id = eb->index_next[id])
		if (!memcmp(&eb->slots[id].flow_key, k, sizeof(*k)))
			return id;
	return INDEX_END;
}

/* slots[id] must already hold the key */
static void index_add(struct pf_ebpf *eb, uint32_t id)
{
	uint32_t b = key_bucket(eb, &eb->slots[id].flow_key);

	eb->index_next[id] = eb->index_head[b];
	eb->index_head[b] = id;
}

static void index_del(struct pf_ebpf *eb, uint32_t id)
{
	uint32_t *link = &eb->index_head[key_bucket(eb, &eb->slots[id].flow_key)];

	for (; *link != INDEX_END; link = &eb->index_next[*link])
		if (*link == id) {
			*link = eb->index_next[id];
			return;
		}
}

/* Check an entry and compute where it goes (slot->kind, key); no map is touched. */
static int entry_prepare(struct pf_ebpf *eb, uint32_t pipe_id, uint32_t mask_idx, uint32_t prefixlen,
			 const struct pf_fields *match, const struct pf_entry *entry, struct pf_ebpf_slot *slot,
			 struct pf_error *err)
{
	struct pf_pipe pipe;
	int ret;

	if (!match || !entry)
		return pf_err(err, -EINVAL, "entry for pipe %u: match and entry are required", pipe_id);
	if (pf_ebpf_pipe_get(eb, pipe_id, &pipe))
		return pf_err(err, -ENOENT, "entry for pipe %u: the pipe is not defined", pipe_id);
	ret = pf_ebpf_fwd_check(&entry->fwd, "entry forward", err);
	if (ret)
		return ret;
	if (entry->act.mpls_count > PF_MPLS_MAX)
		return pf_err(err, -ERANGE, "entry for pipe %u: %u MPLS labels, at most %u", pipe_id,
			      entry->act.mpls_count, PF_MPLS_MAX);
	if (entry->act.drop_pct > 100)
		return pf_err(err, -ERANGE, "entry for pipe %u: drop percentage %u, expected 0..100", pipe_id,
			      entry->act.drop_pct);

	memset(slot, 0, sizeof(*slot));
	slot->pipe = pipe_id;
	switch (pipe.type) {
	case PF_PIPE_BASIC:
	case PF_PIPE_CONTROL: {
		struct pf_fields mask;
		uint32_t nmasks = pipe.nmasks ? pipe.nmasks : 1;

		if (mask_idx >= nmasks)
			return pf_err(err, -ERANGE, "entry for pipe %u: mask slot %u, the pipe has %u", pipe_id,
				      mask_idx, nmasks);
		ret = pf_ebpf_mask_get(eb, pipe_id, mask_idx, &mask);
		if (ret)
			return pf_err(err, ret, "pipe %u: mask %u: %s", pipe_id, mask_idx, strerror(-ret));
		slot->kind = PF_EBPF_SLOT_HASH;
		slot->flow_key.pipe = pipe_id;
		slot->flow_key.mask_idx = mask_idx;
		pf_fields_and(match, &mask, &slot->flow_key.f);
		ret = slot_key_encode(eb, slot, err);
		if (ret)
			return ret;
		break;
	}
	case PF_PIPE_LPM: {
		uint32_t bits = (pipe.lpm_field == PF_LPM_IPV6_DST || pipe.lpm_field == PF_LPM_IPV6_SRC) ? 128 : 32;

		if (prefixlen > bits)
			return pf_err(err, -ERANGE, "entry for lpm pipe %u: prefix length %u, at most %u", pipe_id,
				      prefixlen, bits);
		slot->kind = PF_EBPF_SLOT_LPM;
		lpm_key_from_match(match, pipe_id, pipe.lpm_field, prefixlen, &slot->lpm_key);
		break;
	}
	case PF_PIPE_HASH: {
		uint32_t count = prefixlen ? prefixlen : 1;

		if (mask_idx >= PF_HASH_BUCKETS || count > PF_HASH_BUCKETS - mask_idx)
			return pf_err(err, -ERANGE, "entry for hash pipe %u: buckets %u..%u, the pipe has %u", pipe_id,
				      mask_idx, mask_idx + count - 1, PF_HASH_BUCKETS);
		slot->kind = PF_EBPF_SLOT_BUCKET;
		slot->buckets.first = mask_idx;
		slot->buckets.count = count;
		break;
	}
	default:
		return pf_err(err, -EINVAL, "pipe %u: unknown type %u", pipe_id, pipe.type);
	}
	return 0;
}

static int hash_table_fd(struct pf_ebpf *eb, uint8_t mkind)
{
	switch (mkind) {
	case PF_MASK_PORT:
		return eb->map_port_entries;
	case PF_MASK_PACKED:
		return eb->map_entries_c;
	case PF_MASK_PACKED1:
		return eb->map_entries_c1;
	default:
		return eb->map_entries;
	}
}

static int table_fd(struct pf_ebpf *eb, const struct pf_ebpf_slot *slot)
{
	if (slot->kind != PF_EBPF_SLOT_HASH)
		return eb->map_lpm;
	return hash_table_fd(eb, slot->mkind);
}

static const void *slot_key(const struct pf_ebpf_slot *slot)
{
	if (slot->kind != PF_EBPF_SLOT_HASH)
		return &slot->lpm_key;
	if (slot->mkind == PF_MASK_PORT)
		return &slot->ckey.slot;
	return is_packed(slot->mkind) ? (const void *)&slot->ckey : (const void *)&slot->flow_key;
}

static size_t hash_key_size(uint8_t mkind)
{
	if (mkind == PF_MASK_PACKED1)
		return 2 * sizeof(uint32_t);
	return mkind == PF_MASK_PACKED ? sizeof(struct pf_ckey) : sizeof(struct pf_flow_key);
}

static int is_port_slot(const struct pf_ebpf_slot *slot)
{
	return slot->kind == PF_EBPF_SLOT_HASH && slot->mkind == PF_MASK_PORT;
}

/* The slot's entry as in its table; port_entries elements not in use are ENOENT, like a hash. */
static int table_lookup(struct pf_ebpf *eb, const struct pf_ebpf_slot *slot, struct pf_entry *out)
{
	if (bpf_map_lookup_elem(table_fd(eb, slot), slot_key(slot), out))
		return -1;
	if (!is_port_slot(slot))
		return 0;
	if (!(out->flags & PF_ENTRY_BUCKET)) {
		errno = ENOENT;
		return -1;
	}
	out->flags &= ~PF_ENTRY_BUCKET;
	return 0;
}

/* bpf_map_update_elem on the slot's table, with BPF_NOEXIST / BPF_EXIST meaning the same for an array element */
static int table_update(struct pf_ebpf *eb, const struct pf_ebpf_slot *slot, const struct pf_entry *entry,
			uint64_t flags)
{
	struct pf_entry val, cur;
	int in_use;

	if (!is_port_slot(slot))
		return bpf_map_update_elem(table_fd(eb, slot), slot_key(slot), entry, flags);
	in_use = !table_lookup(eb, slot, &cur);
	if ((flags == BPF_NOEXIST && in_use) || (flags == BPF_EXIST && !in_use)) {
		errno = in_use ? EEXIST : ENOENT;
		return -1;
	}
	val = *entry;
	val.flags |= PF_ENTRY_BUCKET;
	return bpf_map_update_elem(eb->map_port_entries, slot_key(slot), &val, BPF_ANY);
}

static int table_delete(struct pf_ebpf *eb, const struct pf_ebpf_slot *slot)
{
	const struct pf_entry zero = { 0 };

	if (is_port_slot(slot))
		return bpf_map_update_elem(eb->map_port_entries, slot_key(slot), &zero, BPF_ANY);
	return bpf_map_delete_elem(table_fd(eb, slot), slot_key(slot));
}

static int is_table_full(int ret)
{
	return ret == -E2BIG || ret == -ENOMEM;
}

/* The key is in the table already: update it in place, keeping its id (eb->lock held).
 * For an LPM key, BPF_NOEXIST said the exact prefix exists, so the longest match is it. */
static int entry_update_existing(struct pf_ebpf *eb, struct pf_ebpf_slot *slot, struct pf_entry *entry,
				 struct pf_error *err)
{
	struct pf_entry old;

	if (table_lookup(eb, slot, &old) || old.id >= eb->max_entries)
		return pf_err(err, -EIO, "pipe %u: an entry with this key exists but cannot be read back", slot->pipe);
	entry->id = old.id;
	if (table_update(eb, slot, entry, BPF_EXIST))
		return pf_err(err, -errno, "pipe %u: cannot update entry %u: %s", slot->pipe, old.id, strerror(errno));
	if (slot->kind == PF_EBPF_SLOT_HASH && eb->slots[old.id].kind == PF_EBPF_SLOT_HASH)
		index_del(eb, old.id);
	slot->entry = *entry;
	eb->slots[old.id] = *slot;
	if (slot->kind == PF_EBPF_SLOT_HASH)
		index_add(eb, old.id);
	return 0;
}

/* Write one prepared entry (eb->lock held). New keys take one bpf() call: the
 * update itself with BPF_NOEXIST (plus two resets if the id was used before). */
static int entry_commit(struct pf_ebpf *eb, struct pf_ebpf_slot *slot, struct pf_entry *entry, struct pf_error *err)
{
	uint32_t id;
	int ret;

	if (slot->kind == PF_EBPF_SLOT_HASH && (id = index_find(eb, &slot->flow_key)) != INDEX_END) {
		/* the key exists: update in place, keeping its id */
		entry->id = id;
		if (table_update(eb, &eb->slots[id], entry, BPF_EXIST))
			return pf_err(err, -errno, "pipe %u: cannot update entry %u: %s", slot->pipe, id,
				      strerror(errno));
		eb->slots[id].entry = *entry;
		return 0;
	}
	ret = slot_alloc(eb, &id);
	if (ret)
		return pf_err(err, ret, "pipe %u: entry table full (%u entries)", slot->pipe, eb->max_entries);
	entry_counters_reset(eb, id);
	entry->id = id;
	if (slot->kind == PF_EBPF_SLOT_HASH || slot->kind == PF_EBPF_SLOT_LPM) {
		if (table_update(eb, slot, entry, BPF_NOEXIST)) {
			ret = -errno;
			if (ret == -EEXIST)
				return entry_update_existing(eb, slot, entry, err);
			return pf_err(err, ret, "pipe %u: cannot install entry: %s", slot->pipe,
				      is_table_full(ret) ? "entry table full" : strerror(-ret));
		}
	}
	slot->entry = *entry;
	eb->slots[id] = *slot;
	if (slot->kind == PF_EBPF_SLOT_HASH)
		index_add(eb, id);
	if (slot->kind == PF_EBPF_SLOT_BUCKET) {
		ret = hash_buckets_write(eb, slot, id, 0, err);
		if (ret) {
			eb->slots[id].kind = PF_EBPF_SLOT_FREE;
			hash_buckets_write(eb, slot, id, 1, NULL);
		}
	}
	return ret;
}

int pf_ebpf_entry_install(struct pf_ebpf *eb, uint32_t pipe_id, uint32_t mask_idx, uint32_t prefixlen,
			  const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err)
{
	struct pf_ebpf_slot slot;
	int ret = entry_prepare(eb, pipe_id, mask_idx, prefixlen, match, entry, &slot, err);

	if (ret)
		return ret;
	pthread_mutex_lock(&eb->lock);
	ret = entry_commit(eb, &slot, entry, err);
	pthread_mutex_unlock(&eb->lock);
	return ret;
}

/* ---- batched installs ---- */

#define RESET_CHUNK 256
#define INSTALL_BATCH_MAX 65536         /* entries per map write: bounds the scratch (~16 MB) */

/* Exact/control entries waiting for one bpf_map_update_batch, in request order, all for one
 * table (mkind). A new key has its id reserved and its key indexed as soon as it joins; an
 * existing key is marked reserved too, so a second request for either within the batch is
 * seen (and waits for the write). */
struct install_batch {
	uint32_t n, cap;
	uint8_t mkind;                  /* the table of every key in the batch */
	uint32_t *req;                  /* index into the caller's array */
	uint32_t *id;
	uint8_t *existed;               /* the key was installed before: an update in place */
	uint8_t *keys;                  /* packed at hash_key_size(mkind) */
	struct pf_entry *values;
};

static int batch_init(struct install_batch *b, uint32_t cap)
{
	size_t per = sizeof(uint32_t) * 2 + 1 + sizeof(struct pf_flow_key) + sizeof(struct pf_entry);
	char *mem;

	memset(b, 0, sizeof(*b));
	cap = cap ? cap : 1;
	mem = malloc((size_t)cap * per + 64);
	if (!mem)
		return -ENOMEM;
	/* the arrays of structs first, so each stays aligned */
	b->values = (struct pf_entry *)mem;
	b->keys = (uint8_t *)(b->values + cap);
	b->req = (uint32_t *)(b->keys + (size_t)cap * sizeof(struct pf_flow_key));
	b->id = b->req + cap;
	b->existed = (uint8_t *)(b->id + cap);
	b->cap = cap;
	return 0;
}

static void batch_free(struct install_batch *b)
{
	free(b->values);
}

/* Reset the counters of the dirty ids among ids[] in batched writes (eb->lock held). */
static void counters_reset_batch(struct pf_ebpf *eb, const uint32_t *ids, const uint8_t *skip, uint32_t n)
{
	size_t stride = pf_ebpf_percpu_stride(sizeof(struct pf_counter));
	uint32_t dirty[RESET_CHUNK], nd = 0, count;
	uint64_t never[RESET_CHUNK] = { 0 };
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	char *zeros = NULL;

	for (uint32_t i = 0; i <= n; i++) {
		if (i < n && !skip[i] && eb->id_dirty[ids[i]])
			dirty[nd++] = ids[i];
		if (nd < RESET_CHUNK && (i < n || !nd))
			continue;
		if (!zeros)
			zeros = calloc((size_t)RESET_CHUNK * eb->ncpus, stride);
		count = nd;
		if (zeros && !bpf_map_update_batch(eb->map_entry_counters, dirty, zeros, &count, &opts) && count == nd &&
		    !bpf_map_update_batch(eb->map_entry_seen, dirty, never, &count, &opts) && count == nd) {
			for (uint32_t k = 0; k < nd; k++)
				eb->id_dirty[dirty[k]] = 0;
		} else {
			for (uint32_t k = 0; k < nd; k++)      /* one by one, as the single path does */
				entry_counters_reset(eb, dirty[k]);
		}
		nd = 0;
	}
	free(zeros);
}

/* Queue a prepared exact/control entry whose key is not pending yet, for the batch's table (eb->lock held). */
static int batch_add(struct pf_ebpf *eb, struct install_batch *b, const struct pf_entry_req *r, uint32_t index,
		     const struct pf_ebpf_slot *slot, uint32_t id, struct pf_error *err)
{
	uint32_t k = b->n;
	size_t ksize = hash_key_size(slot->mkind);

	b->existed[k] = id != INDEX_END;
	if (id == INDEX_END) {
		if (slot_alloc(eb, &id))
			return pf_err(err, -ENOSPC, "pipe %u: entry table full (%u entries)", slot->pipe,
				      eb->max_entries);
		eb->slots[id] = *slot;
		index_add(eb, id);
	}
	eb->slots[id].kind = PF_EBPF_SLOT_RESERVED;
	b->mkind = slot->mkind;
	b->req[k] = index;
	b->id[k] = id;
	memcpy(b->keys + (size_t)k * ksize, slot_key(slot), ksize);
	b->values[k] = r->entry;
	b->values[k].id = id;
	b->n++;
	return 0;
}

/* Element i was not written: a new key gives its id back, an existing one stays as it was. */
static void batch_release(struct pf_ebpf *eb, struct install_batch *b, uint32_t i)
{
	if (b->existed[i]) {
		eb->slots[b->id[i]].kind = PF_EBPF_SLOT_HASH;
		return;
	}
	index_del(eb, b->id[i]);
	eb->slots[b->id[i]].kind = PF_EBPF_SLOT_FREE;
}

/* Write every pending entry with one bpf_map_update_batch. Returns 0, or the error of the entry
 * that failed (*failed = its index in reqs); the ones before it are written. eb->lock held. */
static int batch_flush(struct pf_ebpf *eb, struct install_batch *b, struct pf_entry_req *reqs, uint32_t *added,
		       uint32_t *failed, struct pf_error *err)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	int fd = hash_table_fd(eb, b->mkind);
	size_t ksize = hash_key_size(b->mkind);
	uint32_t done = 0;
	int ret = 0;

	if (!b->n)
		return 0;
	counters_reset_batch(eb, b->id, b->existed, b->n);
	while (done < b->n) {
		uint32_t count = b->n - done, i;
		int r = bpf_map_update_batch(fd, b->keys + done * ksize, &b->values[done], &count, &opts);

		if (r && (errno == EINVAL || errno == EOPNOTSUPP || errno == 524 /* ENOTSUPP */)) {
			/* refused as a whole (count not written back): this element on its own */
			r = bpf_map_update_elem(fd, b->keys + done * ksize, &b->values[done], BPF_ANY);
			count = r ? 0 : 1;
		} else if (count > 1) {
			__atomic_fetch_add(&eb->install_batches, 1, __ATOMIC_RELAXED);
		}
		r = r ? -errno : 0;
		for (i = done; i < done + count; i++) {
			struct pf_ebpf_slot *s = &eb->slots[b->id[i]];

			s->kind = PF_EBPF_SLOT_HASH;
			s->entry = b->values[i];
			reqs[b->req[i]].entry.id = b->id[i];
			reqs[b->req[i]].result = 0;
		}
		*added += count;
		done += count;
		if (!r || done >= b->n)
			continue;
		/* the kernel stopped at element i */
		i = done++;
		batch_release(eb, b, i);
		*failed = b->req[i];
		ret = pf_err(err, r, "pipe %u: cannot install entry: %s", eb->slots[b->id[i]].pipe,
			     is_table_full(r) ? "entry table full" : strerror(-r));
		break;
	}
	for (uint32_t i = done; i < b->n; i++)
		batch_release(eb, b, i);
	b->n = 0;
	return ret;
}

/* One pass: prepare each entry and queue the exact/control ones, written by one batched map update
 * per table (or before an entry that must go in order after them: a port_entries element, LPM,
 * hash-pipe member, a key already queued, an entry for another table). Same outcome as one
 * pf_ebpf_entry_install per entry, stopping at the first failure. */
int pf_ebpf_entry_install_batch(struct pf_ebpf *eb, struct pf_entry_req *reqs, uint32_t n, uint32_t *added,
				struct pf_error *err)
{
	struct install_batch b;
	uint32_t ok = 0, failed = UINT32_MAX;
	int ret = 0;

	if (added)
		*added = 0;
	for (uint32_t i = 0; i < n; i++)
		reqs[i].result = -ECANCELED;
	if (batch_init(&b, n < INSTALL_BATCH_MAX ? n : INSTALL_BATCH_MAX))
		return pf_err(err, -ENOMEM, "out of memory");
	pthread_mutex_lock(&eb->lock);
	for (uint32_t i = 0; i < n; i++) {
		struct pf_entry_req *r = &reqs[i];
		struct pf_ebpf_slot slot;
		uint32_t id = INDEX_END;

		ret = entry_prepare(eb, r->pipe, r->mask_idx, r->prefixlen, &r->match, &r->entry, &slot, err);
		if (ret) {
			/* what came before it is added, as with one call per entry */
			struct pf_error flush_err;
			int fret = batch_flush(eb, &b, reqs, &ok, &failed, &flush_err);

			if (fret) {
				ret = fret;
				if (err)
					*err = flush_err;
			} else {
				failed = i;
			}
			break;
		}
		/* port_entries elements are written one by one, in order */
		if (slot.kind == PF_EBPF_SLOT_HASH && slot.mkind != PF_MASK_PORT) {
			id = index_find(eb, &slot.flow_key);
			if (id == INDEX_END || eb->slots[id].kind == PF_EBPF_SLOT_HASH) {
				/* one batch writes one table */
				if (b.n && b.mkind != slot.mkind && (ret = batch_flush(eb, &b, reqs, &ok, &failed, err)))
					break;
				ret = batch_add(eb, &b, r, i, &slot, id, err);
				if (ret) {
					int fret = batch_flush(eb, &b, reqs, &ok, &failed, err);

					if (fret)
						ret = fret;
					else
						failed = i;
					break;
				}
				if (b.n == b.cap && (ret = batch_flush(eb, &b, reqs, &ok, &failed, err)))
					break;
				continue;
			}
		}
		/* a key queued earlier in this batch, a port element, LPM or hash-pipe member: in order */
		ret = batch_flush(eb, &b, reqs, &ok, &failed, err);
		if (ret)
			break;
		ret = entry_commit(eb, &slot, &r->entry, err);
		if (ret) {
			failed = i;
			break;
		}
		r->result = 0;
		ok++;
	}
	if (!ret)
		ret = batch_flush(eb, &b, reqs, &ok, &failed, err);
	pthread_mutex_unlock(&eb->lock);
	batch_free(&b);
	if (ret && failed < n) {
		reqs[failed].result = ret;
		pf_err_batch_index(err, failed, n);
	}
	if (added)
		*added = ok;
	return ret;
}

int pf_ebpf_entry_remove(struct pf_ebpf *eb, uint32_t entry_id, struct pf_error *err)
{
	struct pf_ebpf_slot *s;
	int ret = 0;

	if (entry_id >= eb->max_entries)
		return pf_err(err, -ENOENT, "entry %u does not exist", entry_id);
	pthread_mutex_lock(&eb->lock);
	s = &eb->slots[entry_id];
	switch (s->kind) {
	case PF_EBPF_SLOT_HASH:
		if (table_delete(eb, s) && errno != ENOENT)
			ret = -errno;
		if (!ret)
			index_del(eb, entry_id);
		break;
	case PF_EBPF_SLOT_LPM:
		if (bpf_map_delete_elem(eb->map_lpm, &s->lpm_key) && errno != ENOENT)
			ret = -errno;
		break;
	case PF_EBPF_SLOT_BUCKET:
		ret = hash_buckets_write(eb, s, entry_id, 1, err);
		break;
	default:
		pthread_mutex_unlock(&eb->lock);
		return pf_err(err, -ENOENT, "entry %u does not exist", entry_id);
	}
	if (!ret) {
		s->kind = PF_EBPF_SLOT_FREE;
		eb->id_dirty[entry_id] = 1;
	}
	pthread_mutex_unlock(&eb->lock);
	if (ret)
		return pf_err(err, ret, "entry %u: cannot remove: %s", entry_id, strerror(-ret));
	return 0;
}

uint64_t pf_ebpf_entry_last_seen(struct pf_ebpf *eb, uint32_t entry_id)
{
	uint64_t seen = 0;

	if (entry_id < eb->max_entries)
		bpf_map_lookup_elem(eb->map_entry_seen, &entry_id, &seen);
	return seen;
}

int pf_ebpf_entry_installed(struct pf_ebpf *eb, uint32_t pipe, const struct pf_fields *match, uint32_t entry_id)
{
	const struct pf_ebpf_slot *slot;
	int installed = 0;

	pthread_mutex_lock(&eb->lock);
	if (entry_id < eb->max_entries) {
		slot = &eb->slots[entry_id];
		installed = slot->kind == PF_EBPF_SLOT_HASH && slot->pipe == pipe &&
			    !memcmp(&slot->flow_key.f, match, sizeof(*match));
	}
	pthread_mutex_unlock(&eb->lock);
	return installed;
}

static void slot_adopt_hash(struct pf_ebpf *eb, const struct pf_entry *e, const struct pf_flow_key *fk, uint8_t mkind,
			    const struct pf_ckey *ck)
{
	struct pf_ebpf_slot *s = &eb->slots[e->id];

	s->kind = PF_EBPF_SLOT_HASH;
	s->mkind = mkind;
	s->pipe = fk->pipe;
	s->flow_key = *fk;
	if (ck)
		s->ckey = *ck;
	s->entry = *e;
	index_add(eb, e->id);
}

/* Rebuild the id allocator from pinned maps after a restart. */
void pf_ebpf_slots_adopt(struct pf_ebpf *eb)
{
	struct pf_flow_key fk, *prev_fk = NULL;
	struct pf_ckey ck, *prev_ck = NULL;
	struct pf_lpm_key lk, *prev_lk = NULL;
	struct pf_entry e;
	uint32_t n = 0, top = 0;

	for (uint32_t k = 0; k < 2; k++) {
		uint8_t kind = k ? PF_MASK_PACKED1 : PF_MASK_PACKED;
		int fd = hash_table_fd(eb, kind);

		prev_ck = NULL;
		memset(&ck, 0, sizeof(ck));
		while (!bpf_map_get_next_key(fd, prev_ck, &ck)) {
			struct pf_ckey cur = ck;        /* an 8-byte key leaves w[1..] as they were: zero */

			prev_ck = &ck;
			if (bpf_map_lookup_elem(fd, &cur, &e) || e.id >= eb->max_entries ||
			    slot_key_decode(eb, cur.slot, kind, cur.w, 0, &fk))
				continue;
			slot_adopt_hash(eb, &e, &fk, kind, &cur);
			top = e.id > top ? e.id : top;
			n++;
		}
	}
	for (uint32_t i = 0; i < PF_PORT_BLOCKS * PF_MAX_PORTS; i++) {
		uint32_t owner;

		if (bpf_map_lookup_elem(eb->map_port_entries, &i, &e) || !(e.flags & PF_ENTRY_BUCKET) ||
		    e.id >= eb->max_entries)
			continue;
		owner = port_block_owner(eb, i / PF_MAX_PORTS + 1);
		if (owner == UINT32_MAX || slot_key_decode(eb, owner, PF_MASK_PORT, NULL, i % PF_MAX_PORTS, &fk))
			continue;
		e.flags &= ~PF_ENTRY_BUCKET;
		ck = (struct pf_ckey){ .slot = i };
		slot_adopt_hash(eb, &e, &fk, PF_MASK_PORT, &ck);
		top = e.id > top ? e.id : top;
		n++;
	}
	while (!bpf_map_get_next_key(eb->map_entries, prev_fk, &fk)) {
		prev_fk = &fk;
		if (bpf_map_lookup_elem(eb->map_entries, &fk, &e) || e.id >= eb->max_entries)
			continue;
		slot_adopt_hash(eb, &e, &fk, PF_MASK_WIDE, NULL);
		top = e.id > top ? e.id : top;
		n++;
	}
	while (!bpf_map_get_next_key(eb->map_lpm, prev_lk, &lk)) {
		prev_lk = &lk;
		if (bpf_map_lookup_elem(eb->map_lpm, &lk, &e) || e.id >= eb->max_entries)
			continue;
		eb->slots[e.id].kind = PF_EBPF_SLOT_LPM;
		eb->slots[e.id].pipe = __builtin_bswap32(lk.pipe);
		eb->slots[e.id].lpm_key = lk;
		eb->slots[e.id].entry = e;
		top = e.id > top ? e.id : top;
		n++;
	}
	for (uint32_t p = 0; p < PF_MAX_PIPES; p++) {
		struct pf_pipe pipe;

		if (pf_ebpf_pipe_get(eb, p, &pipe) || pipe.type != PF_PIPE_HASH)
			continue;
		for (uint32_t b = 0; b < PF_HASH_BUCKETS; b++) {
			uint32_t key = pipe.hash_slot * PF_HASH_BUCKETS + b;

			if (bpf_map_lookup_elem(eb->map_buckets, &key, &e) || !(e.flags & PF_ENTRY_BUCKET) ||
			    e.id >= eb->max_entries)
				continue;
			if (eb->slots[e.id].kind == PF_EBPF_SLOT_BUCKET && eb->slots[e.id].pipe == p) {
				eb->slots[e.id].buckets.count = b - eb->slots[e.id].buckets.first + 1;
				continue;
			}
			if (eb->slots[e.id].kind != PF_EBPF_SLOT_FREE)
				continue;
			eb->slots[e.id].kind = PF_EBPF_SLOT_BUCKET;
			eb->slots[e.id].pipe = p;
			eb->slots[e.id].buckets.first = b;
			eb->slots[e.id].buckets.count = 1;
			e.flags &= ~PF_ENTRY_BUCKET;
			eb->slots[e.id].entry = e;
			top = e.id > top ? e.id : top;
			n++;
		}
	}
	eb->next_id = n ? (top + 1) % eb->max_entries : 0;
	pf_info("%s: re-adopted %u entries from %s", eb->inst->name, n, eb->pin_dir);
}



/* pf_entry_replace: the id keeps its counters and last-seen stamp; only its key and value change. */
int pf_ebpf_entry_replace(pf_instance *inst, uint32_t id, uint32_t pipe_id, uint32_t mask_idx,
			      uint32_t prefixlen, const struct pf_fields *match, struct pf_entry *entry,
			      struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);
	struct pf_ebpf_slot slot, *cur;
	int same, ret = entry_prepare(eb, pipe_id, mask_idx, prefixlen, match, entry, &slot, err);

	if (ret)
		return ret;
	if (id >= eb->max_entries)
		return pf_err(err, -ERANGE, "entry id %u out of range (max %u)", id, eb->max_entries - 1);
	pthread_mutex_lock(&eb->lock);
	cur = &eb->slots[id];
	if (cur->kind == PF_EBPF_SLOT_FREE || cur->kind == PF_EBPF_SLOT_RESERVED) {
		ret = pf_err(err, -ENOENT, "entry %u does not exist", id);
	} else if (cur->pipe != pipe_id || cur->kind != slot.kind) {
		ret = pf_err(err, -EINVAL, "entry %u: a replacement stays in the entry's pipe (%u)", id, cur->pipe);
	} else if (slot.kind == PF_EBPF_SLOT_BUCKET) {
		ret = pf_err(err, -EINVAL, "entry %u: hash-pipe members are replaced through the config", id);
	}
	if (ret)
		goto out;
	entry->id = id;
	if (slot.kind == PF_EBPF_SLOT_HASH)
		same = slot.mkind == cur->mkind && !memcmp(&slot.flow_key, &cur->flow_key, sizeof(slot.flow_key));
	else
		same = !memcmp(&slot.lpm_key, &cur->lpm_key, sizeof(slot.lpm_key));
	if (same) {
		if (table_update(eb, &slot, entry, BPF_EXIST))
			ret = pf_err(err, -errno, "pipe %u: cannot update entry %u: %s", pipe_id, id, strerror(errno));
		else
			cur->entry = *entry;
		goto out;
	}
	/* a new match: write the new key first, so the flow is never without an entry, then drop the old */
	if (table_update(eb, &slot, entry, BPF_NOEXIST)) {
		ret = -errno;
		if (ret == -EEXIST)
			pf_err(err, ret, "entry %u: another entry already has this match in pipe %u", id, pipe_id);
		else
			pf_err(err, ret, "pipe %u: cannot install entry %u: %s", pipe_id, id,
			       is_table_full(ret) ? "entry table full" : strerror(-ret));
		goto out;
	}
	if (table_delete(eb, cur) && errno != ENOENT)
		pf_warn("pipe %u: entry %u: the old match stays until removed: %s", pipe_id, id, strerror(errno));
	if (cur->kind == PF_EBPF_SLOT_HASH)
		index_del(eb, id);
	slot.entry = *entry;
	*cur = slot;
	if (slot.kind == PF_EBPF_SLOT_HASH)
		index_add(eb, id);
out:
	pthread_mutex_unlock(&eb->lock);
	return ret;
}

int pf_ebpf_entry_list(pf_instance *inst, uint32_t pipe_id, struct pf_entry_info *out, uint32_t max,
			   uint32_t *count, struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);
	uint32_t n = 0;

	pthread_mutex_lock(&eb->lock);
	for (uint32_t id = 0; id < eb->max_entries && n < max; id++) {
		struct pf_ebpf_slot *s = &eb->slots[id];
		struct pf_entry_info *info = &out[n];

		if (s->kind == PF_EBPF_SLOT_FREE || (pipe_id != UINT32_MAX && s->pipe != pipe_id))
			continue;
		memset(info, 0, sizeof(*info));
		info->pipe = s->pipe;
		info->entry = s->entry;
		if (s->kind == PF_EBPF_SLOT_HASH) {
			if (table_lookup(eb, s, &info->entry))
				continue;
			info->mask_idx = s->flow_key.mask_idx;
			info->match = s->flow_key.f;
		} else if (s->kind == PF_EBPF_SLOT_LPM) {
			struct pf_pipe pipe;

			if (bpf_map_lookup_elem(eb->map_lpm, &s->lpm_key, &info->entry))
				continue;
			info->prefixlen = s->lpm_key.prefixlen - PF_LPM_PREFIX_BASE;
			if (!pf_ebpf_pipe_get(eb, s->pipe, &pipe))
				pf_lpm_match_from_key(&s->lpm_key, pipe.lpm_field, &info->match);
		} else if (s->kind == PF_EBPF_SLOT_BUCKET) {
			info->mask_idx = s->buckets.first;
			info->prefixlen = s->buckets.count;
		}
		info->last_seen_ns = pf_ebpf_entry_last_seen(eb, id);
		n++;
	}
	pthread_mutex_unlock(&eb->lock);
	*count = n;
	return 0;
}

/* The table of an exact/control entry and its key there, for the plan (plan.c) */
int pf_ebpf_table_fd(struct pf_ebpf *eb, uint8_t mkind)
{
	return hash_table_fd(eb, mkind);
}

size_t pf_ebpf_table_key_size(uint8_t mkind)
{
	return mkind == PF_MASK_PORT ? sizeof(uint32_t) : hash_key_size(mkind);
}

const void *pf_ebpf_slot_key(const struct pf_ebpf_slot *slot)
{
	return slot_key(slot);
}

/* entry_prepare for the plan (plan.c): the same checks and key, no map touched */
int pf_ebpf_entry_encode(struct pf_ebpf *eb, uint32_t pipe_id, uint32_t mask_idx, uint32_t prefixlen,
			 const struct pf_fields *match, const struct pf_entry *entry, struct pf_ebpf_slot *slot,
			 struct pf_error *err)
{
	return entry_prepare(eb, pipe_id, mask_idx, prefixlen, match, entry, slot, err);
}
