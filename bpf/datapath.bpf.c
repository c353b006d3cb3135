// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* placeholder */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "pyflow/shared.h"

SEC("xdp")
int pf_xdp_root(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
