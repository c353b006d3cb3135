// SPDX-License-Identifier: BSD-2-Clause
/* Instance lifecycle, backend dispatch, errors and the one log path into Python. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

static pf_log_fn log_handler;
static int log_threshold = PF_LOG_INFO;
static int sdk_threshold = PF_LOG_WARNING;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

const char *pf_version(void)
{
	return PYFLOW_VERSION;
}

void pf_log_set_handler(pf_log_fn fn, int level)
{
	pthread_mutex_lock(&log_lock);
	log_handler = fn;
	log_threshold = level;
	pthread_mutex_unlock(&log_lock);
}

void pf_log_set_sdk_level(int level)
{
	sdk_threshold = level;
}

int pf_log_enabled(int level)
{
	return level <= log_threshold && log_threshold > PF_LOG_DISABLE;
}

int pf_log_sdk_enabled(int level)
{
	return level <= sdk_threshold && sdk_threshold > PF_LOG_DISABLE;
}

static void log_emit(int level, const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* One lock so lines from handler threads never interleave in Python. */
	pthread_mutex_lock(&log_lock);
	if (log_handler)
		log_handler(level, buf);
	else
		fprintf(stderr, "pyflow: %s\n", buf);
	pthread_mutex_unlock(&log_lock);
}

void pf_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (!pf_log_enabled(level))
		return;
	va_start(ap, fmt);
	log_emit(level, fmt, ap);
	va_end(ap);
}

void pf_log_sdk(int level, const char *fmt, ...)
{
	va_list ap;

	if (!pf_log_sdk_enabled(level))
		return;
	va_start(ap, fmt);
	log_emit(level | PF_LOG_FROM_SDK, fmt, ap);
	va_end(ap);
}

int pf_err(struct pf_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (code > 0)
		code = -code;
	if (err) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

void pf_err_batch_index(struct pf_error *err, uint32_t index, uint32_t n)
{
	char msg[PF_ERROR_MSG_LEN];

	if (!err)
		return;
	snprintf(msg, sizeof(msg), "entry %u of %u: %s", index, n, err->msg);
	memcpy(err->msg, msg, sizeof(msg));
}

/* The backend called name, if it is built in and usable here (else -errno and err). */
static int backend_get(const char *name, const struct pf_backend_ops **out, struct pf_error *err)
{
	static const struct pf_backend_ops *all[] = { &pf_backend_ebpf, &pf_backend_dpdk, &pf_backend_doca };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (name && !strcmp(all[i]->name, name)) {
			*out = all[i];
			return all[i]->available ? all[i]->available(err) : 0;
		}
	return pf_err(err, -EINVAL, "unknown backend '%s' (expected ebpf, dpdk or doca)", name ? name : "");
}

int pf_backend_available(const char *backend, struct pf_error *err)
{
	const struct pf_backend_ops *ops;

	return backend_get(backend, &ops, err);
}

int pf_instance_open(const struct pf_instance_opts *opts, pf_instance **out, struct pf_error *err)
{
	const struct pf_backend_ops *ops = NULL;
	pf_instance *inst;
	int ret;

	if (!opts || !out)
		return pf_err(err, -EINVAL, "pf_instance_open: opts and out are required");
	ret = backend_get(opts->backend, &ops, err);
	/* a dry run renders what the backend would do: it needs no SDK or device */
	if (ret && !(ops && (opts->flags & PF_INST_DRY)))
		return ret;
	/* dpdk builds its rte_flow rules without an EAL, ebpf opens its objects without loading them */
	if ((opts->flags & PF_INST_DRY) && ops->dry)
		ops = ops->dry;
	inst = calloc(1, sizeof(*inst));
	if (!inst)
		return pf_err(err, -ENOMEM, "out of memory");
	inst->ops = ops;
	inst->dry = !!(opts->flags & PF_INST_DRY);
	snprintf(inst->name, sizeof(inst->name), "%s", opts->name ? opts->name : "default");
	ret = ops->open(inst, opts, err);
	if (ret) {
		free(inst);
		return ret;
	}
	*out = inst;
	return 0;
}

void pf_instance_close(pf_instance *inst)
{
	if (!inst)
		return;
	if (inst->ops->close)
		inst->ops->close(inst);
	free(inst);
}

/* Dispatch to the backend, or say plainly that it cannot do this. */
#define DISPATCH(op, ...)                                                             \
	do {                                                                          \
		if (!inst)                                                            \
			return pf_err(err, -EINVAL, "%s: no instance", #op);          \
		if (!inst->ops->op)                                                   \
			return pf_err(err, -EOPNOTSUPP, "backend %s does not support %s", \
				      inst->ops->name, #op);                          \
		return inst->ops->op(inst, __VA_ARGS__);                              \
	} while (0)

int pf_instance_info_get(pf_instance *inst, struct pf_instance_info *info, struct pf_error *err)
{
	DISPATCH(info, info, err);
}

int pf_instance_start(pf_instance *inst, struct pf_error *err)
{
	DISPATCH(start, err);
}

int pf_instance_stop(pf_instance *inst, struct pf_error *err)
{
	DISPATCH(stop, err);
}

int pf_instance_destroy(pf_instance *inst, struct pf_error *err)
{
	DISPATCH(destroy, err);
}

int pf_port_set(pf_instance *inst, uint32_t port_id, const char *binding, const struct pf_port *port, struct pf_error *err)
{
	if (port_id >= PF_MAX_PORTS)
		return pf_err(err, -ERANGE, "port id %u out of range (max %u)", port_id, PF_MAX_PORTS - 1);
	DISPATCH(port_set, port_id, binding, port, err);
}

int pf_pipe_set(pf_instance *inst, uint32_t pipe_id, const struct pf_pipe *pipe, const struct pf_fields *masks, uint32_t nmasks, struct pf_error *err)
{
	if (pipe_id >= PF_MAX_PIPES)
		return pf_err(err, -ERANGE, "pipe id %u out of range (max %u)", pipe_id, PF_MAX_PIPES - 1);
	if (nmasks > PF_MAX_MASKS)
		return pf_err(err, -ERANGE, "pipe %u: %u distinct masks, at most %u", pipe_id, nmasks, PF_MAX_MASKS);
	DISPATCH(pipe_set, pipe_id, pipe, masks, nmasks, err);
}

int pf_root_set(pf_instance *inst, uint32_t pipe_id, struct pf_error *err)
{
	DISPATCH(root_set, pipe_id, err);
}

int pf_pipe_name_set(pf_instance *inst, uint32_t pipe_id, const char *name, struct pf_error *err)
{
	if (pipe_id >= PF_MAX_PIPES)
		return pf_err(err, -ERANGE, "pipe id %u out of range (max %u)", pipe_id, PF_MAX_PIPES - 1);
	if (inst && !inst->ops->pipe_name_set)
		return 0;       /* names are optional metadata */
	DISPATCH(pipe_name_set, pipe_id, name ? name : "", err);
}

int pf_instance_describe(pf_instance *inst, char *buf, uint32_t len, uint32_t *needed, struct pf_error *err)
{
	DISPATCH(describe, buf, len, needed, err);
}

int pf_session_set(pf_instance *inst, uint32_t session_id, const struct pf_session *session, struct pf_error *err)
{
	if (session_id >= PF_MAX_SESSIONS)
		return pf_err(err, -ERANGE, "session id %u out of range (max %u)", session_id, PF_MAX_SESSIONS - 1);
	DISPATCH(session_set, session_id, session, err);
}

int pf_entry_add(pf_instance *inst, uint32_t pipe_id, uint32_t mask_idx, uint32_t prefixlen, const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err)
{
	DISPATCH(entry_add, pipe_id, mask_idx, prefixlen, match, entry, err);
}

int pf_entry_replace(pf_instance *inst, uint32_t entry_id, uint32_t pipe_id, uint32_t mask_idx, uint32_t prefixlen,
		     const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err)
{
	DISPATCH(entry_replace, entry_id, pipe_id, mask_idx, prefixlen, match, entry, err);
}

int pf_entry_add_batch(pf_instance *inst, struct pf_entry_req *reqs, uint32_t n, uint32_t *added, struct pf_error *err)
{
	uint32_t done = 0;
	int ret = 0;

	if (added)
		*added = 0;
	if (!inst)
		return pf_err(err, -EINVAL, "entry_add_batch: no instance");
	if (n && !reqs)
		return pf_err(err, -EINVAL, "entry_add_batch: %u entries but no array", n);
	for (uint32_t i = 0; i < n; i++)
		reqs[i].result = -ECANCELED;
	if (inst->ops->entry_add_batch)
		return inst->ops->entry_add_batch(inst, reqs, n, added, err);
	if (!inst->ops->entry_add)
		return pf_err(err, -EOPNOTSUPP, "backend %s does not support entry_add", inst->ops->name);
	/* backends without a batched write: the same contract, one entry at a time */
	for (; done < n; done++) {
		struct pf_entry_req *r = &reqs[done];

		ret = inst->ops->entry_add(inst, r->pipe, r->mask_idx, r->prefixlen, &r->match, &r->entry, err);
		r->result = ret;
		if (ret) {
			pf_err_batch_index(err, done, n);
			break;
		}
	}
	if (added)
		*added = done;
	return ret;
}

int pf_entry_del(pf_instance *inst, uint32_t entry_id, struct pf_error *err)
{
	DISPATCH(entry_del, entry_id, err);
}

int pf_entry_list(pf_instance *inst, uint32_t pipe_id, struct pf_entry_info *out, uint32_t max, uint32_t *count, struct pf_error *err)
{
	DISPATCH(entry_list, pipe_id, out, max, count, err);
}

/* A dry instance's plan holds tables and rules; miss policies and the DSCP map change neither,
 * so a dry backend leaves them out and they are accepted as they are. */
#define DRY_ACCEPTS(op)                                          \
	do {                                                     \
		if (inst && inst->dry && !inst->ops->op)         \
			return 0;                                \
	} while (0)

int pf_learn_set(pf_instance *inst, const struct pf_learn *policy, struct pf_error *err)
{
	DRY_ACCEPTS(learn_set);
	DISPATCH(learn_set, policy, err);
}

int pf_counters_entries(pf_instance *inst, const uint32_t *ids, uint32_t n, struct pf_counter *out, struct pf_error *err)
{
	DISPATCH(counters_entries, ids, n, out, err);
}

int pf_counters_pipe(pf_instance *inst, uint32_t pipe_id, struct pf_pipe_counter *out, struct pf_error *err)
{
	DISPATCH(counters_pipe, pipe_id, out, err);
}

int pf_counters_port(pf_instance *inst, uint32_t port_id, struct pf_port_counter *out, struct pf_error *err)
{
	DISPATCH(counters_port, port_id, out, err);
}

int pf_miss_stats_get(pf_instance *inst, struct pf_miss_stats *out, struct pf_error *err)
{
	DISPATCH(miss_stats, out, err);
}

int pf_test_run(pf_instance *inst, uint32_t in_port, const void *frame, uint32_t len, void *out, uint32_t out_cap, struct pf_test_result *res, struct pf_error *err)
{
	DISPATCH(test_run, in_port, frame, len, out, out_cap, res, err);
}

int pf_trace_run(pf_instance *inst, uint32_t in_port, const void *frame, uint32_t len, void *out, uint32_t out_cap, struct pf_test_result *res, struct pf_trace *trace, struct pf_error *err)
{
	DISPATCH(trace_run, in_port, frame, len, out, out_cap, res, trace, err);
}

int pf_counters_dpi(pf_instance *inst, struct pf_dpi_counter *out, struct pf_error *err)
{
	DISPATCH(counters_dpi, out, err);
}

/* doca creates every pipe and entry in DOCA Flow; ebpf runs XDP in software */
static uint32_t offload_default(pf_instance *inst)
{
	return strcmp(inst->ops->name, "doca") == 0;
}

int pf_pipe_offload_get(pf_instance *inst, uint32_t pipe_id, uint32_t *offloaded, struct pf_error *err)
{
	if (!inst || !offloaded)
		return pf_err(err, -EINVAL, "pipe_offload: no instance or output");
	if (pipe_id >= PF_MAX_PIPES)
		return pf_err(err, -ERANGE, "pipe id %u out of range (max %u)", pipe_id, PF_MAX_PIPES - 1);
	if (!inst->ops->pipe_offload) {
		*offloaded = offload_default(inst);
		return 0;
	}
	return inst->ops->pipe_offload(inst, pipe_id, offloaded, err);
}

int pf_entry_offload_get(pf_instance *inst, const uint32_t *entry_ids, uint32_t n, uint8_t *offloaded,
			 struct pf_error *err)
{
	if (!inst || (n && (!entry_ids || !offloaded)))
		return pf_err(err, -EINVAL, "entry_offload: no instance or arrays");
	if (!inst->ops->entry_offload) {
		memset(offloaded, (int)offload_default(inst), n);
		return 0;
	}
	return inst->ops->entry_offload(inst, entry_ids, n, offloaded, err);
}

int pf_capture_start(pf_instance *inst, const struct pf_capture_cfg *cfg, const char *path, uint32_t format, uint64_t max_frames, uint64_t duration_ms, struct pf_error *err)
{
	if (!path || !*path)
		return pf_err(err, -EINVAL, "capture: no output path");
	DISPATCH(capture_start, cfg, path, format, max_frames, duration_ms, err);
}

int pf_capture_stats_get(pf_instance *inst, struct pf_capture_stats *out, struct pf_error *err)
{
	DISPATCH(capture_stats, out, err);
}

int pf_capture_stop(pf_instance *inst, struct pf_capture_stats *out, struct pf_error *err)
{
	DISPATCH(capture_stop, out, err);
}

int pf_dscp_tc_set(pf_instance *inst, const uint8_t *map, struct pf_error *err)
{
	if (!map)
		return pf_err(err, -EINVAL, "dscp_tc_set: no map");
	DRY_ACCEPTS(dscp_tc_set);
	DISPATCH(dscp_tc_set, map, err);
}
