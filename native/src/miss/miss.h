/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The miss handler's policy engine, shared by every backend: parse a missed
 * frame, apply the pipe's miss policy (match from packet fields, action values
 * from expressions), suppress duplicates of a flow being installed, enforce
 * max_flows / rate limits, age idle entries, then ask the backend to install
 * and resubmit. The backend supplies the ops; nothing here knows about BPF or DPDK.
 */
#ifndef PYFLOW_MISS_H
#define PYFLOW_MISS_H

#include "internal.h"

struct pf_learner;

struct pf_learn_ops {
	/* install an entry; fills entry->id */
	int (*install)(void *backend, uint32_t pipe, const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err);
	int (*remove)(void *backend, uint32_t entry_id, struct pf_error *err);
	/* CLOCK_MONOTONIC ns of the entry's last hit, 0 if never */
	uint64_t (*last_seen)(void *backend, uint32_t entry_id);
	/* re-inject the frame as if received on port (packet_path = RESUBMIT) */
	int (*resubmit)(void *backend, uint32_t port, const void *frame, uint32_t len, struct pf_error *err);
};

struct pf_learner *pf_learner_new(const struct pf_learn_ops *ops, void *backend);
void pf_learner_free(struct pf_learner *l);
int pf_learner_set_policy(struct pf_learner *l, const struct pf_learn *policy, struct pf_error *err);
/* handle one missed frame; returns 0 when it was installed/resubmitted or deliberately shed */
int pf_learner_handle(struct pf_learner *l, uint32_t port, uint32_t pipe, const void *frame, uint32_t len);
/* remove entries idle longer than their policy's timeout */
void pf_learner_sweep(struct pf_learner *l, uint64_t now_ns);
void pf_learner_stats(struct pf_learner *l, struct pf_miss_stats *out);
/* re-adopted entries (pinned state) count against max_flows */
void pf_learner_adopt(struct pf_learner *l, uint32_t pipe, const struct pf_fields *match, uint32_t entry_id);

#endif
