// SPDX-License-Identifier: BSD-2-Clause
/* placeholder until the AF_XDP miss path lands */
#include <string.h>
#include "miss/ebpf_miss.h"

int pf_ebpf_miss_set_policy(struct pf_ebpf *eb, const struct pf_learn *policy, struct pf_error *err)
{
	return pf_err(err, -EOPNOTSUPP, "miss handler not built yet");
}

int pf_ebpf_miss_start(struct pf_ebpf *eb, struct pf_error *err)
{
	return 0;
}

void pf_ebpf_miss_stop(struct pf_ebpf *eb)
{
}

void pf_ebpf_miss_stats(struct pf_ebpf *eb, struct pf_miss_stats *out)
{
	memset(out, 0, sizeof(*out));
}
