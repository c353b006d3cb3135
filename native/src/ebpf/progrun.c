// SPDX-License-Identifier: BSD-2-Clause
/* Frames through the loaded program with BPF_PROG_RUN: test runs (a verdict without a wire) and
 * resubmits (live frames re-entering the root pipe as if received on their port). */
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
#include <net/if.h>
#include <linux/if_link.h>

int pf_ebpf_test_run(pf_instance *inst, uint32_t in_port, const void *frame, uint32_t len, void *out,
			 uint32_t out_cap, struct pf_test_result *res, struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);
	struct xdp_md ctx = { 0 };
	struct pf_verdict unset = { .kind = UINT32_MAX, .entry_id = UINT32_MAX };
	size_t stride = pf_ebpf_percpu_stride(sizeof(struct pf_verdict));
	cpu_set_t old_set, one;
	char *verdicts, *scratch = NULL;
	uint32_t zero = 0;
	int cpu, ret;
	LIBBPF_OPTS(bpf_test_run_opts, opts);

	if (in_port >= PF_MAX_PORTS || !eb->ports[in_port].in_use)
		return pf_err(err, -ENODEV, "test run: port %u is not bound to an interface", in_port);
	if (!frame || len < 14)
		return pf_err(err, -EINVAL, "test run: frame of %u bytes, BPF_PROG_RUN needs at least 14 bytes", len);
	verdicts = calloc(eb->ncpus, stride);
	if (!out || !out_cap) {
		out_cap = len + 256;
		out = scratch = malloc(out_cap);
	}
	if (!verdicts || !out) {
		free(verdicts);
		free(scratch);
		return pf_err(err, -ENOMEM, "out of memory");
	}
	pf_ebpf_percpu_fill(eb, eb->map_verdict, 0, &unset, sizeof(unset));

	ctx.data_end = len;
	ctx.ingress_ifindex = eb->ports[in_port].ifindex;
	opts.data_in = frame;
	opts.data_size_in = len;
	opts.data_out = out;
	opts.data_size_out = out_cap;
	opts.ctx_in = &ctx;
	opts.ctx_size_in = sizeof(ctx);

	sched_getaffinity(0, sizeof(old_set), &old_set);
	cpu = sched_getcpu();
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	sched_setaffinity(0, sizeof(one), &one);
	ret = bpf_prog_test_run_opts(eb->prog_fd, &opts);
	if (ret)
		ret = -errno;
	cpu = sched_getcpu();
	sched_setaffinity(0, sizeof(old_set), &old_set);
	if (ret) {
		free(verdicts);
		free(scratch);
		return pf_err(err, ret, "test run on port %u: %s", in_port, strerror(-ret));
	}
	memset(res, 0, sizeof(*res));
	res->retval = opts.retval;
	res->out_len = opts.data_size_out;
	if (!bpf_map_lookup_elem(eb->map_verdict, &zero, verdicts) && cpu >= 0 && cpu < eb->ncpus)
		memcpy(&res->verdict, verdicts + cpu * stride, sizeof(res->verdict));
	else
		res->verdict = unset;
	free(verdicts);
	free(scratch);
	return 0;
}

int pf_ebpf_resubmit(struct pf_ebpf *eb, uint32_t port, const void *frame, uint32_t len, struct pf_error *err)
{
	return pf_ebpf_resubmit_from(eb, port, UINT32_MAX, frame, len, err);
}

int pf_ebpf_resubmit_from(struct pf_ebpf *eb, uint32_t port, uint32_t pipe, const void *frame, uint32_t len,
			  struct pf_error *err)
{
	/* 0xffff: the datapath finds the pipe that missed itself */
	struct pf_xdp_meta meta = { .magic = PF_XDP_META_MAGIC, .packet_path = PF_PATH_RESUBMIT, .port = port,
				    .pipe = pipe < PF_MAX_PIPES ? (uint16_t)pipe : 0xffff };
	struct xdp_md ctx = { 0 };
	uint8_t buf[4096];
	LIBBPF_OPTS(bpf_test_run_opts, opts);

	if (port >= PF_MAX_PORTS || !eb->ports[port].in_use)
		return pf_err(err, -ENODEV, "resubmit: port %u is not bound", port);
	if (!len || len + sizeof(meta) > sizeof(buf))
		return pf_err(err, -EMSGSIZE, "resubmit: frame of %u bytes", len);
	memcpy(buf, &meta, sizeof(meta));
	memcpy(buf + sizeof(meta), frame, len);
	/* data_meta = 0, data = the metadata length, data_end = everything handed in */
	ctx.data = sizeof(meta);
	ctx.data_end = sizeof(meta) + len;
	ctx.ingress_ifindex = eb->ports[port].ifindex;
	opts.data_in = buf;
	opts.data_size_in = sizeof(meta) + len;
	opts.ctx_in = &ctx;
	opts.ctx_size_in = sizeof(ctx);
	opts.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
	opts.repeat = 1;
	if (bpf_prog_test_run_opts(eb->prog_fd, &opts))
		return pf_err(err, -errno, "resubmit on port %u: %s", port, strerror(errno));
	return 0;
}

