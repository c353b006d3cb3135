// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Sink at the far end of the system under test: counts every frame (XDP, so
 * counting costs the same whatever delivered it), notes whether ipv4.dst was
 * rewritten on the way and, for flow-setup runs, each source's first arrival.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "pfb_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pfb_sink_cfg);
} sink_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pfb_sink_count);
} sink_count SEC(".maps");

PFB_STAMP_MAP(first_seen);     /* first arrival of every source */

SEC("xdp")
int pfb_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__u32 zero = 0;
	struct pfb_sink_cfg *cfg = bpf_map_lookup_elem(&sink_cfg, &zero);
	struct pfb_sink_count *cnt = bpf_map_lookup_elem(&sink_count, &zero);

	if (!cfg || !cnt)
		return XDP_DROP;
	cnt->packets++;
	cnt->bytes += data_end - data;
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) {
		cnt->non_ipv4++;
		return XDP_DROP;
	}
	if (ip->daddr != cfg->orig_dst)
		cnt->rewritten++;
	if (cfg->record_first)
		pfb_stamp_first(&first_seen, ip->saddr);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
