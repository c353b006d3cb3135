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

/* The entry being applied: too large for the 512-byte stack next to the parse state. */
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
#define PF_NO_PORT 0xffffffffu

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

/* Best entry of a basic/control pipe: lowest priority value over the mask slots. */
static __always_inline int pf_lookup_masked(const struct pf_pkt *pkt, __u32 pipe_id, const struct pf_pipe *pipe,
					    struct pf_entry *out)
{
	struct pf_flow_key key;
	const struct pf_entry *best = NULL;
	__u32 nmasks = pipe->nmasks ? pipe->nmasks : 1;
	__u32 i;

	__builtin_memset(&key, 0, sizeof(key));
	key.pipe = pipe_id;
	for (i = 0; i < PF_MAX_MASKS; i++) {
		__u32 mask_id = pipe_id * PF_MAX_MASKS + i;
		const struct pf_fields *mask;
		const struct pf_entry *e;

		if (i >= nmasks)
			break;
		mask = bpf_map_lookup_elem(&pipe_masks, &mask_id);
		if (!mask)
			break;
		key.mask_idx = i;
		pf_fields_and(&pkt->f, mask, &key.f);
		e = bpf_map_lookup_elem(&entries, &key);
		if (e && (!best || e->priority < best->priority))
			best = e;
	}
	if (!best)
		return 0;
	__builtin_memcpy(out, best, sizeof(*out));
	return 1;
}

/* 1 = hit (entry copied to out), 0 = miss, -1 = the pipe is not configured. */
__noinline int pf_pipe_lookup(const struct pf_pkt *pkt, __u32 pipe_id, struct pf_entry *out)
{
	const struct pf_pipe *pipe;
	const struct pf_entry *e;

	if (!pkt || !out)
		return -1;
	pipe = bpf_map_lookup_elem(&pipes, &pipe_id);
	if (!pipe || !(pipe->flags & PF_PIPE_IN_USE))
		return -1;
	switch (pipe->type) {
	case PF_PIPE_LPM: {
		struct pf_lpm_key key;

		pf_lpm_key_build(&pkt->f, pipe_id, pipe->lpm_field, &key);
		e = bpf_map_lookup_elem(&lpm, &key);
		if (!e)
			return 0;
		__builtin_memcpy(out, e, sizeof(*out));
		return 1;
	}
	case PF_PIPE_HASH: {
		__u32 bucket;

		if (!pipe->nbuckets || pipe->nbuckets > PF_HASH_BUCKETS || pipe->hash_slot >= PF_MAX_HASH_PIPES)
			return 0;
		bucket = pipe->hash_slot * PF_HASH_BUCKETS + pf_flow_hash(&pkt->f) % pipe->nbuckets;
		e = bpf_map_lookup_elem(&hash_buckets, &bucket);
		if (!e)
			return 0;
		__builtin_memcpy(out, e, sizeof(*out));
		return 1;
	}
	default:
		return pf_lookup_masked(pkt, pipe_id, pipe, out);
	}
}

/* ---- counters and verdict ---- */

static __always_inline void pf_count_port_drop(__u32 port, __u32 reason)
{
	struct pf_port_counter *pc = bpf_map_lookup_elem(&port_counters, &port);

	if (pc && reason < PF_DROP_MAX)
		pc->drops[reason]++;
}

static __always_inline void pf_set_verdict(__u32 kind, __u32 out_port, __u32 reason, __u32 last_pipe,
					   __u32 entry_id, __u32 hops)
{
	__u32 zero = 0;
	struct pf_verdict *v = bpf_map_lookup_elem(&verdict, &zero);

	if (!v)
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

static __always_inline void pf_count_entry(__u32 id, __u32 len)
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
		now = bpf_ktime_get_ns();
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
