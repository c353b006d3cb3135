// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Traffic generator, run with BPF_PROG_RUN + BPF_F_TEST_XDP_LIVE_FRAMES:
 * every repetition sends the frame out of the generator's veth, so the
 * system under test receives it as real traffic on its peer. Optionally
 * spreads frames over nflows sources and stamps each source's first send.
 *
 * Live frames come from a page pool whose contents the kernel writes once:
 * whatever the system under test rewrote in place (MACs on a routed hop,
 * ipv4.dst on a NAT hop) would be sent again next time round. So the header
 * is restored from the template on every frame.
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
	__type(value, struct pfb_gen_cfg);
} gen_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} gen_seq SEC(".maps");

PFB_STAMP_MAP(sent_at);        /* first send of every source */

static __always_inline __u16 ipv4_csum(struct iphdr *ip)
{
	__u16 *words = (__u16 *)ip;
	__u32 sum = 0;

	ip->check = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += words[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("xdp")
int pfb_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct pfb_gen_cfg *cfg = bpf_map_lookup_elem(&gen_cfg, &zero);

	if (!cfg)
		return XDP_ABORTED;
	if (data + PFB_HDR_LEN > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data, cfg->hdr, PFB_HDR_LEN);
	if (cfg->nflows > 1 || cfg->record_sent) {
		struct ethhdr *eth = data;
		struct iphdr *ip = data + sizeof(*eth);
		__u64 *seq = bpf_map_lookup_elem(&gen_seq, &zero);
		__u32 src;

		if (!seq)
			return XDP_ABORTED;
		src = bpf_htonl(cfg->src_base + (__u32)(*seq % (cfg->nflows ? cfg->nflows : 1)));
		*seq += 1;
		ip->saddr = src;
		ip->check = ipv4_csum(ip);
		if (cfg->record_sent)
			pfb_stamp_first(&sent_at, src);
	}
	return bpf_redirect(cfg->out_ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
