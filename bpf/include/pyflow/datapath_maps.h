/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps of the datapath and the context-free parts of the pipe walk (lookup,
 * counters, verdict), shared by the XDP program (datapath.bpf.c) and the TC
 * replication programs (tc_replicate.bpf.c). The loader hands the XDP
 * object's map fds to the TC object, so both see the same tables.
 * Include after pyflow/packet.h.
 */
#ifndef PYFLOW_DATAPATH_MAPS_H
#define PYFLOW_DATAPATH_MAPS_H

#define PF_NO_ENTRY 0xffffffffu
#define PF_NO_PORT 0xffffffffu
/* verdict.kind as pf_test_run leaves it before a run: "record the next decision" */
#define PF_VERDICT_ARMED 0xffffffffu

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pf_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PF_MAX_PIPES);
	__type(key, __u32);
	__type(value, struct pf_pipe);
} pipes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PF_MAX_PIPES * PF_MAX_MASKS);
	__type(key, __u32);
	__type(value, struct pf_fields);
} pipe_masks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PF_DEFAULT_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pf_flow_key);
	__type(value, struct pf_entry);
} entries SEC(".maps");

/* Entries of masks that pack into a pf_ckey (struct pf_mask_key says which). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PF_DEFAULT_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pf_ckey);
	__type(value, struct pf_entry);
} entries_c SEC(".maps");

/* Masks on one word (an address, a port number): an 8-byte key hashes faster still. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PF_DEFAULT_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);             /* pf_ckey.slot, pf_ckey.w[0] */
	__type(value, struct pf_entry);
} entries_c1 SEC(".maps");

/* Which table and key each mask slot uses, by pipe * PF_MAX_MASKS + slot, written with the pipe. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PF_MAX_PIPES * PF_MAX_MASKS);
	__type(key, __u32);
	__type(value, struct pf_mask_key);
} mask_keys SEC(".maps");

/* Entries of masks on meta.port alone, by (port_block - 1) * PF_MAX_PORTS + port;
 * PF_ENTRY_BUCKET marks an element in use. Like hash_buckets, an element is
 * rewritten in place: a frame racing a replace may see parts of both. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PF_PORT_BLOCKS * PF_MAX_PORTS);
	__type(key, __u32);
	__type(value, struct pf_entry);
} port_entries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, PF_DEFAULT_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pf_lpm_key);
	__type(value, struct pf_entry);
} lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PF_MAX_HASH_PIPES * PF_HASH_BUCKETS);
	__type(key, __u32);
	__type(value, struct pf_entry);
} hash_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PF_MAX_PORTS);
	__type(key, __u32);
	__type(value, struct pf_port);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PF_MAX_PORTS);
	__type(key, __u32);             /* ifindex */
	__type(value, __u32);           /* port id */
} ifindex_port SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, PF_MAX_PORTS);
	__type(key, __u32);             /* port id */
	__type(value, struct bpf_devmap_val);
} tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, PF_MAX_PORTS * PF_MAX_QUEUES);
	__type(key, __u32);             /* port * PF_MAX_QUEUES + rx queue */
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PF_DEFAULT_MAX_ENTRIES);
	__type(key, __u32);
	__type(value, struct pf_counter);
} entry_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PF_DEFAULT_MAX_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} entry_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PF_MAX_PIPES);
	__type(key, __u32);
	__type(value, struct pf_pipe_counter);
} pipe_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PF_MAX_PORTS);
	__type(key, __u32);
	__type(value, struct pf_port_counter);
} port_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pf_verdict);
} verdict SEC(".maps");

/* The key of a masked lookup in XDP: the stacks of the root program, a pipe
 * hop and the actions together must stay within 512 bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pf_flow_key);
} scratch_key SEC(".maps");

/* The entry being applied (TC): too large for the 512-byte stack next to the parse state. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pf_entry);
} scratch_entry SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PF_MAX_SESSIONS);
	__type(key, __u32);
	__type(value, struct pf_session);
} sessions SEC(".maps");

/* Per-CPU memo of two answers every frame needs, each checked before use:
 * - ingress port: ifindex -> port id without a hash lookup (direct-mapped by
 *   ifindex, confirmed against ports[], which the loader keeps in step with
 *   ifindex_port);
 * - the coarse clock for last-seen stamps: re-read only when jiffies (an
 *   inlined load) has moved, since the coarse clock only moves on a tick. */
#define PF_PORT_MEMO_SLOTS 8

struct pf_port_memo {
	__u32 ifindex;                  /* 0 = empty: no device has ifindex 0 */
	__u32 port;
};

struct pf_fast_memo {
	__u64 jiffies;
	__u64 coarse_ns;
	struct pf_port_memo ports[PF_PORT_MEMO_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pf_fast_memo);
} fast_memo SEC(".maps");

/* Multicast groups (fwd session:N / group:N): one DEVMAP_HASH of member
 * ports per session, swapped in whole by the loader. bpf_redirect_map with
 * BPF_F_BROADCAST copies the frame to every port of the inner map in XDP, no
 * sk_buff needed; BPF_F_EXCLUDE_INGRESS keeps it off the port it came in on. */
struct pf_group_ports {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, PF_MAX_SESSION_MEMBERS);
	__type(key, __u32);             /* port id */
	__type(value, struct bpf_devmap_val);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, PF_MAX_SESSIONS);
	__type(key, __u32);             /* session id */
	__array(values, struct pf_group_ports);
} group_ports SEC(".maps");

/* XDP -> TC hand-off of a frame that must be cloned (PSA clone sessions need
 * an sk_buff for bpf_clone_redirect): XDP_PASS with this in the metadata
 * area; the clsact ingress program of the same port reads it. */
#define PF_HANDOFF_MAGIC 0x70664331

enum pf_handoff_flag {
	PF_HANDOFF_EGRESS_DONE = 1,     /* the out port's egress pipe already ran (in XDP) */
	PF_HANDOFF_DROP_ORIGINAL = 2,   /* only the copies leave */
	PF_HANDOFF_TO_KERNEL = 4,       /* the original goes to the host stack */
};

struct pf_handoff {
	__u32 magic;
	__u16 session;                  /* clone session id */
	__u8 clone_path;                /* PF_PATH_CLONE_I2E or PF_PATH_CLONE_E2E */
	__u8 flags;                     /* enum pf_handoff_flag */
	__u32 out_port;                 /* where the original goes (PF_NO_PORT: nowhere) */
	__u32 in_port;
};

/* Per-copy PSA metadata carried in skb->cb from the TC program that clones
 * (bpf_clone_redirect keeps cb) to the clsact egress program of the member. */
#define PF_CB_MAGIC 0x70664342
#define PF_CB_MAGIC_IDX 0
#define PF_CB_PATH_IDX 1                /* packet_path | flags << 8 | clone depth << 16 */
#define PF_CB_MEMBER_IDX 2              /* instance | class_of_service << 16 */
#define PF_CB_TRUNCATE_IDX 3
#define PF_CB_IN_PORT_IDX 4
#define PF_MAX_CLONE_DEPTH 2            /* a copy of a copy may clone once more, then no more */

/* Only used through a pointer, so clang would leave it out of the BTF that
 * tests/unit/test_layouts.py compares with cffi: keep one instance. */
const volatile struct pf_xdp_meta pf_xdp_meta_layout = { .magic = PF_XDP_META_MAGIC };

_Static_assert(sizeof(struct pf_fields) % 8 == 0, "pf_fields is masked 8 bytes at a time");
_Static_assert(__builtin_offsetof(struct pf_flow_key, f) == 8, "pf_flow_key.f is 8-byte aligned");

/* key.f = f & mask in 8-byte words: every byte of the key is written, so it
 * needs no memset first. key and f must be 8-byte aligned (stack structs
 * marked so; map values always are). */
static __always_inline void pf_flow_key_fill(struct pf_flow_key *key, const struct pf_fields *f,
					     const struct pf_fields *mask)
{
	const __u64 *a = (const __u64 *)f;
	const __u64 *m = (const __u64 *)mask;
	__u64 *o = (__u64 *)&key->f;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(struct pf_fields) / 8); i++)
		o[i] = a[i] & m[i];
}

/* A program whose parser defers the MPEG-TS frame class (PF_PARSE_DEFER_MPEGTS)
 * defines this to classify pkt, given the ctx passed to pf_lookup_masked. */
#ifndef PF_RESOLVE_MPEGTS
#define PF_RESOLVE_MPEGTS(ctx, pkt) do { } while (0)
#endif

_Static_assert(sizeof(struct pf_fields) == PF_FIELD_WORDS * 4, "PF_FIELD_WORDS");

_Static_assert(sizeof(struct pf_ckey) <= sizeof(struct pf_flow_key), "a pf_ckey is built in the key buffer");

/* The entry of one packed mask slot: hashes 8 or 20 bytes, not a pf_flow_key.
 * ck: the caller's key buffer (no second key on the stack). */
static __always_inline const struct pf_entry *pf_lookup_compact(const struct pf_pkt *pkt, __u32 mask_id,
								const struct pf_mask_key *mk, struct pf_ckey *ck)
{
	const __u32 *f = (const __u32 *)&pkt->f;
	__u32 j;

	ck->slot = mask_id;
	if (mk->kind == PF_MASK_PACKED1) {
		__u32 w = mk->word[0];

		ck->w[0] = (w < PF_FIELD_WORDS ? f[w] : 0) & mk->mask[0];
		return bpf_map_lookup_elem(&entries_c1, ck);
	}
#pragma unroll
	for (j = 0; j < PF_CKEY_WORDS; j++) {
		__u32 w = mk->word[j];

		ck->w[j] = (w < PF_FIELD_WORDS ? f[w] : 0) & mk->mask[j];
	}
	return bpf_map_lookup_elem(&entries_c, ck);
}

/* The entry of a mask slot on meta.port alone: an array element, no hash. */
static __always_inline const struct pf_entry *pf_lookup_port(const struct pf_pkt *pkt, const struct pf_mask_key *mk)
{
	const struct pf_entry *e;
	__u32 idx;

	if (!mk->port_block || mk->port_block > PF_PORT_BLOCKS || pkt->f.port >= PF_MAX_PORTS)
		return NULL;
	idx = (mk->port_block - 1) * PF_MAX_PORTS + pkt->f.port;
	e = bpf_map_lookup_elem(&port_entries, &idx);
	return e && (e->flags & PF_ENTRY_BUCKET) ? e : NULL;
}

/* Best entry of a basic/control pipe: lowest priority value over the mask
 * slots. Returns the map value itself (valid for the rest of this run: hash
 * elements are freed after an RCU grace period, array elements never). key: room for the lookup
 * key of a mask that does not pack (8-byte aligned), on the stack or in a
 * per-CPU map. */
static __always_inline const struct pf_entry *pf_lookup_masked(void *ctx, struct pf_pkt *pkt, __u32 pipe_id,
							       const struct pf_pipe *pipe, struct pf_flow_key *key)
{
	const struct pf_entry *best = NULL;
	__u32 nmasks = pipe->nmasks ? pipe->nmasks : 1;
	__u32 i;

	for (i = 0; i < PF_MAX_MASKS; i++) {
		__u32 mask_id = pipe_id * PF_MAX_MASKS + i;
		const struct pf_mask_key *mk;
		const struct pf_fields *mask;
		const struct pf_entry *e;

		if (i >= nmasks)
			break;
		mk = bpf_map_lookup_elem(&mask_keys, &mask_id);
		if (mk && mk->kind == PF_MASK_PORT) {
			e = pf_lookup_port(pkt, mk);
		} else if (mk && (mk->kind == PF_MASK_PACKED || mk->kind == PF_MASK_PACKED1)) {
			if (mk->mpegts && pkt->mpegts_deferred)
				PF_RESOLVE_MPEGTS(ctx, pkt);
			e = pf_lookup_compact(pkt, mask_id, mk, (struct pf_ckey *)key);
		} else {
			mask = bpf_map_lookup_elem(&pipe_masks, &mask_id);
			if (!mask)
				break;
			if (mask->mpegts_frame && pkt->mpegts_deferred)
				PF_RESOLVE_MPEGTS(ctx, pkt);
			key->pipe = pipe_id;
			key->mask_idx = i;
			pf_flow_key_fill(key, &pkt->f, mask);
			e = bpf_map_lookup_elem(&entries, key);
		}
		if (e && (!best || e->priority < best->priority))
			best = e;
	}
	return best;
}

/* The entry an LPM or hash pipe selects, or NULL. */
static __noinline const struct pf_entry *pf_lookup_lpm_hash(const struct pf_pkt *pkt, __u32 pipe_id,
								 const struct pf_pipe *pipe)
{
	if (pipe->type == PF_PIPE_LPM) {
		struct pf_lpm_key key;

		pf_lpm_key_build(&pkt->f, pipe_id, pipe->lpm_field, &key);
		return bpf_map_lookup_elem(&lpm, &key);
	} else {
		const struct pf_entry *e;
		__u32 bucket;

		if (!pipe->nbuckets || pipe->nbuckets > PF_HASH_BUCKETS || pipe->hash_slot >= PF_MAX_HASH_PIPES)
			return NULL;
		bucket = pipe->hash_slot * PF_HASH_BUCKETS + pf_flow_hash(&pkt->f) % pipe->nbuckets;
		e = bpf_map_lookup_elem(&hash_buckets, &bucket);
		return e && (e->flags & PF_ENTRY_BUCKET) ? e : NULL;
	}
}

/* ---- per-CPU memo ---- */

static __always_inline struct pf_fast_memo *pf_memo(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&fast_memo, &zero);
}

/* Config port id of ifindex, or PF_NO_PORT when it is not one of ours. */
static __always_inline __u32 pf_port_of(struct pf_fast_memo *memo, __u32 ifindex)
{
	struct pf_port_memo *slot = NULL;
	const struct pf_port *p;
	__u32 port, *portp;

	if (memo) {
		slot = &memo->ports[ifindex & (PF_PORT_MEMO_SLOTS - 1)];
		if (slot->ifindex == ifindex) {
			port = slot->port;
			p = bpf_map_lookup_elem(&ports, &port);
			/* a rebound port no longer claims this ifindex: ask the map */
			if (p && p->ifindex == ifindex && (p->flags & PF_PORT_IN_USE))
				return port;
		}
	}
	portp = bpf_map_lookup_elem(&ifindex_port, &ifindex);
	if (!portp)
		return PF_NO_PORT;
	port = *portp;
	if (slot) {
		slot->ifindex = ifindex;
		slot->port = port;
	}
	return port;
}

/* CLOCK_MONOTONIC_COARSE, at most two ticks behind. */
static __always_inline __u64 pf_now_coarse(struct pf_fast_memo *memo)
{
	__u64 j;

	if (!memo)
		return bpf_ktime_get_coarse_ns();
	j = bpf_jiffies64();
	if (memo->jiffies != j) {
		memo->jiffies = j;
		memo->coarse_ns = bpf_ktime_get_coarse_ns();
	}
	return memo->coarse_ns;
}

/* ---- counters and verdict ---- */

static __always_inline void pf_count_port_drop(__u32 port, __u32 reason)
{
	struct pf_port_counter *pc = bpf_map_lookup_elem(&port_counters, &port);

	if (pc && reason < PF_DROP_MAX)
		pc->drops[reason]++;
}

/* Only pf_test_run reads the verdict, and it arms the record (kind =
 * PF_VERDICT_ARMED) right before its run: live traffic leaves it alone
 * rather than rewriting it on every frame. */
static __always_inline void pf_set_verdict(__u32 kind, __u32 out_port, __u32 reason, __u32 last_pipe,
					   __u32 entry_id, __u32 hops)
{
	__u32 zero = 0;
	struct pf_verdict *v = bpf_map_lookup_elem(&verdict, &zero);

	if (!v || v->kind != PF_VERDICT_ARMED)
		return;
	v->kind = kind;
	v->out_port = out_port;
	v->drop_reason = reason;
	v->last_pipe = last_pipe;
	v->entry_id = entry_id;
	v->hops = hops;
}

static __always_inline int pf_drop(__u32 port, __u32 reason, __u32 pipe, __u32 entry_id, __u32 hops)
{
	pf_count_port_drop(port, reason);
	pf_set_verdict(PF_VERDICT_DROP, 0, reason, pipe, entry_id, hops);
	return XDP_DROP;
}

/* Last-seen stamps are CLOCK_MONOTONIC_COARSE from pf_now_coarse(): the idle
 * sweeper compares them with CLOCK_MONOTONIC, and a stamp a tick or two old
 * is nothing against idle timeouts of seconds. Reading a clock through a
 * helper costs 15-30 ns per call; this costs a load per frame. */
static __always_inline void pf_count_entry(struct pf_fast_memo *memo, __u32 id, __u32 len)
{
	struct pf_counter *c = bpf_map_lookup_elem(&entry_counters, &id);
	__u64 *seen;
	__u64 now;

	if (c) {
		c->packets++;
		c->bytes += len;
	}
	seen = bpf_map_lookup_elem(&entry_seen, &id);
	if (seen) {
		now = pf_now_coarse(memo);
		/* a shared line: write at most once per millisecond */
		if (now - *seen > 1000000)
			*seen = now;
	}
}

static __always_inline void pf_count_pipe(__u32 pipe, int hit)
{
	struct pf_pipe_counter *pc = bpf_map_lookup_elem(&pipe_counters, &pipe);

	if (!pc)
		return;
	if (hit)
		pc->hits++;
	else
		pc->misses++;
}

#endif
