// SPDX-License-Identifier: BSD-2-Clause
/*
 * The ebpf backend: load datapath.bpf.o with libbpf, pin or re-adopt its maps
 * under <pin_root>/<name>/, keep the maps in step with the model, attach XDP
 * to the bound ports, read per-CPU counters, run frames with BPF_PROG_RUN.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "ebpf/ebpf.h"
#include "pyflow/packet.h"
#include "miss/ebpf_miss.h"

#define DATAPATH_OBJ "datapath.bpf.o"
#define DATAPATH_PROG "pf_xdp_root"
#define REPLICATE_OBJ "tc_replicate.bpf.o"
/* our clsact filters: a fixed handle/priority so stop removes exactly them */
#define TC_HANDLE 0x7066
#define TC_PRIORITY 0x7066
#define DEFAULT_PIN_ROOT "/sys/fs/bpf/pyflow"

static struct pf_ebpf *eb_of(pf_instance *inst)
{
	return inst->priv;
}

struct pf_ebpf *pf_ebpf_from_instance(pf_instance *inst)
{
	return inst && inst->ops == &pf_backend_ebpf ? inst->priv : NULL;
}

/* ---- libbpf's messages go to the one log path, under --sdk-log-level ---- */

static int libbpf_to_pf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	int pf_level = level == LIBBPF_WARN ? PF_LOG_WARNING : level == LIBBPF_INFO ? PF_LOG_INFO : PF_LOG_DEBUG;
	char buf[1024];
	size_t n;

	if (!pf_log_sdk_enabled(pf_level))
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = 0;
	if (n)
		pf_log_sdk(pf_level, "libbpf: %s", buf);
	return 0;
}

static pthread_once_t libbpf_print_once = PTHREAD_ONCE_INIT;

static void libbpf_print_setup(void)
{
	libbpf_set_print(libbpf_to_pf_log);
}

/* ---- per-CPU values ---- */

static size_t percpu_stride(size_t value_size)
{
	return (value_size + 7) & ~(size_t)7;
}

/* Sum ncpus copies of a struct made only of uint64_t fields. */
static int percpu_sum_u64(struct pf_ebpf *eb, int fd, uint32_t key, void *out, size_t size)
{
	size_t stride = percpu_stride(size);
	char *vals;
	int ret;

	vals = calloc(eb->ncpus, stride);
	if (!vals)
		return -ENOMEM;
	ret = bpf_map_lookup_elem(fd, &key, vals);
	if (ret) {
		ret = -errno;
		free(vals);
		return ret;
	}
	memset(out, 0, size);
	for (int cpu = 0; cpu < eb->ncpus; cpu++)
		pf_u64_add(out, vals + cpu * stride, size);
	free(vals);
	return 0;
}

static int percpu_fill(struct pf_ebpf *eb, int fd, uint32_t key, const void *value, size_t size)
{
	size_t stride = percpu_stride(size);
	char *vals;
	int ret;

	vals = calloc(eb->ncpus, stride);
	if (!vals)
		return -ENOMEM;
	for (int cpu = 0; cpu < eb->ncpus; cpu++)
		memcpy(vals + cpu * stride, value, size);
	ret = bpf_map_update_elem(fd, &key, vals, BPF_ANY) ? -errno : 0;
	free(vals);
	return ret;
}

static int map_fd(struct pf_ebpf *eb, const char *name, struct pf_error *err)
{
	struct bpf_map *m = bpf_object__find_map_by_name(eb->obj, name);
	int fd = m ? bpf_map__fd(m) : -1;

	if (fd < 0)
		return pf_err(err, -ENOENT, "%s: map '%s' missing from " DATAPATH_OBJ, eb->inst->name, name);
	return fd;
}

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
	if (!percpu_fill(eb, eb->map_entry_counters, id, &zero, sizeof(zero)) &&
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
	}
	eb->pipe_cache[pipe_id] = pipe;
	eb->pipe_cached[pipe_id] = 1;
	return 0;
}

/* After a pipe's definition was written to the maps: keep the cache in step.
 * masks == NULL: only the definition changed (hash buckets). */
static void pipe_cache_store(struct pf_ebpf *eb, uint32_t pipe_id, const struct pf_pipe *pipe,
			     const struct pf_fields *masks, uint32_t nmasks)
{
	pthread_mutex_lock(&eb->pipe_lock);
	if (masks) {
		for (uint32_t i = 0; i < PF_MAX_MASKS; i++) {
			struct pf_fields *slot = &eb->mask_cache[pipe_id * PF_MAX_MASKS + i];

			if (i < nmasks)
				*slot = masks[i];
			else
				memset(slot, 0, sizeof(*slot));
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

static int fwd_check(const struct pf_fwd *fwd, const char *what, struct pf_error *err)
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
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return (uint32_t)(h ^ (h >> 29)) & eb->index_mask;
}

static int index_alloc(struct pf_ebpf *eb)
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
	ret = fwd_check(&entry->fwd, "entry forward", err);
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

static int table_fd(struct pf_ebpf *eb, const struct pf_ebpf_slot *slot)
{
	return slot->kind == PF_EBPF_SLOT_HASH ? eb->map_entries : eb->map_lpm;
}

static const void *slot_key(const struct pf_ebpf_slot *slot)
{
	return slot->kind == PF_EBPF_SLOT_HASH ? (const void *)&slot->flow_key : (const void *)&slot->lpm_key;
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
	int fd = table_fd(eb, slot);

	if (bpf_map_lookup_elem(fd, slot_key(slot), &old) || old.id >= eb->max_entries)
		return pf_err(err, -EIO, "pipe %u: an entry with this key exists but cannot be read back", slot->pipe);
	entry->id = old.id;
	if (bpf_map_update_elem(fd, slot_key(slot), entry, BPF_EXIST))
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
		if (bpf_map_update_elem(eb->map_entries, &slot->flow_key, entry, BPF_EXIST))
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
		if (bpf_map_update_elem(table_fd(eb, slot), slot_key(slot), entry, BPF_NOEXIST)) {
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

#define INSTALL_BATCH_MAX 256

/* New exact/control entries waiting for one bpf_map_update_batch. Their ids are
 * reserved and their keys indexed as soon as they join, so a second request for
 * the same key within the batch is seen (and waits for the write). */
struct install_batch {
	uint32_t n;
	uint32_t req[INSTALL_BATCH_MAX];                /* index into the caller's array */
	uint32_t id[INSTALL_BATCH_MAX];
	struct pf_ebpf_slot slot[INSTALL_BATCH_MAX];
	struct pf_flow_key keys[INSTALL_BATCH_MAX];
	struct pf_entry values[INSTALL_BATCH_MAX];
};

/* Reset the counters of the dirty ids among ids[] in two batched writes (eb->lock held). */
static void counters_reset_batch(struct pf_ebpf *eb, const uint32_t *ids, uint32_t n)
{
	size_t stride = percpu_stride(sizeof(struct pf_counter));
	uint32_t dirty[INSTALL_BATCH_MAX], nd = 0, count;
	uint64_t never[INSTALL_BATCH_MAX] = { 0 };
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	char *zeros;

	for (uint32_t i = 0; i < n; i++)
		if (eb->id_dirty[ids[i]])
			dirty[nd++] = ids[i];
	if (!nd)
		return;
	zeros = calloc((size_t)nd * eb->ncpus, stride);
	count = nd;
	if (zeros && !bpf_map_update_batch(eb->map_entry_counters, dirty, zeros, &count, &opts) && count == nd &&
	    !bpf_map_update_batch(eb->map_entry_seen, dirty, never, &count, &opts) && count == nd) {
		for (uint32_t i = 0; i < nd; i++)
			eb->id_dirty[dirty[i]] = 0;
	} else {
		for (uint32_t i = 0; i < nd; i++)      /* one by one, as the single path does */
			entry_counters_reset(eb, dirty[i]);
	}
	free(zeros);
}

static int batch_add(struct pf_ebpf *eb, struct install_batch *b, struct pf_entry_req *r, uint32_t index,
		     const struct pf_ebpf_slot *slot, struct pf_error *err)
{
	uint32_t id;

	if (slot_alloc(eb, &id))
		return pf_err(err, -ENOSPC, "pipe %u: entry table full (%u entries)", slot->pipe, eb->max_entries);
	eb->slots[id] = *slot;
	eb->slots[id].kind = PF_EBPF_SLOT_RESERVED;
	index_add(eb, id);
	b->req[b->n] = index;
	b->id[b->n] = id;
	b->slot[b->n] = *slot;
	b->keys[b->n] = slot->flow_key;
	b->values[b->n] = r->entry;
	b->values[b->n].id = id;
	b->n++;
	return 0;
}

static void batch_release(struct pf_ebpf *eb, struct install_batch *b, uint32_t i)
{
	index_del(eb, b->id[i]);
	eb->slots[b->id[i]].kind = PF_EBPF_SLOT_FREE;
}

/* Write the pending entries, new keys all, with bpf_map_update_batch. Returns 0, or
 * the error of the entry that failed (*failed = its index in reqs). eb->lock held. */
static int batch_flush(struct pf_ebpf *eb, struct install_batch *b, struct pf_entry_req *reqs, uint32_t *added,
		       uint32_t *failed, struct pf_error *err)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	uint32_t done = 0;
	int ret = 0;

	counters_reset_batch(eb, b->id, b->n);
	while (done < b->n) {
		uint32_t count = b->n - done, i;
		int r = bpf_map_update_batch(eb->map_entries, &b->keys[done], &b->values[done], &count, &opts);

		if (r && (errno == EINVAL || errno == EOPNOTSUPP || errno == 524 /* ENOTSUPP */)) {
			/* refused as a whole (count not written back): this element on its own */
			r = bpf_map_update_elem(eb->map_entries, &b->keys[done], &b->values[done], BPF_NOEXIST);
			count = r ? 0 : 1;
		} else if (count > 1) {
			__atomic_fetch_add(&eb->install_batches, 1, __ATOMIC_RELAXED);
		}
		r = r ? -errno : 0;
		for (i = done; i < done + count; i++) {
			b->slot[i].entry = b->values[i];
			eb->slots[b->id[i]].kind = PF_EBPF_SLOT_HASH;
			eb->slots[b->id[i]].entry = b->values[i];
			reqs[b->req[i]].entry = b->values[i];
			reqs[b->req[i]].result = 0;
			(*added)++;
		}
		done += count;
		if (!r || done >= b->n)
			continue;
		/* the kernel stopped at element i */
		i = done++;
		batch_release(eb, b, i);
		*failed = b->req[i];
		ret = pf_err(err, r, "pipe %u: cannot install entry: %s", b->slot[i].pipe,
			     is_table_full(r) ? "entry table full" : strerror(-r));
		break;
	}
	for (uint32_t i = done; i < b->n; i++)
		batch_release(eb, b, i);
	b->n = 0;
	return ret;
}

int pf_ebpf_entry_install_batch(struct pf_ebpf *eb, struct pf_entry_req *reqs, uint32_t n, uint32_t *added,
				struct pf_error *err)
{
	struct install_batch *b = malloc(sizeof(*b));
	uint32_t ok = 0, failed = UINT32_MAX;
	int ret = 0;

	if (added)
		*added = 0;
	if (!b)
		return pf_err(err, -ENOMEM, "out of memory");
	b->n = 0;
	for (uint32_t i = 0; i < n; i++)
		reqs[i].result = -ECANCELED;
	pthread_mutex_lock(&eb->lock);
	for (uint32_t i = 0; i < n; i++) {
		struct pf_entry_req *r = &reqs[i];
		struct pf_ebpf_slot slot;
		uint32_t id;

		ret = entry_prepare(eb, r->pipe, r->mask_idx, r->prefixlen, &r->match, &r->entry, &slot, err);
		if (!ret && slot.kind == PF_EBPF_SLOT_HASH &&
		    (id = index_find(eb, &slot.flow_key)) == INDEX_END) {
			ret = batch_add(eb, b, r, i, &slot, err);
			if (!ret) {
				if (b->n == INSTALL_BATCH_MAX && (ret = batch_flush(eb, b, reqs, &ok, &failed, err)))
					break;
				continue;
			}
		}
		if (ret) {
			/* what came before it is added, as with one call per entry */
			failed = i;
			if (b->n) {
				struct pf_error flush_err;
				int fret = batch_flush(eb, b, reqs, &ok, &failed, &flush_err);

				if (fret) {
					ret = fret;
					if (err)
						*err = flush_err;
				}
			}
			break;
		}
		/* an existing key (perhaps earlier in this batch), LPM or hash-pipe member: in order */
		ret = batch_flush(eb, b, reqs, &ok, &failed, err);
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
		ret = batch_flush(eb, b, reqs, &ok, &failed, err);
	else if (b->n)
		for (uint32_t i = 0; i < b->n; i++)     /* never written */
			batch_release(eb, b, i);
	pthread_mutex_unlock(&eb->lock);
	free(b);
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
		if (bpf_map_delete_elem(eb->map_entries, &s->flow_key) && errno != ENOENT)
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

/* Rebuild the id allocator from pinned maps after a restart. */
static void slots_adopt(struct pf_ebpf *eb)
{
	struct pf_flow_key fk, *prev_fk = NULL;
	struct pf_lpm_key lk, *prev_lk = NULL;
	struct pf_entry e;
	uint32_t n = 0, top = 0;

	while (!bpf_map_get_next_key(eb->map_entries, prev_fk, &fk)) {
		prev_fk = &fk;
		if (bpf_map_lookup_elem(eb->map_entries, &fk, &e) || e.id >= eb->max_entries)
			continue;
		eb->slots[e.id].kind = PF_EBPF_SLOT_HASH;
		eb->slots[e.id].pipe = fk.pipe;
		eb->slots[e.id].flow_key = fk;
		eb->slots[e.id].entry = e;
		index_add(eb, e.id);
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

static void ports_adopt(struct pf_ebpf *eb)
{
	for (uint32_t id = 0; id < PF_MAX_PORTS; id++) {
		struct pf_port port;

		if (bpf_map_lookup_elem(eb->map_ports, &id, &port) || !(port.flags & PF_PORT_IN_USE))
			continue;
		eb->ports[id].in_use = 1;
		eb->ports[id].ifindex = port.ifindex;
		if (!if_indextoname(port.ifindex, eb->ports[id].ifname))
			snprintf(eb->ports[id].ifname, sizeof(eb->ports[id].ifname), "ifindex %u", port.ifindex);
	}
}

/* ---- backend ops ---- */

static void ebpf_free(struct pf_ebpf *eb)
{
	if (!eb)
		return;
	pf_ebpf_capture_release(eb);    /* its thread reads the maps */
	pf_ebpf_miss_free(eb);          /* threads joined and XSKMAP slots cleared while the maps are open */
	bpf_object__close(eb->tc_obj);
	bpf_object__close(eb->obj);
	free(eb->slots);
	free(eb->id_dirty);
	free(eb->index_head);
	free(eb->index_next);
	pthread_mutex_destroy(&eb->lock);
	pthread_mutex_destroy(&eb->pipe_lock);
	free(eb);
}

static const char *const sized_maps[] = { "entries", "lpm", "entry_counters", "entry_seen" };

/* The TC clone programs run on the XDP object's maps: hand every map fd over before loading. */
static int replicate_load(struct pf_ebpf *eb, const char *obj_dir, struct pf_error *err)
{
	struct bpf_program *in, *out;
	struct bpf_map *map;
	char path[PATH_MAX];
	int ret;

	snprintf(path, sizeof(path), "%s/%s", obj_dir, REPLICATE_OBJ);
	eb->tc_obj = bpf_object__open_file(path, NULL);
	if (!eb->tc_obj) {
		ret = -errno;
		return pf_err(err, ret, "cannot open %s: %s", path, strerror(-ret));
	}
	bpf_object__for_each_map(map, eb->tc_obj) {
		struct bpf_map *same;

		if (bpf_map__is_internal(map))
			continue;
		same = bpf_object__find_map_by_name(eb->obj, bpf_map__name(map));
		if (!same || bpf_map__fd(same) < 0 || bpf_map__reuse_fd(map, bpf_map__fd(same)))
			return pf_err(err, -ENOENT, "%s: map '%s' of " REPLICATE_OBJ " is not in " DATAPATH_OBJ,
				      eb->inst->name, bpf_map__name(map));
	}
	ret = bpf_object__load(eb->tc_obj);
	if (ret)
		return pf_err(err, ret, "%s: cannot load %s: %s; run with log level DEBUG for the verifier log",
			      eb->inst->name, REPLICATE_OBJ, strerror(-ret));
	in = bpf_object__find_program_by_name(eb->tc_obj, "pf_tc_ingress");
	out = bpf_object__find_program_by_name(eb->tc_obj, "pf_tc_egress");
	eb->tc_ingress_fd = in ? bpf_program__fd(in) : -1;
	eb->tc_egress_fd = out ? bpf_program__fd(out) : -1;
	if (eb->tc_ingress_fd < 0 || eb->tc_egress_fd < 0)
		return pf_err(err, -ENOENT, "%s: programs missing from " REPLICATE_OBJ, eb->inst->name);
	return 0;
}

static int ebpf_load(pf_instance *inst, const struct pf_instance_opts *opts, const char *pin_root,
		     struct pf_error *err)
{
	struct pf_ebpf *eb;
	struct bpf_map *map;
	char path[PATH_MAX];
	int ret;

	eb = calloc(1, sizeof(*eb));
	if (!eb)
		return pf_err(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&eb->lock, NULL);
	pthread_mutex_init(&eb->pipe_lock, NULL);
	eb->inst = inst;
	eb->prog_fd = -1;
	eb->flags = opts->flags;
	eb->miss_threads = opts->miss_threads;
	eb->xdp_mode_req = opts->xdp_mode;
	eb->max_entries = opts->max_entries ? opts->max_entries : PF_DEFAULT_MAX_ENTRIES;
	eb->nqueues = 1;
	snprintf(eb->pin_dir, sizeof(eb->pin_dir), "%s/%s", pin_root, inst->name);
	eb->ncpus = libbpf_num_possible_cpus();
	if (eb->ncpus <= 0) {
		ebpf_free(eb);
		return pf_err(err, -EIO, "cannot count possible CPUs");
	}
	eb->slots = calloc(eb->max_entries, sizeof(*eb->slots));
	eb->id_dirty = calloc(eb->max_entries, 1);
	if (!eb->slots || !eb->id_dirty || index_alloc(eb)) {
		ebpf_free(eb);
		return pf_err(err, -ENOMEM, "%s: out of memory for %u entries", inst->name, eb->max_entries);
	}

	snprintf(path, sizeof(path), "%s/%s", opts->obj_dir, DATAPATH_OBJ);
	eb->obj = bpf_object__open_file(path, NULL);
	if (!eb->obj) {
		ret = -errno;
		eb->obj = NULL;
		ebpf_free(eb);
		return pf_err(err, ret, "cannot open %s: %s", path, strerror(-ret));
	}
	for (size_t i = 0; i < sizeof(sized_maps) / sizeof(sized_maps[0]); i++) {
		map = bpf_object__find_map_by_name(eb->obj, sized_maps[i]);
		if (map)
			bpf_map__set_max_entries(map, eb->max_entries);
	}

	if (!(eb->flags & PF_INST_NO_PIN)) {
		snprintf(path, sizeof(path), "%s/config", eb->pin_dir);
		eb->adopted = access(path, F_OK) == 0;
		bpf_object__for_each_map(map, eb->obj) {
			if (bpf_map__is_internal(map))
				continue;
			snprintf(path, sizeof(path), "%s/%s", eb->pin_dir, bpf_map__name(map));
			bpf_map__set_pin_path(map, path);
			/* the kernel adds BPF_F_RDONLY_PROG to every DEVMAP, so libbpf 1.1's
			 * compatibility check refuses its pin: reuse it explicitly */
			if (eb->adopted && bpf_map__type(map) == BPF_MAP_TYPE_DEVMAP) {
				int pinned = bpf_obj_get(path);

				if (pinned >= 0) {
					bpf_map__reuse_fd(map, pinned);
					close(pinned);
				}
			}
		}
	}

	ret = bpf_object__load(eb->obj);
	if (ret) {
		ebpf_free(eb);
		if (ret == -EINVAL && !(opts->flags & (PF_INST_NO_PIN | PF_INST_FRESH)))
			return pf_err(err, ret, "%s: cannot load the datapath: pinned state in %s does not match "
				      "(changed max_entries or an older build?); start fresh to replace it",
				      inst->name, pin_root);
		return pf_err(err, ret, "%s: cannot load the datapath (%s): %s; run with log level DEBUG for the "
			      "verifier log", inst->name, DATAPATH_OBJ, strerror(-ret));
	}
	eb->prog = bpf_object__find_program_by_name(eb->obj, DATAPATH_PROG);
	eb->prog_fd = eb->prog ? bpf_program__fd(eb->prog) : -1;
	if (eb->prog_fd < 0) {
		ebpf_free(eb);
		return pf_err(err, -ENOENT, "%s: program " DATAPATH_PROG " missing from " DATAPATH_OBJ, inst->name);
	}

#define MAP_FD(field, name)                                  \
	do {                                                 \
		if ((eb->field = map_fd(eb, name, err)) < 0) { \
			ret = eb->field;                     \
			ebpf_free(eb);                       \
			return ret;                          \
		}                                            \
	} while (0)
	MAP_FD(map_config, "config");
	MAP_FD(map_pipes, "pipes");
	MAP_FD(map_pipe_masks, "pipe_masks");
	MAP_FD(map_entries, "entries");
	MAP_FD(map_lpm, "lpm");
	MAP_FD(map_buckets, "hash_buckets");
	MAP_FD(map_ports, "ports");
	MAP_FD(map_ifindex, "ifindex_port");
	MAP_FD(map_tx, "tx_ports");
	MAP_FD(map_xsks, "xsks");
	MAP_FD(map_entry_counters, "entry_counters");
	MAP_FD(map_entry_seen, "entry_seen");
	MAP_FD(map_pipe_counters, "pipe_counters");
	MAP_FD(map_port_counters, "port_counters");
	MAP_FD(map_verdict, "verdict");
	MAP_FD(map_sessions, "sessions");
	MAP_FD(map_group_ports, "group_ports");
#undef MAP_FD

	ret = replicate_load(eb, opts->obj_dir, err);
	if (ret) {
		ebpf_free(eb);
		return ret;
	}

	if (!(eb->flags & PF_INST_NO_PIN)) {
		/* the program too, so bpftool shows what runs on the ports */
		snprintf(path, sizeof(path), "%s/prog", eb->pin_dir);
		unlink(path);
		if (bpf_program__pin(eb->prog, path))
			pf_warn("%s: cannot pin the program at %s: %s", inst->name, path, strerror(errno));
	}

	if (eb->adopted) {
		struct pf_config cfg;
		uint32_t zero = 0;

		if (!bpf_map_lookup_elem(eb->map_config, &zero, &cfg) && cfg.nqueues)
			eb->nqueues = cfg.nqueues;
		/* pinned counters may hold values of entries deleted before the restart */
		memset(eb->id_dirty, 1, eb->max_entries);
		ports_adopt(eb);
		slots_adopt(eb);
	} else {
		struct pf_config cfg = { .nqueues = eb->nqueues };
		uint32_t zero = 0;

		bpf_map_update_elem(eb->map_config, &zero, &cfg, BPF_ANY);
	}
	inst->priv = eb;
	pf_debug("%s: datapath loaded (%u entries, pins %s)", inst->name, eb->max_entries,
		 eb->flags & PF_INST_NO_PIN ? "none" : eb->pin_dir);
	return 0;
}

static int ebpf_open(pf_instance *inst, const struct pf_instance_opts *opts, struct pf_error *err)
{
	const char *pin_root = opts->pin_root && *opts->pin_root ? opts->pin_root : DEFAULT_PIN_ROOT;
	char pin_dir[sizeof(((struct pf_ebpf *)0)->pin_dir)];
	int created = 0, ret;

	pthread_once(&libbpf_print_once, libbpf_print_setup);
	if (!opts->obj_dir || !*opts->obj_dir)
		return pf_err(err, -EINVAL, "%s: obj_dir (directory of " DATAPATH_OBJ ") is required", inst->name);
	if (opts->xdp_mode > PF_XDP_HW)
		return pf_err(err, -EINVAL, "%s: xdp mode %u unknown (expected auto, driver, generic or hw)",
			      inst->name, opts->xdp_mode);
	if (strchr(inst->name, '/') || !strcmp(inst->name, ".") || !strcmp(inst->name, ".."))
		return pf_err(err, -EINVAL, "instance name '%s': expected a plain name (no '/')", inst->name);
	if ((size_t)snprintf(pin_dir, sizeof(pin_dir), "%s/%s", pin_root, inst->name) >= sizeof(pin_dir))
		return pf_err(err, -ENAMETOOLONG, "pin root %s: path too long for instance %s", pin_root, inst->name);
	if (!(opts->flags & PF_INST_NO_PIN)) {
		if (opts->flags & PF_INST_FRESH)
			pf_ebpf_pins_remove(pin_dir);
		ret = pf_ebpf_pins_prepare(pin_root, pin_dir, &created, err);
		if (ret)
			return ret;
	}
	ret = ebpf_load(inst, opts, pin_root, err);
	/* a failed first load leaves nothing behind; an adopted pin dir is left as it was */
	if (ret && created)
		pf_ebpf_pins_remove(pin_dir);
	return ret;
}

static void tc_attach_port(struct pf_ebpf *eb, uint32_t id);

static uint8_t xdp_mode_of_flags(uint32_t flags)
{
	return flags == XDP_FLAGS_SKB_MODE ? PF_XDP_GENERIC : flags == XDP_FLAGS_HW_MODE ? PF_XDP_HW
	       : flags == XDP_FLAGS_DRV_MODE ? PF_XDP_DRIVER : 0;
}

/* xdp-tools' names: native (driver), skb (generic), hw (offload) */
static const char *xdp_mode_name(uint8_t mode)
{
	return mode == PF_XDP_GENERIC ? "generic" : mode == PF_XDP_HW ? "offload" : "native";
}

static int attach_port(struct pf_ebpf *eb, uint32_t id, struct pf_error *err)
{
	struct pf_ebpf_port *p = &eb->ports[id];
	uint32_t mode = eb->xdp_mode_req, flags;
	int ret;

	if (mode == PF_XDP_GENERIC)
		flags = XDP_FLAGS_SKB_MODE;
	else if (mode == PF_XDP_HW)
		flags = XDP_FLAGS_HW_MODE;
	else
		flags = XDP_FLAGS_DRV_MODE;
	ret = bpf_xdp_attach(p->ifindex, eb->prog_fd, flags, NULL);
	if (ret && mode == PF_XDP_AUTO) {
		char why[128];

		snprintf(why, sizeof(why), "%s: native mode refused (%s), using generic", p->ifname, strerror(-ret));
		pf_warn("%s: port %u %s", eb->inst->name, id, why);
		if (!eb->mode_reason[0])
			snprintf(eb->mode_reason, sizeof(eb->mode_reason), "%s", why);
		flags = XDP_FLAGS_SKB_MODE;
		ret = bpf_xdp_attach(p->ifindex, eb->prog_fd, flags, NULL);
	}
	if (ret)
		return pf_err(err, ret, "port %u (%s): cannot attach XDP in %s mode: %s", id, p->ifname,
			      xdp_mode_name(xdp_mode_of_flags(flags)), strerror(-ret));
	eb->attach_flags[id] = flags;
	tc_attach_port(eb, id);
	/* the instance reports the weakest mode any port got */
	if (flags == XDP_FLAGS_SKB_MODE)
		eb->xdp_mode = PF_XDP_GENERIC;
	else if (eb->xdp_mode != PF_XDP_GENERIC)
		eb->xdp_mode = flags == XDP_FLAGS_HW_MODE ? PF_XDP_HW : PF_XDP_DRIVER;
	pf_info("%s: port %u (%s): XDP attached in %s mode", eb->inst->name, id, p->ifname,
		xdp_mode_name(xdp_mode_of_flags(flags)));
	return 0;
}

/* clsact ingress + egress filters for clone sessions. A port where they cannot
 * be added still forwards; only cloning through it is lost (said once). */
static void tc_attach_port(struct pf_ebpf *eb, uint32_t id)
{
	struct pf_ebpf_port *p = &eb->ports[id];
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = p->ifindex, .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE, .priority = TC_PRIORITY, .flags = BPF_TC_F_REPLACE);
	int ret;

	if (eb->tc_attached[id])
		return;
	ret = bpf_tc_hook_create(&hook);
	if (ret && ret != -EEXIST) {
		pf_warn("%s: port %u (%s): no clsact qdisc (%s): clone sessions cannot use this port", eb->inst->name,
			id, p->ifname, strerror(-ret));
		return;
	}
	eb->tc_hook_created[id] = ret == 0;
	hook.attach_point = BPF_TC_INGRESS;
	opts.prog_fd = eb->tc_ingress_fd;
	ret = bpf_tc_attach(&hook, &opts);
	if (!ret) {
		hook.attach_point = BPF_TC_EGRESS;
		opts.prog_fd = eb->tc_egress_fd;
		opts.prog_id = 0;
		ret = bpf_tc_attach(&hook, &opts);
	}
	if (ret)
		pf_warn("%s: port %u (%s): cannot attach the clone programs to clsact (%s)", eb->inst->name, id,
			p->ifname, strerror(-ret));
	eb->tc_attached[id] = 1;
}

static void tc_detach_port(struct pf_ebpf *eb, uint32_t id)
{
	struct pf_ebpf_port *p = &eb->ports[id];
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = p->ifindex);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE, .priority = TC_PRIORITY);

	if (!eb->tc_attached[id])
		return;
	if (eb->tc_hook_created[id]) {
		/* the qdisc is ours: removing it removes both filters */
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
	} else {
		hook.attach_point = BPF_TC_INGRESS;
		bpf_tc_detach(&hook, &opts);
		hook.attach_point = BPF_TC_EGRESS;
		bpf_tc_detach(&hook, &opts);
	}
	eb->tc_attached[id] = 0;
	eb->tc_hook_created[id] = 0;
}

static void detach_port(struct pf_ebpf *eb, uint32_t id)
{
	struct pf_ebpf_port *p = &eb->ports[id];
	LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = eb->prog_fd);
	int ret;

	tc_detach_port(eb, id);
	if (!eb->attach_flags[id])
		return;
	/* only our program: never take down something that replaced it */
	ret = bpf_xdp_detach(p->ifindex, eb->attach_flags[id] | XDP_FLAGS_REPLACE, &opts);
	if (ret && ret != -ENODEV)
		pf_warn("%s: port %u (%s): detach: %s", eb->inst->name, id, p->ifname, strerror(-ret));
	eb->attach_flags[id] = 0;
}

static int ebpf_stop(pf_instance *inst, struct pf_error *err)
{
	struct pf_ebpf *eb = eb_of(inst);

	if (!eb->started)
		return 0;
	pf_ebpf_miss_stop(eb);
	if (eb->flags & PF_INST_KEEP_DATAPATH) {
		/* hand the attached programs over to the next run, which re-adopts the pins */
		memset(eb->attach_flags, 0, sizeof(eb->attach_flags));
		memset(eb->tc_attached, 0, sizeof(eb->tc_attached));
		pf_info("%s: datapath kept attached (pins in %s)", eb->inst->name, eb->pin_dir);
	} else {
		for (uint32_t id = 0; id < PF_MAX_PORTS; id++)
			detach_port(eb, id);
	}
	eb->started = 0;
	return 0;
}

static int ebpf_start(pf_instance *inst, struct pf_error *err)
{
	struct pf_ebpf *eb = eb_of(inst);
	int ret;

	if (eb->started)
		return 0;
	eb->mode_reason[0] = 0;
	eb->xdp_mode = 0;
	for (uint32_t id = 0; id < PF_MAX_PORTS; id++) {
		if (!eb->ports[id].in_use)
			continue;
		ret = attach_port(eb, id, err);
		if (ret) {
			for (uint32_t j = 0; j < id; j++)
				detach_port(eb, j);
			return ret;
		}
	}
	eb->started = 1;
	for (uint32_t id = 0; id < PF_MAX_PORTS; id++) {
		char why[512];

		if (eb->ports[id].in_use && pf_ebpf_veth_peer_check(eb->ports[id].ifname, why, sizeof(why)) == 1)
			pf_warn("port %u: %s", id, why);
	}
	ret = pf_ebpf_miss_start(eb, err);
	if (ret) {
		ebpf_stop(inst, NULL);
		return ret;
	}
	return 0;
}

static void ebpf_close(pf_instance *inst)
{
	struct pf_ebpf *eb = eb_of(inst);

	if (!eb)
		return;
	ebpf_stop(inst, NULL);
	ebpf_free(eb);
	inst->priv = NULL;
}

static int ebpf_destroy(pf_instance *inst, struct pf_error *err)
{
	struct pf_ebpf *eb = eb_of(inst);

	eb->flags &= ~PF_INST_KEEP_DATAPATH;  /* destroy means gone: nothing stays attached */
	ebpf_stop(inst, err);
	if (!(eb->flags & PF_INST_NO_PIN))
		pf_ebpf_pins_remove(eb->pin_dir);
	return 0;
}

static int ebpf_info(pf_instance *inst, struct pf_instance_info *info, struct pf_error *err)
{
	struct pf_ebpf *eb = eb_of(inst);

	memset(info, 0, sizeof(*info));
	info->adopted = eb->adopted;
	info->xdp_mode = eb->xdp_mode;
	snprintf(info->mode_reason, sizeof(info->mode_reason), "%s", eb->mode_reason);
	for (uint32_t id = 0; id < PF_MAX_PORTS; id++)
		info->port_xdp_mode[id] = xdp_mode_of_flags(eb->attach_flags[id]);
	return 0;
}

uint32_t pf_ebpf_rx_queue_count(const char *ifname)
{
	char path[PATH_MAX];
	struct dirent *de;
	uint32_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/sys/class/net/%s/queues", ifname);
	d = opendir(path);
	if (!d)
		return 1;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "rx-", 3))
			n++;
	closedir(d);
	return n ? n : 1;
}

static int ebpf_port_set(pf_instance *inst, uint32_t port_id, const char *binding, const struct pf_port *port,
			 struct pf_error *err)
{
	struct pf_ebpf *eb = eb_of(inst);
	struct pf_ebpf_port *p = &eb->ports[port_id];
	struct bpf_devmap_val tx = { 0 };
	struct pf_port val = { 0 };
	uint32_t ifindex, nq, zero = 0;
	struct pf_config cfg;
	int ret;

	if (!binding || !*binding)
		return pf_err(err, -EINVAL, "port %u: no interface given (expected an interface name)", port_id);
	ifindex = if_nametoindex(binding);
	if (!ifindex)
		return pf_err(err, -ENODEV, "port %u: interface '%s' does not exist", port_id, binding);
	if (port && (port->flags & PF_PORT_EGRESS_PIPE) && port->egress_pipe >= PF_MAX_PIPES)
		return pf_err(err, -ERANGE, "port %u: egress pipe %u out of range", port_id, port->egress_pipe);
	for (uint32_t other = 0; other < PF_MAX_PORTS; other++)
		if (other != port_id && eb->ports[other].in_use && eb->ports[other].ifindex == ifindex)
			return pf_err(err, -EEXIST, "port %u: interface '%s' is already port %u", port_id, binding,
				      other);
	if (p->in_use && p->ifindex != ifindex) {
		if (eb->started)
			detach_port(eb, port_id);
		bpf_map_delete_elem(eb->map_ifindex, &p->ifindex);
	}
	val.ifindex = ifindex;
	val.flags = (port ? port->flags : 0) | PF_PORT_IN_USE;
	val.egress_pipe = port ? port->egress_pipe : 0;
	tx.ifindex = ifindex;
	if (bpf_map_update_elem(eb->map_tx, &port_id, &tx, BPF_ANY))
		/* e.g. lo: frames can still arrive and be counted, not be sent there */
		pf_warn("port %u (%s): XDP cannot transmit to this interface (%s); forwarding to it will drop",
			port_id, binding, strerror(errno));
	if (bpf_map_update_elem(eb->map_ports, &port_id, &val, BPF_ANY) ||
	    bpf_map_update_elem(eb->map_ifindex, &ifindex, &port_id, BPF_ANY))
		return pf_err(err, -errno, "port %u (%s): %s", port_id, binding, strerror(errno));
	p->in_use = 1;
	p->ifindex = ifindex;
	snprintf(p->ifname, sizeof(p->ifname), "%s", binding);

	nq = pf_ebpf_rx_queue_count(binding);
	if (nq > eb->nqueues)
		eb->nqueues = nq > PF_MAX_QUEUES ? PF_MAX_QUEUES : nq;
	if (!bpf_map_lookup_elem(eb->map_config, &zero, &cfg)) {
		cfg.nqueues = eb->nqueues;
		bpf_map_update_elem(eb->map_config, &zero, &cfg, BPF_ANY);
	}
	if (eb->started && !eb->attach_flags[port_id]) {
		ret = attach_port(eb, port_id, err);
		if (ret)
			return ret;
	}
	return 0;
}

static int ebpf_pipe_set(pf_instance *inst, uint32_t pipe_id, const struct pf_pipe *pipe,
			 const struct pf_fields *masks, uint32_t nmasks, struct pf_error *err)
{
	struct pf_ebpf *eb = eb_of(inst);
	struct pf_pipe val, old;
	int ret, had = !pf_ebpf_pipe_get(eb, pipe_id, &old);

	if (!pipe)
		return pf_err(err, -EINVAL, "pipe %u: no definition given", pipe_id);
	if (pipe->type > PF_PIPE_HASH)
		return pf_err(err, -EINVAL, "pipe %u: unknown type %u (expected basic, control, lpm or hash)", pipe_id,
			      pipe->type);
	if (pipe->type == PF_PIPE_LPM && pipe->lpm_field > PF_LPM_IPV6_SRC)
		return pf_err(err, -EINVAL, "pipe %u: unknown lpm field %u", pipe_id, pipe->lpm_field);
	if ((pipe->type == PF_PIPE_BASIC || pipe->type == PF_PIPE_CONTROL) && nmasks == 0)
		return pf_err(err, -EINVAL, "pipe %u: a %s pipe needs at least one mask", pipe_id,
			      pipe->type == PF_PIPE_BASIC ? "basic" : "control");
	if (pipe->type == PF_PIPE_BASIC && nmasks > 1)
		return pf_err(err, -EINVAL, "pipe %u: a basic pipe has one mask, got %u", pipe_id, nmasks);
	if ((ret = fwd_check(&pipe->fwd, "pipe forward", err)) || (ret = fwd_check(&pipe->fwd_miss, "pipe forward on miss", err)))
		return ret;
	val = *pipe;
	val.flags |= PF_PIPE_IN_USE;
	val.nmasks = nmasks;
	if (pipe->type == PF_PIPE_HASH) {
		/* keep the bucket block across redefinitions, else take the first free one */
		if (pipe->nbuckets > PF_HASH_BUCKETS)
			return pf_err(err, -ERANGE, "hash pipe %u: %u buckets, at most %u", pipe_id, pipe->nbuckets,
				      PF_HASH_BUCKETS);
		if (had && old.type == PF_PIPE_HASH) {
			val.hash_slot = old.hash_slot;
		} else {
			uint8_t used[PF_MAX_HASH_PIPES] = { 0 };
			uint32_t slot = PF_MAX_HASH_PIPES;

			for (uint32_t p = 0; p < PF_MAX_PIPES; p++) {
				struct pf_pipe other;

				if (p != pipe_id && !pf_ebpf_pipe_get(eb, p, &other) && other.type == PF_PIPE_HASH &&
				    other.hash_slot < PF_MAX_HASH_PIPES)
					used[other.hash_slot] = 1;
			}
			for (uint32_t s = 0; s < PF_MAX_HASH_PIPES; s++)
				if (!used[s]) {
					slot = s;
					break;
				}
			if (slot == PF_MAX_HASH_PIPES)
				return pf_err(err, -ENOSPC, "pipe %u: at most %u hash pipes", pipe_id,
					      PF_MAX_HASH_PIPES);
			val.hash_slot = slot;
		}
	} else {
		val.hash_slot = 0;
		val.nbuckets = 0;
	}
	/* masks before the pipe, so a lookup never sees a pipe without them */
	for (uint32_t i = 0; i < PF_MAX_MASKS; i++) {
		struct pf_fields zero = { 0 };
		uint32_t key = pipe_id * PF_MAX_MASKS + i;

		if (bpf_map_update_elem(eb->map_pipe_masks, &key, i < nmasks ? &masks[i] : &zero, BPF_ANY))
			return pf_err(err, -errno, "pipe %u: mask %u: %s", pipe_id, i, strerror(errno));
	}
	if (bpf_map_update_elem(eb->map_pipes, &pipe_id, &val, BPF_ANY))
		return pf_err(err, -errno, "pipe %u: %s", pipe_id, strerror(errno));
	pipe_cache_store(eb, pipe_id, &val, masks, nmasks);
	return 0;
}

static int ebpf_root_set(pf_instance *inst, uint32_t pipe_id, struct pf_error *err)
{
	struct pf_ebpf *eb = eb_of(inst);
	struct pf_config cfg;
	struct pf_pipe pipe;
	uint32_t zero = 0;

	if (pf_ebpf_pipe_get(eb, pipe_id, &pipe))
		return pf_err(err, -ENOENT, "root pipe %u is not defined", pipe_id);
	if (bpf_map_lookup_elem(eb->map_config, &zero, &cfg))
		memset(&cfg, 0, sizeof(cfg));
	cfg.root_pipe = pipe_id;
	cfg.flags |= PF_CFG_ROOT_SET;
	cfg.nqueues = eb->nqueues;
	if (bpf_map_update_elem(eb->map_config, &zero, &cfg, BPF_ANY))
		return pf_err(err, -errno, "root pipe %u: %s", pipe_id, strerror(errno));
	return 0;
}

/* The session's member ports as a fresh DEVMAP_HASH, swapped into group_ports
 * in one update so a flood never sees a half-built group. */
static int group_ports_set(struct pf_ebpf *eb, uint32_t session_id, const struct pf_session *s, struct pf_error *err)
{
	int inner, ret = 0;

	inner = bpf_map_create(BPF_MAP_TYPE_DEVMAP_HASH, "pf_group", sizeof(uint32_t), sizeof(struct bpf_devmap_val),
			       PF_MAX_SESSION_MEMBERS, NULL);
	if (inner < 0)
		return pf_err(err, -errno, "session %u: cannot create its port group: %s", session_id,
			      strerror(errno));
	for (uint32_t i = 0; i < s->nmembers; i++) {
		const struct pf_session_member *m = &s->members[i];
		struct bpf_devmap_val val = { 0 };

		if (!m->in_use)
			continue;
		if (!eb->ports[m->port].in_use) {
			ret = pf_err(err, -ENODEV, "session %u: member %u: port %u is not bound", session_id, i, m->port);
			break;
		}
		val.ifindex = eb->ports[m->port].ifindex;
		if (bpf_map_update_elem(inner, &m->port, &val, BPF_ANY)) {
			ret = pf_err(err, -errno, "session %u: member port %u: %s", session_id, m->port, strerror(errno));
			break;
		}
	}
	if (!ret && bpf_map_update_elem(eb->map_group_ports, &session_id, &inner, BPF_ANY))
		ret = pf_err(err, -errno, "session %u: %s", session_id, strerror(errno));
	close(inner);           /* the outer map holds it now */
	return ret;
}

static int ebpf_session_set(pf_instance *inst, uint32_t session_id, const struct pf_session *s,
			    struct pf_error *err)
{
	struct pf_ebpf *eb = eb_of(inst);
	int ret;

	if (!s || s->nmembers > PF_MAX_SESSION_MEMBERS)
		return pf_err(err, -ERANGE, "session %u: %u members, at most %u", session_id, s ? s->nmembers : 0,
			      PF_MAX_SESSION_MEMBERS);
	for (uint32_t i = 0; i < s->nmembers; i++)
		if (s->members[i].port >= PF_MAX_PORTS)
			return pf_err(err, -ERANGE, "session %u: member %u: port %u out of range", session_id, i,
				      s->members[i].port);
	ret = group_ports_set(eb, session_id, s, err);
	if (ret)
		return ret;
	if (bpf_map_update_elem(eb->map_sessions, &session_id, s, BPF_ANY))
		return pf_err(err, -errno, "session %u: %s", session_id, strerror(errno));
	return 0;
}

static int ebpf_entry_add(pf_instance *inst, uint32_t pipe_id, uint32_t mask_idx, uint32_t prefixlen,
			  const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err)
{
	return pf_ebpf_entry_install(eb_of(inst), pipe_id, mask_idx, prefixlen, match, entry, err);
}

/* pf_entry_replace: the id keeps its counters and last-seen stamp; only its key and value change. */
static int ebpf_entry_replace(pf_instance *inst, uint32_t id, uint32_t pipe_id, uint32_t mask_idx,
			      uint32_t prefixlen, const struct pf_fields *match, struct pf_entry *entry,
			      struct pf_error *err)
{
	struct pf_ebpf *eb = eb_of(inst);
	struct pf_ebpf_slot slot, *cur;
	size_t key_size;
	int ret = entry_prepare(eb, pipe_id, mask_idx, prefixlen, match, entry, &slot, err);

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
	key_size = slot.kind == PF_EBPF_SLOT_HASH ? sizeof(slot.flow_key) : sizeof(slot.lpm_key);
	if (!memcmp(slot_key(&slot), slot_key(cur), key_size)) {
		if (bpf_map_update_elem(table_fd(eb, &slot), slot_key(&slot), entry, BPF_EXIST))
			ret = pf_err(err, -errno, "pipe %u: cannot update entry %u: %s", pipe_id, id, strerror(errno));
		else
			cur->entry = *entry;
		goto out;
	}
	/* a new match: write the new key first, so the flow is never without an entry, then drop the old */
	if (bpf_map_update_elem(table_fd(eb, &slot), slot_key(&slot), entry, BPF_NOEXIST)) {
		ret = -errno;
		if (ret == -EEXIST)
			pf_err(err, ret, "entry %u: another entry already has this match in pipe %u", id, pipe_id);
		else
			pf_err(err, ret, "pipe %u: cannot install entry %u: %s", pipe_id, id,
			       is_table_full(ret) ? "entry table full" : strerror(-ret));
		goto out;
	}
	if (bpf_map_delete_elem(table_fd(eb, cur), slot_key(cur)) && errno != ENOENT)
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

static int ebpf_entry_add_batch(pf_instance *inst, struct pf_entry_req *reqs, uint32_t n, uint32_t *added,
				struct pf_error *err)
{
	return pf_ebpf_entry_install_batch(eb_of(inst), reqs, n, added, err);
}

static int ebpf_entry_del(pf_instance *inst, uint32_t entry_id, struct pf_error *err)
{
	return pf_ebpf_entry_remove(eb_of(inst), entry_id, err);
}

/* pipe_id == UINT32_MAX lists every pipe. *count = entries written. */
static int ebpf_entry_list(pf_instance *inst, uint32_t pipe_id, struct pf_entry_info *out, uint32_t max,
			   uint32_t *count, struct pf_error *err)
{
	struct pf_ebpf *eb = eb_of(inst);
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
			if (bpf_map_lookup_elem(eb->map_entries, &s->flow_key, &info->entry))
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

static int ebpf_learn_set(pf_instance *inst, const struct pf_learn *policy, struct pf_error *err)
{
	return pf_ebpf_miss_set_policy(eb_of(inst), policy, err);
}

static int ebpf_miss_stats(pf_instance *inst, struct pf_miss_stats *out, struct pf_error *err)
{
	pf_ebpf_miss_stats(eb_of(inst), out);
	return 0;
}

static int ebpf_counters_entries(pf_instance *inst, const uint32_t *ids, uint32_t n, struct pf_counter *out,
				 struct pf_error *err)
{
	struct pf_ebpf *eb = eb_of(inst);
	int ret;

	for (uint32_t i = 0; i < n; i++) {
		if (ids[i] >= eb->max_entries) {
			memset(&out[i], 0, sizeof(out[i]));
			continue;
		}
		ret = percpu_sum_u64(eb, eb->map_entry_counters, ids[i], &out[i], sizeof(out[i]));
		if (ret)
			return pf_err(err, ret, "entry %u counters: %s", ids[i], strerror(-ret));
	}
	return 0;
}

/* The summed counters of one pipe or port ("what" names it in errors). */
static int counters_read(struct pf_ebpf *eb, int fd, const char *what, uint32_t id, uint32_t max, void *out,
			 size_t size, struct pf_error *err)
{
	int ret;

	if (id >= max)
		return pf_err(err, -ERANGE, "%s id %u out of range", what, id);
	ret = percpu_sum_u64(eb, fd, id, out, size);
	return ret ? pf_err(err, ret, "%s %u counters: %s", what, id, strerror(-ret)) : 0;
}

static int ebpf_counters_pipe(pf_instance *inst, uint32_t pipe_id, struct pf_pipe_counter *out,
			      struct pf_error *err)
{
	struct pf_ebpf *eb = eb_of(inst);

	return counters_read(eb, eb->map_pipe_counters, "pipe", pipe_id, PF_MAX_PIPES, out, sizeof(*out), err);
}

static int ebpf_counters_port(pf_instance *inst, uint32_t port_id, struct pf_port_counter *out,
			      struct pf_error *err)
{
	struct pf_ebpf *eb = eb_of(inst);

	return counters_read(eb, eb->map_port_counters, "port", port_id, PF_MAX_PORTS, out, sizeof(*out), err);
}

/* Run on one CPU so that CPU's slot of the per-CPU verdict is the one to read. */
static int ebpf_test_run(pf_instance *inst, uint32_t in_port, const void *frame, uint32_t len, void *out,
			 uint32_t out_cap, struct pf_test_result *res, struct pf_error *err)
{
	struct pf_ebpf *eb = eb_of(inst);
	struct xdp_md ctx = { 0 };
	struct pf_verdict unset = { .kind = UINT32_MAX, .entry_id = UINT32_MAX };
	size_t stride = percpu_stride(sizeof(struct pf_verdict));
	cpu_set_t old_set, one;
	char *verdicts, *scratch = NULL;
	uint32_t zero = 0;
	int cpu, ret;
	LIBBPF_OPTS(bpf_test_run_opts, opts);

	if (in_port >= PF_MAX_PORTS || !eb->ports[in_port].in_use)
		return pf_err(err, -ENODEV, "test run: port %u is not bound to an interface", in_port);
	if (!frame || len < 14)
		return pf_err(err, -EINVAL, "test run: frame of %u bytes, BPF_PROG_RUN needs at least 14 bytes", len);
	verdicts = calloc(eb->ncpus, stride);
	if (!out || !out_cap) {
		out_cap = len + 256;
		out = scratch = malloc(out_cap);
	}
	if (!verdicts || !out) {
		free(verdicts);
		free(scratch);
		return pf_err(err, -ENOMEM, "out of memory");
	}
	percpu_fill(eb, eb->map_verdict, 0, &unset, sizeof(unset));

	ctx.data_end = len;
	ctx.ingress_ifindex = eb->ports[in_port].ifindex;
	opts.data_in = frame;
	opts.data_size_in = len;
	opts.data_out = out;
	opts.data_size_out = out_cap;
	opts.ctx_in = &ctx;
	opts.ctx_size_in = sizeof(ctx);

	sched_getaffinity(0, sizeof(old_set), &old_set);
	cpu = sched_getcpu();
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	sched_setaffinity(0, sizeof(one), &one);
	ret = bpf_prog_test_run_opts(eb->prog_fd, &opts);
	if (ret)
		ret = -errno;
	cpu = sched_getcpu();
	sched_setaffinity(0, sizeof(old_set), &old_set);
	if (ret) {
		free(verdicts);
		free(scratch);
		return pf_err(err, ret, "test run on port %u: %s", in_port, strerror(-ret));
	}
	memset(res, 0, sizeof(*res));
	res->retval = opts.retval;
	res->out_len = opts.data_size_out;
	if (!bpf_map_lookup_elem(eb->map_verdict, &zero, verdicts) && cpu >= 0 && cpu < eb->ncpus)
		memcpy(&res->verdict, verdicts + cpu * stride, sizeof(res->verdict));
	else
		res->verdict = unset;
	free(verdicts);
	free(scratch);
	return 0;
}

int pf_ebpf_resubmit(struct pf_ebpf *eb, uint32_t port, const void *frame, uint32_t len, struct pf_error *err)
{
	return pf_ebpf_resubmit_from(eb, port, UINT32_MAX, frame, len, err);
}

int pf_ebpf_resubmit_from(struct pf_ebpf *eb, uint32_t port, uint32_t pipe, const void *frame, uint32_t len,
			  struct pf_error *err)
{
	/* 0xffff: the datapath finds the pipe that missed itself */
	struct pf_xdp_meta meta = { .magic = PF_XDP_META_MAGIC, .packet_path = PF_PATH_RESUBMIT, .port = port,
				    .pipe = pipe < PF_MAX_PIPES ? (uint16_t)pipe : 0xffff };
	struct xdp_md ctx = { 0 };
	uint8_t buf[4096];
	LIBBPF_OPTS(bpf_test_run_opts, opts);

	if (port >= PF_MAX_PORTS || !eb->ports[port].in_use)
		return pf_err(err, -ENODEV, "resubmit: port %u is not bound", port);
	if (!len || len + sizeof(meta) > sizeof(buf))
		return pf_err(err, -EMSGSIZE, "resubmit: frame of %u bytes", len);
	memcpy(buf, &meta, sizeof(meta));
	memcpy(buf + sizeof(meta), frame, len);
	/* data_meta = 0, data = the metadata length, data_end = everything handed in */
	ctx.data = sizeof(meta);
	ctx.data_end = sizeof(meta) + len;
	ctx.ingress_ifindex = eb->ports[port].ifindex;
	opts.data_in = buf;
	opts.data_size_in = sizeof(meta) + len;
	opts.ctx_in = &ctx;
	opts.ctx_size_in = sizeof(ctx);
	opts.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
	opts.repeat = 1;
	if (bpf_prog_test_run_opts(eb->prog_fd, &opts))
		return pf_err(err, -errno, "resubmit on port %u: %s", port, strerror(errno));
	return 0;
}

const struct pf_backend_ops pf_backend_ebpf = {
	.name = "ebpf",
	.open = ebpf_open,
	.close = ebpf_close,
	.info = ebpf_info,
	.start = ebpf_start,
	.stop = ebpf_stop,
	.destroy = ebpf_destroy,
	.port_set = ebpf_port_set,
	.pipe_set = ebpf_pipe_set,
	.root_set = ebpf_root_set,
	.session_set = ebpf_session_set,
	.entry_add = ebpf_entry_add,
	.entry_add_batch = ebpf_entry_add_batch,
	.entry_del = ebpf_entry_del,
	.entry_replace = ebpf_entry_replace,
	.entry_list = ebpf_entry_list,
	.learn_set = ebpf_learn_set,
	.counters_entries = ebpf_counters_entries,
	.counters_pipe = ebpf_counters_pipe,
	.counters_port = ebpf_counters_port,
	.miss_stats = ebpf_miss_stats,
	.test_run = ebpf_test_run,
	.trace_run = pf_ebpf_trace_run,
	.counters_dpi = pf_ebpf_counters_dpi,
	.capture_start = pf_ebpf_capture_start,
	.capture_stats = pf_ebpf_capture_stats,
	.capture_stop = pf_ebpf_capture_stop,
	.dscp_tc_set = pf_ebpf_dscp_tc_set,
};
