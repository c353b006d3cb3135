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

#endif
