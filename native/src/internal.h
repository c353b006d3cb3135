/* SPDX-License-Identifier: BSD-2-Clause */
/* Private to the C core: the backend vtable, the instance, error and log helpers. */
#ifndef PYFLOW_INTERNAL_H
#define PYFLOW_INTERNAL_H

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include "pyflow/pyflow.h"

#ifndef PYFLOW_VERSION
#define PYFLOW_VERSION "0.0.0-dev"
#endif

struct pf_backend_ops {
	const char *name;
	/* optional: the ops of a PF_INST_DRY instance (pyflow plan), when not these */
	const struct pf_backend_ops *dry;
	int (*available)(struct pf_error *err);
	int (*open)(pf_instance *inst, const struct pf_instance_opts *opts, struct pf_error *err);
	void (*close)(pf_instance *inst);
	int (*info)(pf_instance *inst, struct pf_instance_info *info, struct pf_error *err);
	int (*start)(pf_instance *inst, struct pf_error *err);
	int (*stop)(pf_instance *inst, struct pf_error *err);
	int (*destroy)(pf_instance *inst, struct pf_error *err);
	int (*port_set)(pf_instance *inst, uint32_t port_id, const char *binding, const struct pf_port *port, struct pf_error *err);
	int (*pipe_set)(pf_instance *inst, uint32_t pipe_id, const struct pf_pipe *pipe, const struct pf_fields *masks, uint32_t nmasks, struct pf_error *err);
	int (*root_set)(pf_instance *inst, uint32_t pipe_id, struct pf_error *err);
	/* optional: the pipe's name (core.c: 0 without it) */
	int (*pipe_name_set)(pf_instance *inst, uint32_t pipe_id, const char *name, struct pf_error *err);
	/* optional: pf_instance_describe */
	int (*describe)(pf_instance *inst, char *buf, uint32_t len, uint32_t *needed, struct pf_error *err);
	int (*session_set)(pf_instance *inst, uint32_t session_id, const struct pf_session *s, struct pf_error *err);
	int (*entry_add)(pf_instance *inst, uint32_t pipe_id, uint32_t mask_idx, uint32_t prefixlen, const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err);
	/* optional: pf_entry_add_batch's contract; without it core.c calls entry_add in a loop */
	int (*entry_add_batch)(pf_instance *inst, struct pf_entry_req *reqs, uint32_t n, uint32_t *added, struct pf_error *err);
	int (*entry_del)(pf_instance *inst, uint32_t entry_id, struct pf_error *err);
	int (*entry_replace)(pf_instance *inst, uint32_t entry_id, uint32_t pipe_id, uint32_t mask_idx,
			     uint32_t prefixlen, const struct pf_fields *match, struct pf_entry *entry,
			     struct pf_error *err);
	int (*entry_list)(pf_instance *inst, uint32_t pipe_id, struct pf_entry_info *out, uint32_t max, uint32_t *count, struct pf_error *err);
	int (*learn_set)(pf_instance *inst, const struct pf_learn *policy, struct pf_error *err);
	int (*counters_entries)(pf_instance *inst, const uint32_t *ids, uint32_t n, struct pf_counter *out, struct pf_error *err);
	int (*counters_pipe)(pf_instance *inst, uint32_t pipe_id, struct pf_pipe_counter *out, struct pf_error *err);
	int (*counters_port)(pf_instance *inst, uint32_t port_id, struct pf_port_counter *out, struct pf_error *err);
	int (*miss_stats)(pf_instance *inst, struct pf_miss_stats *out, struct pf_error *err);
	int (*test_run)(pf_instance *inst, uint32_t in_port, const void *frame, uint32_t len, void *out, uint32_t out_cap, struct pf_test_result *res, struct pf_error *err);
	int (*trace_run)(pf_instance *inst, uint32_t in_port, const void *frame, uint32_t len, void *out, uint32_t out_cap, struct pf_test_result *res, struct pf_trace *trace, struct pf_error *err);
	int (*counters_dpi)(pf_instance *inst, struct pf_dpi_counter *out, struct pf_error *err);
	/* optional: without them the core answers doca 1 (all in DOCA Flow), any other backend 0 */
	int (*pipe_offload)(pf_instance *inst, uint32_t pipe_id, uint32_t *offloaded, struct pf_error *err);
	int (*entry_offload)(pf_instance *inst, const uint32_t *ids, uint32_t n, uint8_t *offloaded, struct pf_error *err);
	int (*capture_start)(pf_instance *inst, const struct pf_capture_cfg *cfg, const char *path, uint32_t format, uint64_t max_frames, uint64_t duration_ms, struct pf_error *err);
	int (*capture_stats)(pf_instance *inst, struct pf_capture_stats *out, struct pf_error *err);
	int (*capture_stop)(pf_instance *inst, struct pf_capture_stats *out, struct pf_error *err);
	int (*dscp_tc_set)(pf_instance *inst, const uint8_t *map, struct pf_error *err);
};

struct pf_instance {
	const struct pf_backend_ops *ops;
	void *priv;             /* backend state */
	char name[64];
	uint8_t dry;            /* PF_INST_DRY: a plan, nothing installed */
};

/* The unsigned integer of width 1, 2, 4 or 8 bytes at p: unaligned, host byte order. */
static inline uint64_t pf_load_uint(const void *p, unsigned width)
{
	uint64_t v8;
	uint32_t v4;
	uint16_t v2;

	switch (width) {
	case 8: memcpy(&v8, p, 8); return v8;
	case 4: memcpy(&v4, p, 4); return v4;
	case 2: memcpy(&v2, p, 2); return v2;
	default: return *(const uint8_t *)p;
	}
}

/* Fill err (if not NULL) and return code (a negative errno). */
int pf_err(struct pf_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefix err's message with "entry I of N: " (batch calls say which entry failed). */
void pf_err_batch_index(struct pf_error *err, uint32_t index, uint32_t n);
void pf_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int pf_log_enabled(int level);
/* a message from an SDK (libbpf, DPDK, DOCA), filtered by the SDK log level */
void pf_log_sdk(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int pf_log_sdk_enabled(int level);

/* CLOCK_MONOTONIC in ns: the clock of entries' last-seen stamps and of the miss handlers */
static inline uint64_t pf_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* sum += v, for counter structs made only of uint64_t fields (per-CPU / per-lcore copies) */
static inline void pf_u64_add(void *sum, const void *v, size_t size)
{
	uint64_t *s = sum;
	const uint64_t *a = v;

	for (size_t i = 0; i < size / sizeof(uint64_t); i++)
		s[i] += a[i];
}

#define pf_error_log(...) pf_log(PF_LOG_ERROR, __VA_ARGS__)
#define pf_warn(...) pf_log(PF_LOG_WARNING, __VA_ARGS__)
#define pf_info(...) pf_log(PF_LOG_INFO, __VA_ARGS__)
#define pf_debug(...) pf_log(PF_LOG_DEBUG, __VA_ARGS__)

extern const struct pf_backend_ops pf_backend_ebpf;
extern const struct pf_backend_ops pf_backend_dpdk;
extern const struct pf_backend_ops pf_backend_doca;

#endif
