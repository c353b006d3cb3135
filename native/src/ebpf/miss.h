/* SPDX-License-Identifier: BSD-2-Clause */
/* The ebpf backend's miss path: AF_XDP sockets per port and queue, handler
 * threads, resubmit through BPF_PROG_RUN with live frames. Called by backend_ebpf.c. */
#ifndef PYFLOW_EBPF_MISS_H
#define PYFLOW_EBPF_MISS_H

#include "internal.h"

struct pf_ebpf;

int pf_ebpf_miss_set_policy(struct pf_ebpf *eb, const struct pf_learn *policy, struct pf_error *err);
/* after XDP is attached: bind sockets, fill the XSKMAP, start threads (no-op without policies) */
int pf_ebpf_miss_start(struct pf_ebpf *eb, struct pf_error *err);
void pf_ebpf_miss_stop(struct pf_ebpf *eb);
/* stop, and free the learner and its flow table (instance close) */
void pf_ebpf_miss_free(struct pf_ebpf *eb);
void pf_ebpf_miss_stats(struct pf_ebpf *eb, struct pf_miss_stats *out);

#endif
