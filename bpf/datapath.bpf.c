// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The pipe model in XDP.
 *
 * A frame enters the root pipe with meta.port = the config id of its ingress
 * interface, then walks at most PF_MAX_PIPE_DEPTH pipes (basic, control, lpm,
 * hash), applying each hit entry's actions, until a pipe forwards it to a
 * port, the miss handler (AF_XDP), the host stack, or drops it. Egress-domain
 * pipes run inline: either reached through pipe:, or as a port's egress pipe
 * after the ingress decision chose that port (one egress pass per frame).
 *
 * Parsing, actions and lookups are global (separately verified) functions so
 * the verifier does not re-walk them for every hop of the pipe chain.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define PF_PKT_CTX struct xdp_md
#define PF_PKT_DATA(ctx) ((void *)(long)(ctx)->data)
#define PF_PKT_DATA_END(ctx) ((void *)(long)(ctx)->data_end)
#define PF_PKT_ADJUST_HEAD(ctx, delta) bpf_xdp_adjust_head((ctx), (delta))
#define PF_PKT_RANDOM() bpf_get_prandom_u32()
#include "pyflow/packet.h"

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

/* Only used through a pointer, so clang would leave it out of the BTF that
 * tests/unit/test_layouts.py compares with cffi: keep one instance. */
const volatile struct pf_xdp_meta pf_xdp_meta_layout = { .magic = PF_XDP_META_MAGIC };

/* ---- global functions: verified once each ---- */

__noinline int pf_xdp_parse(struct xdp_md *ctx, struct pf_pkt *pkt)
{
	uint8_t *data = (void *)(long)ctx->data;
	uint8_t *data_end = (void *)(long)ctx->data_end;

	if (!pkt)
		return PF_PARSE_ERR_ETH;
	pf_pkt_clear(pkt);
	return pf_parse(data, data_end, pkt);
}

__noinline int pf_xdp_actions(struct xdp_md *ctx, struct pf_pkt *pkt, const struct pf_actions *act)
{
	if (!pkt || !act)
		return PF_ACT_ERR_NO_HEADER;
	return pf_apply_actions(ctx, pkt, act);
}

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

/* Metadata must not follow a frame out of this program (a peer's XDP would see it). */
static __always_inline void pf_strip_meta(struct xdp_md *ctx)
{
	int meta_len = (int)(ctx->data - ctx->data_meta);

	if (meta_len > 0)
		bpf_xdp_adjust_meta(ctx, meta_len);
}

static __always_inline int pf_tx(struct xdp_md *ctx, __u32 in_port, __u32 out_port, __u32 pipe, __u32 entry_id,
				 __u32 hops)
{
	struct pf_port_counter *pc;
	__u32 len;
	int ret;

	pf_strip_meta(ctx);
	len = ctx->data_end - ctx->data;
	ret = bpf_redirect_map(&tx_ports, out_port, 0);
	if (ret != XDP_REDIRECT)
		return pf_drop(in_port, PF_DROP_TX_FAIL, pipe, entry_id, hops);
	pc = bpf_map_lookup_elem(&port_counters, &out_port);
	if (pc) {
		pc->tx_packets++;
		pc->tx_bytes += len;
	}
	pf_set_verdict(PF_VERDICT_TX, out_port, 0, pipe, entry_id, hops);
	return ret;
}

/* To the miss handler's AF_XDP socket of this port and queue, with pf_xdp_meta in front. */
static __always_inline int pf_miss(struct xdp_md *ctx, __u32 port, __u32 pipe, __u32 packet_path, __u32 hops)
{
	struct pf_xdp_meta *meta;
	void *data;
	__u32 slot, queue = ctx->rx_queue_index;
	int ret;

	/* a resubmitted frame that misses again would loop through the handler */
	if (packet_path == PF_PATH_RESUBMIT)
		return pf_drop(port, PF_DROP_NO_MISS, pipe, PF_NO_ENTRY, hops);
	if (queue >= PF_MAX_QUEUES)
		queue = 0;
	slot = port * PF_MAX_QUEUES + queue;
	if (!bpf_map_lookup_elem(&xsks, &slot))
		return pf_drop(port, PF_DROP_NO_MISS, pipe, PF_NO_ENTRY, hops);
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct pf_xdp_meta)))
		return pf_drop(port, PF_DROP_NO_MISS, pipe, PF_NO_ENTRY, hops);
	meta = (void *)(long)ctx->data_meta;
	data = (void *)(long)ctx->data;
	if ((void *)(meta + 1) > data)
		return pf_drop(port, PF_DROP_NO_MISS, pipe, PF_NO_ENTRY, hops);
	meta->magic = PF_XDP_META_MAGIC;
	meta->pipe = pipe;
	meta->packet_path = packet_path;
	meta->_pad = 0;
	meta->port = port;
	meta->_pad2 = 0;
	ret = bpf_redirect_map(&xsks, slot, XDP_DROP);
	if (ret != XDP_REDIRECT)
		return pf_drop(port, PF_DROP_NO_MISS, pipe, PF_NO_ENTRY, hops);
	pf_set_verdict(PF_VERDICT_MISS, port, 0, pipe, PF_NO_ENTRY, hops);
	return ret;
}

SEC("xdp")
int pf_xdp_root(struct xdp_md *ctx)
{
	struct pf_pkt pkt;
	struct pf_entry *ent;
	const struct pf_config *cfg;
	const struct pf_pipe *pipe_cfg;
	const struct pf_port *port_cfg;
	struct pf_port_counter *pc;
	struct pf_xdp_meta *meta;
	struct pf_fwd fwd;
	__u32 zero = 0, ifindex = ctx->ingress_ifindex, port, *portp;
	__u32 pipe, hop, entry_id = PF_NO_ENTRY, packet_path = PF_PATH_NORMAL;
	__u32 pending_port = 0, egress_done = 0;
	int ret;

	/* a resubmitted frame carries pf_xdp_meta in the metadata area */
	meta = (void *)(long)ctx->data_meta;
	if ((void *)(meta + 1) <= (void *)(long)ctx->data && meta->magic == PF_XDP_META_MAGIC &&
	    meta->packet_path == PF_PATH_RESUBMIT)
		packet_path = PF_PATH_RESUBMIT;

	portp = bpf_map_lookup_elem(&ifindex_port, &ifindex);
	if (!portp)
		return XDP_PASS;        /* not one of our ports */
	port = *portp;
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || !(cfg->flags & PF_CFG_ROOT_SET))
		return XDP_PASS;        /* nothing programmed yet: leave the host alone */

	pc = bpf_map_lookup_elem(&port_counters, &port);
	if (pc) {
		pc->rx_packets++;
		pc->rx_bytes += ctx->data_end - ctx->data;
	}

	if (pf_xdp_parse(ctx, &pkt))
		return pf_drop(port, PF_DROP_MALFORMED, cfg->root_pipe, PF_NO_ENTRY, 0);
	pkt.f.port = port;
	pkt.f.packet_path = packet_path;
	ent = bpf_map_lookup_elem(&scratch_entry, &zero);
	if (!ent)
		return XDP_ABORTED;

	pipe = cfg->root_pipe;
	for (hop = 0; hop < PF_MAX_PIPE_DEPTH; hop++) {
		pipe_cfg = bpf_map_lookup_elem(&pipes, &pipe);
		if (!pipe_cfg)
			break;
		ret = pf_pipe_lookup(&pkt, pipe, ent);
		if (ret < 0)
			return pf_drop(port, PF_DROP_ACTION_FAIL, pipe, entry_id, hop);
		pf_count_pipe(pipe, ret);
		if (ret) {
			entry_id = ent->id;
			pf_count_entry(ent->id, ctx->data_end - ctx->data);
			fwd = ent->fwd.type == PF_FWD_DEFAULT ? pipe_cfg->fwd : ent->fwd;
			if (ent->act.flags) {
				ret = pf_xdp_actions(ctx, &pkt, &ent->act);
				if (ret == PF_ACT_SAMPLED_DROP)
					return pf_drop(port, PF_DROP_SAMPLED, pipe, entry_id, hop + 1);
				if (ret)
					return pf_drop(port, PF_DROP_ACTION_FAIL, pipe, entry_id, hop + 1);
			}
		} else {
			fwd = pipe_cfg->fwd_miss;
		}

		switch (fwd.type) {
		case PF_FWD_PIPE:
			pipe = fwd.target;
			continue;
		case PF_FWD_PORT:
			if (!egress_done && fwd.target < PF_MAX_PORTS) {
				__u32 out = fwd.target;

				port_cfg = bpf_map_lookup_elem(&ports, &out);
				if (port_cfg && (port_cfg->flags & PF_PORT_EGRESS_PIPE)) {
					/* the chosen port's egress pipe runs before the frame leaves */
					egress_done = 1;
					pending_port = out;
					pipe = port_cfg->egress_pipe;
					continue;
				}
			}
			return pf_tx(ctx, port, fwd.target, pipe, entry_id, hop + 1);
		case PF_FWD_DEFAULT:
			/* an egress pipe without its own forward lets the frame go where ingress sent it */
			if (egress_done)
				return pf_tx(ctx, port, pending_port, pipe, entry_id, hop + 1);
			return pf_drop(port, PF_DROP_ACTION, pipe, entry_id, hop + 1);
		case PF_FWD_MISS:
			return pf_miss(ctx, port, pipe, packet_path, hop + 1);
		case PF_FWD_KERNEL:
			pf_strip_meta(ctx);
			pf_set_verdict(PF_VERDICT_PASS, 0, 0, pipe, entry_id, hop + 1);
			return XDP_PASS;
		case PF_FWD_SESSION:
			/* replication needs an sk_buff (TC, bpf_clone_redirect): not in this program */
			return pf_drop(port, PF_DROP_ACTION_FAIL, pipe, entry_id, hop + 1);
		default:
			return pf_drop(port, PF_DROP_ACTION, pipe, entry_id, hop + 1);
		}
	}
	return pf_drop(port, PF_DROP_DEPTH, pipe, entry_id, hop);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
