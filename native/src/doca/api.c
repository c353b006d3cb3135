// SPDX-License-Identifier: BSD-2-Clause
/*
 * Where the doca backend's DOCA Flow comes from. Built with the SDK: the SDK's
 * functions, linked, and DPDK's ethdev for packet I/O (io_sdk.c). Built
 * without it: a DOCA Flow implementation named by PYFLOW_DOCA_SIM (a path to a
 * shared library; the project's simulator in tests), loaded with dlopen, and
 * nothing at all otherwise, so a pyflow without the SDK never pretends to
 * drive a device.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "doca.h"

#ifdef PF_HAVE_DOCA_SDK
uint16_t pfdoca_sdk_rx_burst(uint16_t port_id, uint16_t queue, struct docasim_pkt *pkts, uint16_t n);
uint16_t pfdoca_sdk_tx_burst(uint16_t port_id, uint16_t queue, const struct docasim_pkt *pkts, uint16_t n);
int pfdoca_sdk_port_stats(uint16_t port_id, struct docasim_port_stats *st);

static const struct pfdoca_api sdk_api = {
#define PFDOCA_FN(ret, name, args) .name = name,
#include "doca_api_list.h"
#undef PFDOCA_FN
	.rx_burst = pfdoca_sdk_rx_burst,
	.tx_burst = pfdoca_sdk_tx_burst,
	.port_stats = pfdoca_sdk_port_stats,
};
#endif

#define MISSING_SDK                                                                                              \
	"backend doca: this pyflow was built without the NVIDIA DOCA SDK (pkg-config doca-flow not found) and no "   \
	"DOCA device can be driven; install DOCA 2.9 (the doca-sdk-flow and doca-sdk-common packages of NVIDIA's "    \
	"DOCA host repository) and rebuild pyflow (meson -Ddoca=enabled), or use --backend dpdk or --backend ebpf"

int pfdoca_api_available(struct pf_error *err)
{
#ifdef PF_HAVE_DOCA_SDK
	return 0;
#else
	const char *sim = getenv("PYFLOW_DOCA_SIM");

	if (sim && *sim)
		return 0;
	return pf_err(err, -ENOTSUP, MISSING_SDK);
#endif
}

int pfdoca_api_load(struct pfdoca *d, struct pf_error *err)
{
#ifdef PF_HAVE_DOCA_SDK
	d->api = &sdk_api;
	snprintf(d->api_source, sizeof(d->api_source), "DOCA SDK");
	return 0;
#else
	const char *sim = getenv("PYFLOW_DOCA_SIM");
	struct pfdoca_api *api;
	void *dl;

	if (!sim || !*sim)
		return pf_err(err, -ENOTSUP, MISSING_SDK);
	dl = dlopen(sim, RTLD_NOW | RTLD_LOCAL);
	if (!dl)
		return pf_err(err, -ENOENT, "backend doca: PYFLOW_DOCA_SIM=%s: %s", sim, dlerror());
	api = calloc(1, sizeof(*api));
	if (!api) {
		dlclose(dl);
		return pf_err(err, -ENOMEM, "out of memory");
	}
#define RESOLVE(field, sym)                                                                                     \
	do {                                                                                                    \
		*(void **)&api->field = dlsym(dl, sym);                                                         \
		if (!api->field) {                                                                              \
			free(api);                                                                              \
			dlclose(dl);                                                                            \
			return pf_err(err, -ENOENT, "backend doca: PYFLOW_DOCA_SIM=%s does not export %s", sim, sym); \
		}                                                                                               \
	} while (0)
#define PFDOCA_FN(ret, name, args) RESOLVE(name, #name);
#include "doca_api_list.h"
#undef PFDOCA_FN
	RESOLVE(rx_burst, "docasim_rx_burst");
	RESOLVE(tx_burst, "docasim_tx_burst");
	RESOLVE(port_stats, "docasim_port_stats");
	RESOLVE(inject, "docasim_inject");
	RESOLVE(dump_json, "docasim_dump_json");
	RESOLVE(last_error, "docasim_last_error");
#undef RESOLVE
	d->api = api;
	d->dl = dl;
	snprintf(d->api_source, sizeof(d->api_source), "DOCA Flow simulator %s", sim);
	return 0;
#endif
}

void pfdoca_api_unload(struct pfdoca *d)
{
	if (d->dl) {
		free((void *)d->api);
		/* the library keeps no thread of ours after doca_flow_destroy; it stays mapped (a later
		 * instance in this process reuses it) */
	}
	d->api = NULL;
	d->dl = NULL;
}
