// SPDX-License-Identifier: BSD-2-Clause
/*
 * pyflow counters through rte_telemetry, so `dpdk-telemetry.py -f PREFIX`
 * shows them next to the ethdev stats:
 *   /pyflow/counters          per port: rx/tx packets and bytes, drops by reason
 *   /pyflow/pipes             per pipe: hits, misses
 *   /pyflow/entries,PIPE      per entry of PIPE: packets, bytes (first 128 entries)
 *   /pyflow/miss              miss handler statistics
 * Commands cannot be unregistered: they answer "no instance" once it is closed.
 */
#ifdef PF_HAVE_DPDK
#include <stdio.h>
#include <stdlib.h>
#include <rte_telemetry.h>
#include "dpdk.h"

static pthread_mutex_t tel_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pfd *tel_inst;
static bool tel_registered;

static const char *const drop_names[PF_DROP_MAX] = {
	"malformed", "action", "no_miss", "depth", "tx_fail", "sampled", "action_fail", "rate_limit",
};

/* Take tel_lock with an instance to report on; without one, answer so and return false (unlocked). */
static bool tel_lock_instance(struct rte_tel_data *t)
{
	pthread_mutex_lock(&tel_lock);
	if (tel_inst)
		return true;
	pthread_mutex_unlock(&tel_lock);
	rte_tel_data_string(t, "no pyflow instance is running");
	return false;
}

static int tel_counters(const char *cmd, const char *params, struct rte_tel_data *t)
{
	if (!tel_lock_instance(t))
		return 0;
	rte_tel_data_start_dict(t);
	for (uint32_t port = 0; port < PF_MAX_PORTS; port++) {
		struct rte_tel_data *pd;
		struct pf_port_counter c;
		char key[16];

		if (!tel_inst->ports[port].in_use || !(pd = rte_tel_data_alloc()))
			continue;
		pfd_counters_sum_port(tel_inst, port, &c);
		rte_tel_data_start_dict(pd);
		rte_tel_data_add_dict_string(pd, "device", tel_inst->ports[port].name);
		rte_tel_data_add_dict_u64(pd, "rx_packets", c.rx_packets);
		rte_tel_data_add_dict_u64(pd, "rx_bytes", c.rx_bytes);
		rte_tel_data_add_dict_u64(pd, "tx_packets", c.tx_packets);
		rte_tel_data_add_dict_u64(pd, "tx_bytes", c.tx_bytes);
		for (int r = 0; r < PF_DROP_MAX; r++) {
			char name[32];

			snprintf(name, sizeof(name), "drop_%s", drop_names[r]);
			rte_tel_data_add_dict_u64(pd, name, c.drops[r]);
		}
		snprintf(key, sizeof(key), "port%u", port);
		rte_tel_data_add_dict_container(t, key, pd, 0);
	}
	pthread_mutex_unlock(&tel_lock);
	return 0;
}

static int tel_pipes(const char *cmd, const char *params, struct rte_tel_data *t)
{
	if (!tel_lock_instance(t))
		return 0;
	rte_tel_data_start_dict(t);
	for (uint32_t pipe = 0; pipe < PF_MAX_PIPES; pipe++) {
		struct rte_tel_data *pd;
		struct pf_pipe_counter c;
		char key[16];

		if (!(tel_inst->pipes[pipe].cfg.flags & PF_PIPE_IN_USE) || !(pd = rte_tel_data_alloc()))
			continue;
		pfd_counters_sum_pipe(tel_inst, pipe, &c);
		rte_tel_data_start_dict(pd);
		rte_tel_data_add_dict_u64(pd, "hits", c.hits);
		rte_tel_data_add_dict_u64(pd, "misses", c.misses);
		rte_tel_data_add_dict_int(pd, "offloaded", tel_inst->pipes[pipe].offloaded);
		snprintf(key, sizeof(key), "pipe%u", pipe);
		rte_tel_data_add_dict_container(t, key, pd, 0);
	}
	pthread_mutex_unlock(&tel_lock);
	return 0;
}

static int tel_entries(const char *cmd, const char *params, struct rte_tel_data *t)
{
	uint32_t pipe, shown = 0;
	char *end;

	if (!params || !*params)
		return -1;
	pipe = (uint32_t)strtoul(params, &end, 10);
	if (*end || pipe >= PF_MAX_PIPES)
		return -1;
	if (!tel_lock_instance(t))
		return 0;
	rte_tel_data_start_dict(t);
	for (uint32_t id = 0; id < tel_inst->max_entries && shown < 128; id++) {
		const struct pfd_entry *e = &tel_inst->entries[id];
		struct rte_tel_data *ed;
		struct pf_counter c;
		char key[24];

		if (!e->in_use || e->pipe != pipe || !(ed = rte_tel_data_alloc()))
			continue;
		pfd_counters_sum_entry(tel_inst, id, &c);
		rte_tel_data_start_dict(ed);
		rte_tel_data_add_dict_u64(ed, "packets", c.packets);
		rte_tel_data_add_dict_u64(ed, "bytes", c.bytes);
		snprintf(key, sizeof(key), "entry%u", id);
		rte_tel_data_add_dict_container(t, key, ed, 0);
		shown++;
	}
	pthread_mutex_unlock(&tel_lock);
	return 0;
}

static int tel_miss(const char *cmd, const char *params, struct rte_tel_data *t)
{
	struct pf_miss_stats s = { 0 };

	if (!tel_lock_instance(t))
		return 0;
	if (tel_inst->learner)
		pf_learner_stats(tel_inst->learner, &s);
	pthread_mutex_unlock(&tel_lock);
	rte_tel_data_start_dict(t);
	rte_tel_data_add_dict_u64(t, "received", s.received);
	rte_tel_data_add_dict_u64(t, "installed", s.installed);
	rte_tel_data_add_dict_u64(t, "resubmitted", s.resubmitted);
	rte_tel_data_add_dict_u64(t, "coalesced", s.coalesced);
	rte_tel_data_add_dict_u64(t, "refused_max_flows", s.refused_max_flows);
	rte_tel_data_add_dict_u64(t, "shed_rate_limit", s.shed_rate_limit);
	rte_tel_data_add_dict_u64(t, "aged_out", s.aged_out);
	rte_tel_data_add_dict_u64(t, "install_errors", s.install_errors);
	rte_tel_data_add_dict_u64(t, "resubmit_errors", s.resubmit_errors);
	rte_tel_data_add_dict_u64(t, "no_policy", s.no_policy);
	return 0;
}

void pfd_telemetry_register(struct pfd *d)
{
	pthread_mutex_lock(&tel_lock);
	tel_inst = d;
	pthread_mutex_unlock(&tel_lock);
	if (tel_registered)
		return;
	tel_registered = true;
	rte_telemetry_register_cmd("/pyflow/counters", tel_counters,
				   "pyflow port counters: rx/tx packets and bytes, drops by reason");
	rte_telemetry_register_cmd("/pyflow/pipes", tel_pipes, "pyflow pipe counters: hits, misses");
	rte_telemetry_register_cmd("/pyflow/entries", tel_entries,
				   "pyflow entry counters of one pipe. Parameters: int pipe id");
	rte_telemetry_register_cmd("/pyflow/miss", tel_miss, "pyflow miss handler statistics");
}

void pfd_telemetry_unregister(struct pfd *d)
{
	pthread_mutex_lock(&tel_lock);
	if (tel_inst == d)
		tel_inst = NULL;
	pthread_mutex_unlock(&tel_lock);
}
#endif
