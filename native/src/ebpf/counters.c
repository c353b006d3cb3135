// SPDX-License-Identifier: BSD-2-Clause
/* Counters of the ebpf backend: per-CPU arrays summed in user space (entries, pipes, ports). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "ebpf/ebpf.h"
#include "pyflow/packet.h"


size_t pf_ebpf_percpu_stride(size_t value_size)
{
	return (value_size + 7) & ~(size_t)7;
}

/* Sum ncpus copies of a struct made only of uint64_t fields. */
int pf_ebpf_percpu_sum(struct pf_ebpf *eb, int fd, uint32_t key, void *out, size_t size)
{
	size_t stride = pf_ebpf_percpu_stride(size);
	char *vals;
	int ret;

	vals = calloc(eb->ncpus, stride);
	if (!vals)
		return -ENOMEM;
	ret = bpf_map_lookup_elem(fd, &key, vals);
	if (ret) {
		ret = -errno;
		free(vals);
		return ret;
	}
	memset(out, 0, size);
	for (int cpu = 0; cpu < eb->ncpus; cpu++)
		pf_u64_add(out, vals + cpu * stride, size);
	free(vals);
	return 0;
}

int pf_ebpf_percpu_fill(struct pf_ebpf *eb, int fd, uint32_t key, const void *value, size_t size)
{
	size_t stride = pf_ebpf_percpu_stride(size);
	char *vals;
	int ret;

	vals = calloc(eb->ncpus, stride);
	if (!vals)
		return -ENOMEM;
	for (int cpu = 0; cpu < eb->ncpus; cpu++)
		memcpy(vals + cpu * stride, value, size);
	ret = bpf_map_update_elem(fd, &key, vals, BPF_ANY) ? -errno : 0;
	free(vals);
	return ret;
}

int pf_ebpf_counters_entries(pf_instance *inst, const uint32_t *ids, uint32_t n, struct pf_counter *out,
				 struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);
	int ret;

	for (uint32_t i = 0; i < n; i++) {
		if (ids[i] >= eb->max_entries) {
			memset(&out[i], 0, sizeof(out[i]));
			continue;
		}
		ret = pf_ebpf_percpu_sum(eb, eb->map_entry_counters, ids[i], &out[i], sizeof(out[i]));
		if (ret)
			return pf_err(err, ret, "entry %u counters: %s", ids[i], strerror(-ret));
	}
	return 0;
}

/* The summed counters of one pipe or port ("what" names it in errors). */
static int counters_read(struct pf_ebpf *eb, int fd, const char *what, uint32_t id, uint32_t max, void *out,
			 size_t size, struct pf_error *err)
{
	int ret;

	if (id >= max)
		return pf_err(err, -ERANGE, "%s id %u out of range", what, id);
	ret = pf_ebpf_percpu_sum(eb, fd, id, out, size);
	return ret ? pf_err(err, ret, "%s %u counters: %s", what, id, strerror(-ret)) : 0;
}

int pf_ebpf_counters_pipe(pf_instance *inst, uint32_t pipe_id, struct pf_pipe_counter *out,
			      struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);

	return counters_read(eb, eb->map_pipe_counters, "pipe", pipe_id, PF_MAX_PIPES, out, sizeof(*out), err);
}

int pf_ebpf_counters_port(pf_instance *inst, uint32_t port_id, struct pf_port_counter *out,
			      struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);

	return counters_read(eb, eb->map_port_counters, "port", port_id, PF_MAX_PORTS, out, sizeof(*out), err);
}

/* Run on one CPU so that CPU's slot of the per-CPU verdict is the one to read. */
