/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The miss handler's policy engine, shared by every backend: parse a missed
 * frame, apply the pipe's miss policy (match from packet fields, action values
 * from expressions), suppress duplicates of a flow being installed, enforce
 * max_flows / rate limits, age idle entries, then ask the backend to install
 * and resubmit. The backend supplies the ops; nothing here knows about BPF or DPDK.
 *
 * Threading: one learner may be used by several handler threads and one
 * sweeper at once; a mutex serialises installs and the flow table.
 *
 * Value encoding of struct pf_learn_set.value: for destinations kept in network
 * order (addresses, l4 ports) value[0..width-1] holds the bytes as on the wire;
 * for numeric destinations (vlan id, mark, mpls label, dscp) value[0..3] holds a
 * host-order uint32.
 */
#ifndef PYFLOW_MISS_H
#define PYFLOW_MISS_H

#include "internal.h"

struct pf_learner;

struct pf_miss_frame;

struct pf_learn_ops {
	/* install an entry; fills entry->id */
	int (*install)(void *backend, uint32_t pipe, const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err);
	int (*remove)(void *backend, uint32_t entry_id, struct pf_error *err);
	/* CLOCK_MONOTONIC ns of the entry's last hit, 0 if never */
	uint64_t (*last_seen)(void *backend, uint32_t entry_id);
	/* re-inject the frame as if received on port (packet_path = RESUBMIT) */
	/* 1 if entry_id is still installed in pipe with this match (a learned flow's entry may have been
	 * removed behind the learner's back, e.g. through the control API) */
	int (*installed)(void *backend, uint32_t pipe, const struct pf_fields *match, uint32_t entry_id);
	/* pipe: the pipe that missed, so the datapath counts the frame from there on only */
	int (*resubmit)(void *backend, uint32_t port, uint32_t pipe, const void *frame, uint32_t len, struct pf_error *err);
	/* optional: install several entries in as few writes as possible, with
	 * pf_entry_add_batch's contract (stops at the first failure, the rest -ECANCELED) */
	int (*install_batch)(void *backend, struct pf_entry_req *reqs, uint32_t n, uint32_t *added, struct pf_error *err);
	/* optional: resubmit frames[0..n) in arrival order with as few calls as possible, each as
	 * resubmit would. Returns how many frames from the start were handed to the datapath
	 * (the learner resubmits the rest one by one, so none goes twice); *failed counts those
	 * among them the datapath did not take. */
	uint32_t (*resubmit_batch)(void *backend, const struct pf_miss_frame *frames, uint32_t n, uint32_t *failed);
};

/* One missed frame as a handler thread received it. */
struct pf_miss_frame {
	const void *data;
	uint32_t len;
	uint32_t port;          /* ingress port */
	uint32_t pipe;          /* the pipe that missed (>= PF_MAX_PIPES: unknown) */
	uint32_t packet_path;
	uint64_t rx_ns;         /* pf_now_ns() when the handler received it; 0: when the batch began */
	void *cookie;           /* the backend's own handle on the frame, for resubmit_batch */
};

/* frames handled per install round; larger batches are cut into rounds of this size */
#define PF_LEARN_BATCH_MAX 64

struct pf_learner *pf_learner_new(const struct pf_learn_ops *ops, void *backend);
void pf_learner_free(struct pf_learner *l);
/* the install pipe's mask must be known (pf_learner_set_mask) before its policy is set */
int pf_learner_set_policy(struct pf_learner *l, const struct pf_learn *policy, struct pf_error *err);
/* mask of a pipe that policies install into (learned entries use mask slot 0) */
int pf_learner_set_mask(struct pf_learner *l, uint32_t pipe, const struct pf_fields *mask, struct pf_error *err);
/* handle one missed frame; returns 0 when it was installed/resubmitted or deliberately shed */
int pf_learner_handle(struct pf_learner *l, uint32_t port, uint32_t pipe, const void *frame, uint32_t len);
/* same, with the frame's packet_path: a frame that misses again after a resubmit
 * is never resubmitted twice (no loops); its stale flow is forgotten instead */
int pf_learner_handle_path(struct pf_learner *l, uint32_t port, uint32_t pipe, uint32_t packet_path,
			   const void *frame, uint32_t len);
/* handle frames received together: decide each one, install the new flows with one
 * install_batch call, then resubmit every frame in arrival order. Frames of one flow
 * within the batch are one install. Returns 0, or the first error (frames still counted). */
int pf_learner_handle_batch(struct pf_learner *l, const struct pf_miss_frame *frames, uint32_t n);
/* remove entries idle longer than their policy's timeout */
void pf_learner_sweep(struct pf_learner *l, uint64_t now_ns);
/* for a backend whose datapath ages entries itself (DOCA's monitor.aging_sec): entry_id of this flow went
 * idle; remove it and forget the flow as the sweep would (counted in aged_out). 0 if it is not a flow of
 * this learner (the caller removes it then) */
int pf_learner_expire(struct pf_learner *l, uint32_t pipe, const struct pf_fields *match, uint32_t entry_id);
/* how often a sweeper must run: a quarter of the shortest idle timeout of any policy,
 * within [10 ms, 1 s]; 0 when no policy ages its entries */
uint64_t pf_learner_sweep_interval_ns(struct pf_learner *l);
/* while it is 0, how soon a sweeper asks again (a policy may be set meanwhile) */
#define PF_LEARN_SWEEP_RECHECK_NS 100000000ull
void pf_learner_stats(struct pf_learner *l, struct pf_miss_stats *out);
/* learned flows currently held */
uint32_t pf_learner_flow_count(struct pf_learner *l);
/* re-adopted entries (pinned state) count against max_flows */
void pf_learner_adopt(struct pf_learner *l, uint32_t pipe, const struct pf_fields *match, uint32_t entry_id);

/* Stage profile of the miss path, for benchmarks: when PYFLOW_MISS_STAGES names a file,
 * each stage's clock deltas are summed and a JSON line is appended to it at
 * pf_learner_stages_dump. Without it no clock is read for this. */
enum pf_miss_stage {
	PF_STAGE_RX,            /* rx batch: taking frames off the ring */
	PF_STAGE_DECIDE,        /* parse, policy, flow table */
	PF_STAGE_INSTALL,       /* the batched map/table write */
	PF_STAGE_RESUBMIT,      /* frames back through the datapath */
	PF_STAGE_TX,            /* buffers given back / frames sent */
	PF_STAGE_RESUBMIT_CPU,  /* of PF_STAGE_RESUBMIT: the handler thread's CPU time (not waiting for a core) */
	PF_STAGE_DATAPATH,      /* of PF_STAGE_RESUBMIT: the kernel's own timing of the frames' runs (ebpf batches) */
	PF_STAGE_LEARN_CPU,     /* decide + install + resubmit: the handler thread's CPU time */
	PF_STAGE_COUNT
};

int pf_learner_profiling(const struct pf_learner *l);
void pf_learner_stage_add(struct pf_learner *l, enum pf_miss_stage stage, uint64_t ns);
/* wakeups of a handler that found frames, and frames handled by them */
void pf_learner_stage_batch(struct pf_learner *l, uint32_t frames);
void pf_learner_stages_dump(struct pf_learner *l, const char *backend);
/* dump once the handler has had nothing for PF_STAGES_IDLE_NS: one line per burst of activity */
void pf_learner_stages_idle(struct pf_learner *l, const char *backend, uint64_t now_ns);
#define PF_STAGES_IDLE_NS 100000000ull

#endif
