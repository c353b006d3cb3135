// SPDX-License-Identifier: BSD-2-Clause
#include "internal.h"

static int dpdk_available(struct pf_error *err)
{
#ifdef PF_HAVE_DPDK
	return 0;
#else
	return pf_err(err, -ENOTSUP,
		      "backend dpdk: this pyflow was built without DPDK (pkg-config libdpdk not found); "
		      "install libdpdk-dev and rebuild, or use --backend ebpf");
#endif
}

static int dpdk_open(pf_instance *inst, const struct pf_instance_opts *opts, struct pf_error *err)
{
	return pf_err(err, -ENOSYS, "backend dpdk: not built yet");
}

const struct pf_backend_ops pf_backend_dpdk = {
	.name = "dpdk",
	.available = dpdk_available,
	.open = dpdk_open,
};
