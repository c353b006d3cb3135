// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Passes every frame. Attached to the namespace side of a veth so that
 * XDP_REDIRECT into the veth delivers (the peer must run an XDP program). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
