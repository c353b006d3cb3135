// SPDX-License-Identifier: BSD-2-Clause
/*
 * pyflow trace on the ebpf backend, and the DPI counters.
 *
 * A trace is a BPF_PROG_RUN of the instance's own XDP program on its own maps,
 * with a pf_xdp_meta carrying PF_META_TRACE in the metadata area. The datapath
 * reads that flag where it already looks for resubmit metadata (live frames
 * carry none, so they pay nothing), counts nothing, stamps nothing, never hands
 * the frame to the miss handler and records each hop in the per-CPU trace_rec
 * map. The run is pinned to one CPU so that CPU's record is the one read back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "ebpf.h"

static int obj_map_fd(struct pf_ebpf *eb, const char *name, struct pf_error *err)
{
	struct bpf_map *map = bpf_object__find_map_by_name(eb->obj, name);
	int fd = map ? bpf_map__fd(map) : -1;

	if (fd < 0)
		return pf_err(err, -ENOENT, "%s: map %s missing from the datapath (an older build?)", eb->inst->name,
			      name);
	return fd;
}

static size_t stride_of(size_t size)
{
	return (size + 7) & ~(size_t)7;
}

int pf_ebpf_trace_run(pf_instance *inst, uint32_t in_port, const void *frame, uint32_t len, void *out,
		      uint32_t out_cap, struct pf_test_result *res, struct pf_trace *trace, struct pf_error *err)
{
	struct pf_ebpf *eb = inst->priv;
	struct pf_xdp_meta meta = { .magic = PF_XDP_META_MAGIC, .packet_path = PF_PATH_NORMAL, .flags = PF_META_TRACE,
				    .port = in_port };
	struct pf_verdict unset = { .kind = UINT32_MAX, .entry_id = UINT32_MAX };
	/* parse_result 1 = the program never got to parse (not one of its ports, nothing programmed) */
	struct pf_trace blank = { .port = UINT32_MAX, .parse_result = 1 };
	size_t vstride = stride_of(sizeof(struct pf_verdict)), tstride = stride_of(sizeof(struct pf_trace));
	struct xdp_md ctx = { 0 }, ctx_out = { 0 };
	int trace_fd, cpu, ret = 0;
	char *buf = NULL, *obuf = NULL, *vals = NULL;
	uint32_t zero = 0, meta_len;
	cpu_set_t old_set, one;
	LIBBPF_OPTS(bpf_test_run_opts, opts);

	if (in_port >= PF_MAX_PORTS || !eb->ports[in_port].in_use)
		return pf_err(err, -ENODEV, "trace: port %u is not bound to an interface", in_port);
	if (!frame || len < 14)
		return pf_err(err, -EINVAL, "trace: frame of %u bytes, at least an Ethernet header (14) is needed", len);
	if (len > 9000)
		return pf_err(err, -EMSGSIZE, "trace: frame of %u bytes, at most 9000", len);
	trace_fd = obj_map_fd(eb, "trace_rec", err);
	if (trace_fd < 0)
		return trace_fd;
	buf = malloc(sizeof(meta) + len);
	obuf = malloc(sizeof(meta) + len + 512);
	vals = calloc(eb->ncpus, tstride > vstride ? tstride : vstride);
	if (!buf || !obuf || !vals) {
		ret = pf_err(err, -ENOMEM, "out of memory");
		goto out;
	}
	/* arm the verdict and blank the trace record on every CPU */
	for (int c = 0; c < eb->ncpus; c++)
		memcpy(vals + c * vstride, &unset, sizeof(unset));
	bpf_map_update_elem(eb->map_verdict, &zero, vals, BPF_ANY);
	for (int c = 0; c < eb->ncpus; c++)
		memcpy(vals + c * tstride, &blank, sizeof(blank));
	bpf_map_update_elem(trace_fd, &zero, vals, BPF_ANY);

	memcpy(buf, &meta, sizeof(meta));
	memcpy(buf + sizeof(meta), frame, len);
	ctx.data = sizeof(meta);
	ctx.data_end = sizeof(meta) + len;
	ctx.ingress_ifindex = eb->ports[in_port].ifindex;
	opts.data_in = buf;
	opts.data_size_in = sizeof(meta) + len;
	opts.data_out = obuf;
	opts.data_size_out = sizeof(meta) + len + 512;
	opts.ctx_in = &ctx;
	opts.ctx_size_in = sizeof(ctx);
	opts.ctx_out = &ctx_out;
	opts.ctx_size_out = sizeof(ctx_out);

	sched_getaffinity(0, sizeof(old_set), &old_set);
	cpu = sched_getcpu();
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	sched_setaffinity(0, sizeof(one), &one);
	ret = bpf_prog_test_run_opts(eb->prog_fd, &opts) ? -errno : 0;
	cpu = sched_getcpu();
	sched_setaffinity(0, sizeof(old_set), &old_set);
	if (ret) {
		ret = pf_err(err, ret, "trace on port %u: %s", in_port, strerror(-ret));
		goto out;
	}
	memset(res, 0, sizeof(*res));
	res->retval = opts.retval;
	/* data_out starts at data_meta: skip whatever metadata the program left */
	meta_len = ctx_out.data >= ctx_out.data_meta ? ctx_out.data - ctx_out.data_meta : 0;
	if (meta_len > opts.data_size_out)
		meta_len = opts.data_size_out;
	res->out_len = opts.data_size_out - meta_len;
	if (out && out_cap)
		memcpy(out, obuf + meta_len, res->out_len < out_cap ? res->out_len : out_cap);
	res->verdict = unset;
	if (cpu >= 0 && cpu < eb->ncpus && !bpf_map_lookup_elem(eb->map_verdict, &zero, vals))
		memcpy(&res->verdict, vals + cpu * vstride, sizeof(res->verdict));
	if (trace) {
		*trace = blank;
		if (cpu >= 0 && cpu < eb->ncpus && !bpf_map_lookup_elem(trace_fd, &zero, vals))
			memcpy(trace, vals + cpu * tstride, sizeof(*trace));
	}
out:
	free(buf);
	free(obuf);
	free(vals);
	return ret;
}

int pf_ebpf_counters_dpi(pf_instance *inst, struct pf_dpi_counter *out, struct pf_error *err)
{
	struct pf_ebpf *eb = inst->priv;
	size_t stride = stride_of(sizeof(*out));
	uint32_t zero = 0;
	char *vals;
	int fd = obj_map_fd(eb, "dpi_counters", err);

	if (fd < 0)
		return fd;
	vals = calloc(eb->ncpus, stride);
	if (!vals)
		return pf_err(err, -ENOMEM, "out of memory");
	if (bpf_map_lookup_elem(fd, &zero, vals)) {
		int ret = -errno;

		free(vals);
		return pf_err(err, ret, "dpi counters: %s", strerror(-ret));
	}
	memset(out, 0, sizeof(*out));
	for (int cpu = 0; cpu < eb->ncpus; cpu++)
		pf_u64_add(out, vals + cpu * stride, sizeof(*out));
	free(vals);
	return 0;
}
