/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Layouts shared by the benchmark generator/sink programs and pfbtool. */
#ifndef PFB_COMMON_H
#define PFB_COMMON_H

#define PFB_HDR_LEN 42   /* eth + ipv4 + udp */

struct pfb_gen_cfg {
	__u8 hdr[48];           /* header template, first PFB_HDR_LEN bytes used */
	__u32 out_ifindex;      /* veth the frame leaves by (the generator's own end) */
	__u32 nflows;           /* > 1: rewrite ipv4.src to src_base + (seq % nflows) */
	__u32 src_base;         /* host order */
	__u32 record_sent;      /* 1: remember the first send time of every source */
};

struct pfb_sink_cfg {
	__u32 orig_dst;         /* network order: frames whose ipv4.dst differs were rewritten */
	__u32 record_first;     /* 1: remember the first arrival time of every source */
};

struct pfb_sink_count {
	__u64 packets;
	__u64 bytes;
	__u64 rewritten;
	__u64 non_ipv4;
};

#ifdef __bpf__
/* ipv4.src (network order) -> bpf_ktime_get_ns() of the first frame sent or seen from it */
#define PFB_STAMP_MAP(name)                         \
	struct {                                    \
		__uint(type, BPF_MAP_TYPE_HASH);    \
		__uint(max_entries, 1 << 20);       \
		__type(key, __u32);                 \
		__type(value, __u64);               \
	} name SEC(".maps")

static __always_inline void pfb_stamp_first(void *stamps, __u32 src)
{
	__u64 now = bpf_ktime_get_ns();

	bpf_map_update_elem(stamps, &src, &now, BPF_NOEXIST);
}
#endif

#endif
