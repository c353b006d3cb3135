// SPDX-License-Identifier: BSD-2-Clause
/* DOCA Flow backend. Built for real only when meson finds doca-flow; this file
 * is what every other build gets: a clear statement of what is missing. */
#include "internal.h"

static int doca_available(struct pf_error *err)
{
#ifdef PF_HAVE_DOCA
	return pf_err(err, -ENOTSUP,
		      "backend doca: DOCA Flow was found at build time but this pyflow does not drive it yet; "
		      "'pyflow plan --backend doca' shows the pipe graph, and --backend dpdk runs the same pipeline on the NIC");
#else
	return pf_err(err, -ENOTSUP,
		      "backend doca: this pyflow was built without the NVIDIA DOCA SDK (pkg-config doca-flow not found); "
		      "install DOCA and rebuild, or use --backend dpdk or --backend ebpf");
#endif
}

static int doca_open(pf_instance *inst, const struct pf_instance_opts *opts, struct pf_error *err)
{
	(void)inst;
	(void)opts;
	return doca_available(err);
}

const struct pf_backend_ops pf_backend_doca = {
	.name = "doca",
	.available = doca_available,
	.open = doca_open,
};
