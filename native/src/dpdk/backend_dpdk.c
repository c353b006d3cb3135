// SPDX-License-Identifier: BSD-2-Clause
/*
 * The dpdk backend: EAL, ethdev ports, rte_flow where the PMD offloads, and
 * the same pipes in software on worker lcores (swtable.c, pipeline.c, lcore.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#ifdef PF_HAVE_DPDK
#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <unistd.h>
#include <fcntl.h>
#include <rte_eal.h>
#include <rte_log.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include "dpdk.h"

/* rte_eal_init may run once per process, and never again after rte_eal_cleanup. */
enum eal_state { EAL_NONE, EAL_UP, EAL_FAILED, EAL_CLEANED };
static enum eal_state eal_state;
static pf_instance *eal_owner;

static struct pfd *pfd_of(pf_instance *inst)
{
	return inst->priv;
}
#endif

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

#ifdef PF_HAVE_DPDK

/* What rte_eal_init says while it runs: its log lines into a buffer, and its usage text and alerts
 * (printed straight to stdout / stderr on a bad argument) into nothing, so a refusal is one line
 * with the EAL's own reasons. */
struct eal_capture {
	FILE *log;
	char *text;
	size_t len;
	int saved_stdout;
	int saved_stderr;
};

static void eal_capture_begin(struct eal_capture *c)
{
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

	memset(c, 0, sizeof(*c));
	c->saved_stdout = c->saved_stderr = -1;
	c->log = open_memstream(&c->text, &c->len);
	if (c->log)
		rte_openlog_stream(c->log);
	fflush(stdout);
	fflush(stderr);
	if (null >= 0) {
		c->saved_stdout = dup(STDOUT_FILENO);
		c->saved_stderr = dup(STDERR_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		close(null);
	}
}

/* Ends the capture; returns the EAL's reasons joined by "; " (caller frees), or NULL. On success the
 * captured lines are passed on to stderr unchanged. */
static char *eal_capture_end(struct eal_capture *c, int failed)
{
	char *reasons = NULL, *line, *save = NULL;
	size_t used = 0;

	fflush(stdout);
	fflush(stderr);
	if (c->saved_stdout >= 0) {
		dup2(c->saved_stdout, STDOUT_FILENO);
		close(c->saved_stdout);
	}
	if (c->saved_stderr >= 0) {
		dup2(c->saved_stderr, STDERR_FILENO);
		close(c->saved_stderr);
	}
	if (!c->log)
		return NULL;
	rte_openlog_stream(NULL);
	fclose(c->log);
	if (!failed) {
		fputs(c->text, stderr);
	} else if ((reasons = calloc(1, c->len + 1))) {
		for (line = strtok_r(c->text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			if (!strncmp(line, "EAL: ", 5))
				line += 5;
			/* the generic verdict adds nothing to the reasons before it */
			if (strstr(line, "Invalid 'command line' arguments") || strstr(line, "Error - exiting") || !*line)
				continue;
			used += (size_t)sprintf(reasons + used, "%s%s", used ? "; " : "", line);
		}
	}
	free(c->text);
	return reasons;
}

static int eal_init(const struct pf_instance_opts *opts, struct pf_error *err)
{
	struct eal_capture capture;
	char *reasons;
	char **argv;
	int argc = opts->eal_argc > 0 ? opts->eal_argc : 1, ret;
	char args_txt[400] = "";
	size_t used = 0;

	switch (eal_state) {
	case EAL_UP:
		return pf_err(err, -EALREADY, "backend dpdk: the EAL is already initialised in this process (instance '%s'); "
			      "DPDK allows one EAL per process: close it or run the second instance in another process",
			      eal_owner ? eal_owner->name : "?");
	case EAL_FAILED:
	case EAL_CLEANED:
		return pf_err(err, -EALREADY, "backend dpdk: the EAL was already %s in this process and cannot be "
			      "initialised again; start a new process",
			      eal_state == EAL_FAILED ? "tried (and failed)" : "torn down");
	default:
		break;
	}
	/* EAL keeps pointers into argv and may permute it: give it copies that live as long as the process */
	argv = calloc((size_t)argc + 1, sizeof(*argv));
	if (!argv)
		return pf_err(err, -ENOMEM, "out of memory");
	for (int i = 0; i < argc; i++) {
		const char *a = opts->eal_argc > 0 ? opts->eal_argv[i] : "pyflow";

		argv[i] = strdup(a ? a : "");
		if (i > 0 && used < sizeof(args_txt))
			used += (size_t)snprintf(args_txt + used, sizeof(args_txt) - used, "%s%s", i > 1 ? " " : "", argv[i]);
	}
	eal_capture_begin(&capture);
	ret = rte_eal_init(argc, argv);
	reasons = eal_capture_end(&capture, ret < 0);
	if (ret < 0) {
		int e = rte_errno;

		eal_state = EAL_FAILED;
		ret = pf_err(err, e ? -e : -EINVAL, "backend dpdk: the EAL refused '%s': %s (%s); on a lab host: "
			     "-l 0-1 --no-huge -m 512 --file-prefix NAME --no-pci --vdev ...", args_txt,
			     reasons && *reasons ? reasons : "no reason given", e ? rte_strerror(e) : "bad arguments");
		free(reasons);
		return ret;
	}
	free(reasons);
	eal_state = EAL_UP;
	pf_info("EAL up: %u lcores, %u ethdev ports (%s)", rte_lcore_count(), rte_eth_dev_count_avail(), args_txt);
	return 0;
}

static void dpdk_close(pf_instance *inst);

/* PYFLOW_DPDK_RTE_FLOW=auto (default) | off | force: whether pipes are offered to the PMD's rte_flow. */
enum pfd_rte_flow_mode pfd_rte_flow_mode_from_env(void)
{
	const char *v = getenv("PYFLOW_DPDK_RTE_FLOW");

	if (!v || !*v || !strcmp(v, "auto"))
		return PFD_RTE_FLOW_AUTO;
	if (!strcmp(v, "off") || !strcmp(v, "0"))
		return PFD_RTE_FLOW_OFF;
	if (!strcmp(v, "force"))
		return PFD_RTE_FLOW_FORCE;
	pf_warn("PYFLOW_DPDK_RTE_FLOW=%s: expected auto, off or force; using auto", v);
	return PFD_RTE_FLOW_AUTO;
}

/* The primary's runtime files (/var/run/dpdk/PREFIX) are stale once the EAL is gone. The directory is
 * this primary's own: everything in it goes (which files there are depends on the memory mode). */
static void remove_runtime_dir(const char *dir)
{
	char path[PATH_MAX + 256];
	struct dirent *de;
	DIR *d;

	if (!dir || !*dir || rte_eal_process_type() != RTE_PROC_PRIMARY || !(d = opendir(dir)))
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
	closedir(d);
	if (rmdir(dir) && errno != ENOENT)
		pf_debug("dpdk runtime directory %s kept: %s", dir, strerror(errno));
}

static int dpdk_open(pf_instance *inst, const struct pf_instance_opts *opts, struct pf_error *err)
{
	struct pfd *d;
	int ret;

	ret = eal_init(opts, err);
	if (ret)
		return ret;
	d = calloc(1, sizeof(*d));
	if (!d)
		return pf_err(err, -ENOMEM, "out of memory");
	inst->priv = d;
	eal_owner = inst;
	d->inst = inst;
	d->max_entries = opts->max_entries ? opts->max_entries : PF_DEFAULT_MAX_ENTRIES;
	d->handler_lcore = RTE_MAX_LCORE;
	d->rte_flow_mode = pfd_rte_flow_mode_from_env();
	memset(d->dpdk_to_port, 0xff, sizeof(d->dpdk_to_port));
	ret = pfd_tables_init(d, err);
	if (ret) {
		dpdk_close(inst);
		return ret;
	}
	pfd_telemetry_register(d);
	return 0;
}

static void dpdk_close(pf_instance *inst)
{
	struct pfd *d = pfd_of(inst);

	if (!d)
		return;
	pfd_rte_flow_remove(d);
	if (d->started)
		pfd_lcores_stop(d);
	pfd_telemetry_unregister(d);
	for (uint32_t p = 0; p < PF_MAX_PORTS; p++)
		if (d->ports[p].in_use)
			rte_eth_dev_close(d->ports[p].dpdk_port);
	if (d->learner)
		pf_learner_free(d->learner);
	rte_ring_free(d->miss_ring);
	pfd_tables_free(d);
	rte_mempool_free(d->pool);
	rte_mempool_free(d->aux_pool);
	free(d);
	inst->priv = NULL;
	eal_owner = NULL;
	if (eal_state == EAL_UP) {
		char dir[PATH_MAX];

		snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
		rte_eal_cleanup();
		eal_state = EAL_CLEANED;
		remove_runtime_dir(dir);
		pf_info("%s: ports closed, EAL cleaned up, %s removed", inst->name, dir);
	}
}

static int dpdk_info(pf_instance *inst, struct pf_instance_info *info, struct pf_error *err)
{
	memset(info, 0, sizeof(*info));
	snprintf(info->mode_reason, sizeof(info->mode_reason), "%s", pfd_of(inst)->mode_reason);
	return 0;
}

static uint32_t nports_in_use(const struct pfd *d)
{
	uint32_t n = 0;

	for (uint32_t p = 0; p < PF_MAX_PORTS; p++)
		n += d->ports[p].in_use;
	return n;
}

/* Pool sized from the ports and lcores: every rx/tx ring full, every lcore's cache, the miss ring. */
static int create_pool(struct pfd *d, struct pf_error *err)
{
	unsigned int nl = rte_lcore_count();
	unsigned int n = nports_in_use(d) * (nl * PFD_RX_DESC + (nl + 1) * PFD_TX_DESC) + nl * (256 + PFD_BURST * 4) +
			 PFD_MISS_RING + 4096;
	char name[RTE_MEMPOOL_NAMESIZE];

	if (d->pool)
		return 0;
	snprintf(name, sizeof(name), "pfd_pool_%.12s", d->inst->name);
	d->pool = rte_pktmbuf_pool_create(name, n, 256, RTE_ALIGN(sizeof(struct pfd_mbuf_meta), RTE_MBUF_PRIV_ALIGN),
					  RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (!d->pool)
		return pf_err(err, -ENOMEM, "backend dpdk: cannot create a pool of %u mbufs (%u MB): %s; give EAL more "
			      "memory (-m)", n, (unsigned int)((uint64_t)n * (RTE_MBUF_DEFAULT_BUF_SIZE + 192) >> 20),
			      rte_strerror(rte_errno));
	return 0;
}

static int dpdk_start(pf_instance *inst, struct pf_error *err)
{
	struct pfd *d = pfd_of(inst);
	char name[RTE_RING_NAMESIZE];
	int ret;

	if (d->started)
		return 0;
	if (!nports_in_use(d))
		return pf_err(err, -EINVAL, "backend dpdk: no port is bound; bind ports before starting");
	if (!d->root_set)
		return pf_err(err, -EINVAL, "backend dpdk: no root pipe set");
	ret = create_pool(d, err);
	if (ret)
		return ret;
	if (!d->miss_ring) {
		snprintf(name, sizeof(name), "pfd_miss_%.12s", inst->name);
		d->miss_ring = rte_ring_create(name, PFD_MISS_RING, (int)rte_socket_id(), RING_F_SC_DEQ);
		if (!d->miss_ring)
			return pf_err(err, -ENOMEM, "backend dpdk: cannot create the miss ring: %s",
				      rte_strerror(rte_errno));
	}
	pfd_rte_flow_probe(d);
	ret = pfd_lcores_start(d, err);
	if (ret)
		return ret;
	/* rules need started ports; a refusal leaves the software pipes in charge */
	pfd_rte_flow_install(d);
	d->started = true;
	return 0;
}

static int dpdk_stop(pf_instance *inst, struct pf_error *err)
{
	struct pfd *d = pfd_of(inst);

	if (d->started) {
		pfd_rte_flow_remove(d);
		pfd_lcores_stop(d);
		d->started = false;
		/* the stop order, for whoever checks that a stop was clean */
		pf_info("%s: stopped: rte_flow rules removed, lcores and the miss handler joined, ports stopped",
			inst->name);
	}
	return 0;
}

static int dpdk_destroy(pf_instance *inst, struct pf_error *err)
{
	return dpdk_stop(inst, err);    /* nothing is pinned: a DPDK instance lives and dies with its process */
}

static int list_ports(char *buf, size_t len)
{
	uint16_t pid;
	size_t used = 0;

	buf[0] = 0;
	RTE_ETH_FOREACH_DEV(pid) {
		char name[RTE_ETH_NAME_MAX_LEN];

		if (rte_eth_dev_get_name_by_port(pid, name) == 0 && used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%u=%s", used ? ", " : "", pid, name);
	}
	return used ? 0 : snprintf(buf, len, "none: add --vdev or -a to the EAL arguments");
}

static int dpdk_port_set(pf_instance *inst, uint32_t port_id, const char *binding, const struct pf_port *port,
			 struct pf_error *err)
{
	struct pfd *d = pfd_of(inst);
	struct pfd_port *p = &d->ports[port_id];
	char avail[256];
	uint16_t dport;
	bool numeric = binding && *binding;

	for (const char *c = binding; numeric && *c; c++)
		numeric = isdigit((unsigned char)*c);
	if (!binding || !*binding) {
		dport = (uint16_t)port_id;
		if (!rte_eth_dev_is_valid_port(dport)) {
			list_ports(avail, sizeof(avail));
			return pf_err(err, -ENODEV, "port %u: no binding given and DPDK port %u does not exist "
				      "(available: %s)", port_id, port_id, avail);
		}
	} else if (numeric) {
		unsigned long v = strtoul(binding, NULL, 10);

		if (v >= RTE_MAX_ETHPORTS || !rte_eth_dev_is_valid_port((uint16_t)v)) {
			list_ports(avail, sizeof(avail));
			return pf_err(err, -ENODEV, "port %u: DPDK port %s does not exist (available: %s)", port_id,
				      binding, avail);
		}
		dport = (uint16_t)v;
	} else if (rte_eth_dev_get_port_by_name(binding, &dport)) {
		list_ports(avail, sizeof(avail));
		return pf_err(err, -ENODEV, "port %u: no DPDK device named '%s' (available: %s)", port_id, binding, avail);
	}
	if (d->dpdk_to_port[dport] != 0xffff && d->dpdk_to_port[dport] != port_id)
		return pf_err(err, -EBUSY, "port %u: DPDK port %u is already bound to port %u", port_id, dport,
			      d->dpdk_to_port[dport]);
	if (p->in_use && p->dpdk_port != dport && d->started)
		return pf_err(err, -EBUSY, "port %u: cannot rebind while running", port_id);
	if (port && (port->flags & PF_PORT_EGRESS_PIPE) && port->egress_pipe >= PF_MAX_PIPES)
		return pf_err(err, -ERANGE, "port %u: egress pipe %u out of range", port_id, port->egress_pipe);
	if (p->in_use && p->dpdk_port != dport)
		d->dpdk_to_port[p->dpdk_port] = 0xffff;
	if (port)
		p->cfg = *port;
	p->cfg.flags |= PF_PORT_IN_USE;
	p->dpdk_port = dport;
	rte_eth_dev_get_name_by_port(dport, p->name);
	d->dpdk_to_port[dport] = (uint16_t)port_id;
	rte_smp_wmb();
	p->in_use = true;
	return 0;
}

static int dpdk_pipe_set(pf_instance *inst, uint32_t pipe_id, const struct pf_pipe *pipe, const struct pf_fields *masks,
			 uint32_t nmasks, struct pf_error *err)
{
	return pfd_pipe_set(pfd_of(inst), pipe_id, pipe, masks, nmasks, err);
}

static int dpdk_root_set(pf_instance *inst, uint32_t pipe_id, struct pf_error *err)
{
	struct pfd *d = pfd_of(inst);

	if (pipe_id >= PF_MAX_PIPES || !(d->pipes[pipe_id].cfg.flags & PF_PIPE_IN_USE))
		return pf_err(err, -ENOENT, "root pipe %u is not defined", pipe_id);
	d->root_pipe = pipe_id;
	rte_smp_wmb();
	d->root_set = true;
	return 0;
}

static int dpdk_session_set(pf_instance *inst, uint32_t session_id, const struct pf_session *s, struct pf_error *err)
{
	struct pfd *d = pfd_of(inst);

	if (s->nmembers > PF_MAX_SESSION_MEMBERS)
		return pf_err(err, -ERANGE, "session %u: %u members, at most %u", session_id, s->nmembers,
			      PF_MAX_SESSION_MEMBERS);
	for (uint32_t i = 0; i < s->nmembers; i++)
		if (s->members[i].in_use && s->members[i].port >= PF_MAX_PORTS)
			return pf_err(err, -ERANGE, "session %u: member %u port %u out of range", session_id, i,
				      s->members[i].port);
	pthread_mutex_lock(&d->write_lock);
	d->sessions[session_id] = *s;
	pthread_mutex_unlock(&d->write_lock);
	return 0;
}

static int dpdk_entry_add(pf_instance *inst, uint32_t pipe_id, uint32_t mask_idx, uint32_t prefixlen,
			  const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err)
{
	return pfd_entry_install(pfd_of(inst), pipe_id, mask_idx, prefixlen, match, entry, err);
}

static int dpdk_entry_replace(pf_instance *inst, uint32_t entry_id, uint32_t pipe_id, uint32_t mask_idx,
			      uint32_t prefixlen, const struct pf_fields *match, struct pf_entry *entry,
			      struct pf_error *err)
{
	return pfd_entry_replace(pfd_of(inst), entry_id, pipe_id, mask_idx, prefixlen, match, entry, err);
}

static int dpdk_entry_del(pf_instance *inst, uint32_t entry_id, struct pf_error *err)
{
	return pfd_entry_remove(pfd_of(inst), entry_id, err);
}

static int dpdk_entry_list(pf_instance *inst, uint32_t pipe_id, struct pf_entry_info *out, uint32_t max,
			   uint32_t *count, struct pf_error *err)
{
	return pfd_entry_list(pfd_of(inst), pipe_id, out, max, count, err);
}

static int dpdk_learn_set(pf_instance *inst, const struct pf_learn *policy, struct pf_error *err)
{
	struct pfd *d = pfd_of(inst);
	int ret;

	if (policy->to_pipe >= PF_MAX_PIPES || !(d->pipes[policy->to_pipe].cfg.flags & PF_PIPE_IN_USE))
		return pf_err(err, -ENOENT, "miss policy: install pipe %u is not defined", policy->to_pipe);
	if (policy->from_pipe >= PF_MAX_PIPES || !(d->pipes[policy->from_pipe].cfg.flags & PF_PIPE_IN_USE))
		return pf_err(err, -ENOENT, "miss policy: pipe %u is not defined", policy->from_pipe);
	if (!d->learner) {
		d->learner = pf_learner_new(&pfd_learn_ops, d);
		if (!d->learner)
			return pf_err(err, -ENOMEM, "out of memory");
	}
	ret = pf_learner_set_mask(d->learner, policy->to_pipe, &d->pipes[policy->to_pipe].masks[0], err);
	if (!ret)
		ret = pf_learner_set_policy(d->learner, policy, err);
	if (!ret)
		d->have_policy = true;
	return ret;
}

static int dpdk_counters_entries(pf_instance *inst, const uint32_t *ids, uint32_t n, struct pf_counter *out,
				 struct pf_error *err)
{
	for (uint32_t i = 0; i < n; i++)
		pfd_counters_sum_entry(pfd_of(inst), ids[i], &out[i]);
	return 0;
}

static int dpdk_counters_pipe(pf_instance *inst, uint32_t pipe_id, struct pf_pipe_counter *out, struct pf_error *err)
{
	if (pipe_id >= PF_MAX_PIPES)
		return pf_err(err, -ERANGE, "pipe id %u out of range (max %u)", pipe_id, PF_MAX_PIPES - 1);
	pfd_counters_sum_pipe(pfd_of(inst), pipe_id, out);
	return 0;
}

static int dpdk_counters_port(pf_instance *inst, uint32_t port_id, struct pf_port_counter *out, struct pf_error *err)
{
	if (port_id >= PF_MAX_PORTS)
		return pf_err(err, -ERANGE, "port id %u out of range (max %u)", port_id, PF_MAX_PORTS - 1);
	pfd_counters_sum_port(pfd_of(inst), port_id, out);
	return 0;
}

static int dpdk_counters_dpi(pf_instance *inst, struct pf_dpi_counter *out, struct pf_error *err)
{
	struct pfd *d = pfd_of(inst);

	(void)err;
	memset(out, 0, sizeof(*out));
	for (int s = 0; s < PFD_NSLOTS; s++)
		pf_u64_add(out, &d->counters[s].dpi, sizeof(*out));
	return 0;
}

static int dpdk_miss_stats(pf_instance *inst, struct pf_miss_stats *out, struct pf_error *err)
{
	struct pfd *d = pfd_of(inst);

	memset(out, 0, sizeof(*out));
	if (d->learner)
		pf_learner_stats(d->learner, out);
	if (d->miss_ring)
		out->queue_depth = rte_ring_count(d->miss_ring);
	return 0;
}

static int dpdk_pipe_offload(pf_instance *inst, uint32_t pipe_id, uint32_t *offloaded, struct pf_error *err)
{
	(void)err;
	*offloaded = pfd_of(inst)->pipes[pipe_id].offloaded;
	return 0;
}

static int dpdk_entry_offload(pf_instance *inst, const uint32_t *ids, uint32_t n, uint8_t *offloaded,
			      struct pf_error *err)
{
	struct pfd *d = pfd_of(inst);

	for (uint32_t i = 0; i < n; i++) {
		if (ids[i] >= d->max_entries || !d->entries[ids[i]].in_use)
			return pf_err(err, -ENOENT, "entry %u is not installed", ids[i]);
		offloaded[i] = pfd_rte_flow_entry_offloaded(d, ids[i]);
	}
	return 0;
}

/* One frame through the software pipes in the calling thread; no port needs to be started.
 * With trace (pyflow trace): nothing is counted and the walk is recorded. */
static int dpdk_run_one(pf_instance *inst, uint32_t in_port, const void *frame, uint32_t len, void *out,
			uint32_t out_cap, struct pf_test_result *res, struct pf_trace *trace, struct pf_error *err)
{
	static pthread_mutex_t test_lock = PTHREAD_MUTEX_INITIALIZER;
	struct pfd *d = pfd_of(inst);
	struct pfd_outputs outs = { .n = 0 };
	struct rte_mbuf *m;
	char name[RTE_MEMPOOL_NAMESIZE];
	int ret = 0;

	if (in_port >= PF_MAX_PORTS)
		return pf_err(err, -ERANGE, "test_run: port %u out of range (max %u)", in_port, PF_MAX_PORTS - 1);
	if (!d->root_set)
		return pf_err(err, -EINVAL, "test_run: no root pipe set");
	pthread_mutex_lock(&test_lock);
	if (!d->aux_pool) {
		snprintf(name, sizeof(name), "pfd_aux_%.12s", inst->name);
		d->aux_pool = rte_pktmbuf_pool_create(name, 1023, 0,
						      RTE_ALIGN(sizeof(struct pfd_mbuf_meta), RTE_MBUF_PRIV_ALIGN),
						      RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
		if (!d->aux_pool) {
			ret = pf_err(err, -ENOMEM, "test_run: cannot create a pool: %s", rte_strerror(rte_errno));
			goto out;
		}
	}
	m = rte_pktmbuf_alloc(d->aux_pool);
	if (!m || len > rte_pktmbuf_tailroom(m)) {
		rte_pktmbuf_free(m);
		ret = pf_err(err, -EMSGSIZE, "test_run: frame of %u bytes does not fit an mbuf", len);
		goto out;
	}
	rte_memcpy(rte_pktmbuf_append(m, (uint16_t)len), frame, len);
	memset(res, 0, sizeof(*res));
	pfd_thread_slot = PFD_SLOT_CONTROL;
	pfd_rcu_reader_enter(d, PFD_SLOT_CONTROL);
	if (trace)
		pfd_pipeline_trace(d, PFD_SLOT_CONTROL, in_port, m, &outs, &res->verdict, trace);
	else
		pfd_pipeline_run(d, PFD_SLOT_CONTROL, in_port, PF_PATH_NORMAL, m, &outs, &res->verdict, false);
	pfd_rcu_reader_leave(d, PFD_SLOT_CONTROL);
	pfd_thread_slot = -1;
	res->retval = res->verdict.kind;
	/* the first output is the frame as it leaves; copies of sessions are counted in the verdict */
	if (outs.n) {
		uint32_t olen = rte_pktmbuf_pkt_len(outs.mbufs[0]);

		res->out_len = olen;
		if (out && out_cap) {
			uint32_t n = RTE_MIN(olen, out_cap);
			const void *p = rte_pktmbuf_read(outs.mbufs[0], 0, n, out);

			if (p && p != out)
				memcpy(out, p, n);
		}
		for (uint32_t i = 0; i < outs.n; i++) {
			struct pf_port_counter *c = &d->counters[PFD_SLOT_CONTROL].ports[outs.ports[i]];

			/* as if sent: the differential check compares tx counters too */
			if (!trace) {
				c->tx_packets++;
				c->tx_bytes += rte_pktmbuf_pkt_len(outs.mbufs[i]);
			}
			rte_pktmbuf_free(outs.mbufs[i]);
		}
	}
out:
	pthread_mutex_unlock(&test_lock);
	return ret;
}

static int dpdk_test_run(pf_instance *inst, uint32_t in_port, const void *frame, uint32_t len, void *out,
			 uint32_t out_cap, struct pf_test_result *res, struct pf_error *err)
{
	return dpdk_run_one(inst, in_port, frame, len, out, out_cap, res, NULL, err);
}

static int dpdk_trace_run(pf_instance *inst, uint32_t in_port, const void *frame, uint32_t len, void *out,
			  uint32_t out_cap, struct pf_test_result *res, struct pf_trace *trace, struct pf_error *err)
{
	if (!trace)
		return pf_err(err, -EINVAL, "trace: no trace record");
	if (in_port >= PF_MAX_PORTS || !pfd_of(inst)->ports[in_port].in_use)
		return pf_err(err, -ENODEV, "trace: port %u is not bound", in_port);
	return dpdk_run_one(inst, in_port, frame, len, out, out_cap, res, trace, err);
}

#else /* !PF_HAVE_DPDK */

static int dpdk_open(pf_instance *inst, const struct pf_instance_opts *opts, struct pf_error *err)
{
	return dpdk_available(err);
}

#endif

const struct pf_backend_ops pf_backend_dpdk = {
	.name = "dpdk",
	.available = dpdk_available,
	.open = dpdk_open,
#ifdef PF_HAVE_DPDK
	.dry = &pf_backend_dpdk_dry,
	.close = dpdk_close,
	.info = dpdk_info,
	.start = dpdk_start,
	.stop = dpdk_stop,
	.destroy = dpdk_destroy,
	.port_set = dpdk_port_set,
	.pipe_set = dpdk_pipe_set,
	.root_set = dpdk_root_set,
	.session_set = dpdk_session_set,
	.entry_add = dpdk_entry_add,
	.entry_del = dpdk_entry_del,
	.entry_replace = dpdk_entry_replace,
	.entry_list = dpdk_entry_list,
	.learn_set = dpdk_learn_set,
	.counters_entries = dpdk_counters_entries,
	.counters_pipe = dpdk_counters_pipe,
	.counters_port = dpdk_counters_port,
	.miss_stats = dpdk_miss_stats,
	.test_run = dpdk_test_run,
	.dscp_tc_set = pfd_dscp_tc_set,
	.trace_run = dpdk_trace_run,
	.counters_dpi = dpdk_counters_dpi,
	.pipe_offload = dpdk_pipe_offload,
	.entry_offload = dpdk_entry_offload,
	.describe = pfd_rte_flow_describe,
#endif
};
