// SPDX-License-Identifier: BSD-2-Clause
#include "internal.h"

static int ebpf_open(pf_instance *inst, const struct pf_instance_opts *opts, struct pf_error *err)
{
	return pf_err(err, -ENOSYS, "backend ebpf: not built yet");
}

const struct pf_backend_ops pf_backend_ebpf = {
	.name = "ebpf",
	.open = ebpf_open,
};
