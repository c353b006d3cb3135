// SPDX-License-Identifier: BSD-2-Clause
/* Is XDP_REDIRECT into a veth going to deliver? (its peer must run XDP or have GRO on) */
#include <string.h>
#include "ebpf/ebpf.h"

int pf_ebpf_veth_peer_check(const char *ifname, char *reason, size_t reason_len)
{
	if (reason && reason_len)
		reason[0] = 0;
	return 0;
}
