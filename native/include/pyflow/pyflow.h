/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pyflow C API: the one interface between Python and the C core.
 *
 * Conventions: opaque handles; every call returns 0 or a negative errno and,
 * on failure, fills the caller's struct pf_error with a message that says
 * where and what. Names are object__verb in spirit: pf_<object>_<verb>.
 * This header is read by cffi at build time: keep it to declarations.
 */
#ifndef PYFLOW_PYFLOW_H
#define PYFLOW_PYFLOW_H

#include <stddef.h>
#include <stdint.h>
#include "pyflow/shared.h"

#define PF_ERROR_MSG_LEN 512

struct pf_error {
	int code;               /* negative errno */
	char msg[PF_ERROR_MSG_LEN];
};

typedef struct pf_instance pf_instance;

/* Log levels follow DOCA's numbering so -l/--log-level maps 1:1. */
enum pf_log_level {
	PF_LOG_DISABLE = 10,
	PF_LOG_CRITICAL = 20,
	PF_LOG_ERROR = 30,
	PF_LOG_WARNING = 40,
	PF_LOG_INFO = 50,
	PF_LOG_DEBUG = 60,
	PF_LOG_TRACE = 70,
	PF_LOG_FROM_SDK = 256,  /* or-ed into the level of messages from libbpf / DPDK / DOCA */
};

typedef void (*pf_log_fn)(int level, const char *msg);

/* Field ids, used by miss-policy expressions. */
enum pf_field_id {
	PF_FIELD_META_PORT = 0,
	PF_FIELD_META_MARK = 1,
	PF_FIELD_META_PACKET_PATH = 2,
	PF_FIELD_MPEGTS_FRAME = 3,
	PF_FIELD_IP_PROTO = 4,
	PF_FIELD_IP_TTL = 5,
	PF_FIELD_IP_DSCP = 6,
	PF_FIELD_TCP_FLAGS = 7,
	PF_FIELD_ETH_TYPE = 8,
	PF_FIELD_ETH_DST = 9,
	PF_FIELD_ETH_SRC = 10,
	PF_FIELD_VLAN_ID = 11,
	PF_FIELD_VLAN_INNER = 12,
	PF_FIELD_MPLS_LABEL = 13,
	PF_FIELD_IPV4_SRC = 14,
	PF_FIELD_IPV4_DST = 15,
	PF_FIELD_IPV6_SRC = 16,
	PF_FIELD_IPV6_DST = 17,
	PF_FIELD_L4_SPORT = 18,
	PF_FIELD_L4_DPORT = 19,
	PF_FIELD_COUNT = 20,
};

enum pf_xdp_mode {
	PF_XDP_AUTO = 0,        /* driver, falling back to generic */
	PF_XDP_DRIVER = 1,
	PF_XDP_GENERIC = 2,
	PF_XDP_HW = 3,
};

struct pf_instance_opts {
	const char *backend;    /* "ebpf", "dpdk", "doca" */
	const char *name;       /* instance name: pins live in <pin_root>/<name> */
	const char *pin_root;   /* default /sys/fs/bpf/pyflow */
	const char *obj_dir;    /* directory with the compiled *.bpf.o */
	uint32_t xdp_mode;      /* enum pf_xdp_mode */
	uint32_t max_entries;   /* size of the entry tables, 0 = default */
	int eal_argc;           /* dpdk: arguments for rte_eal_init, argv[0] included */
	char **eal_argv;
	uint32_t flags;         /* enum pf_instance_flag */
	uint32_t miss_threads;  /* miss handler threads, 0 = 1 */
};

enum pf_instance_flag {
	PF_INST_FRESH = 1u << 0,        /* wipe pinned state instead of adopting it */
	PF_INST_NO_PIN = 1u << 1,       /* tests: nothing pinned, nothing attached until start */
	PF_INST_KEEP_DATAPATH = 1u << 2, /* ebpf: stop quiesces the miss handler but leaves the programs
					  * attached, so the pinned datapath forwards until the next run */
	PF_INST_DRY = 1u << 3,          /* doca: calls are rendered into the graph (pf_instance_describe), not made */
};

struct pf_instance_info {
	uint32_t adopted;       /* 1 when pinned state was re-adopted */
	uint32_t xdp_mode;      /* mode actually in use after start */
	char mode_reason[256];  /* why a fallback happened, "" otherwise */
	uint8_t port_xdp_mode[PF_MAX_PORTS];    /* per port id after start: enum pf_xdp_mode, 0 = not attached */
};

/* Miss policy: for a miss in from_pipe, install into to_pipe an entry whose
 * match is the packet's fields under to_pipe's mask and whose action values
 * are base_actions overridden by sets[] computed from the packet. */
enum pf_expr_op {
	PF_EXPR_CONST = 0,      /* value */
	PF_EXPR_FIELD = 1,      /* src_field */
	PF_EXPR_FIELD_ADD = 2,  /* src_field + value (bytewise, carry, network order) */
	PF_EXPR_POOL = 3,       /* value + (flow hash % pool_size) */
};

struct pf_learn_set {
	uint32_t action;        /* one PF_ACT_SET_* flag (or PF_ACT_PUSH_MPLS: label 0) */
	uint16_t op;            /* enum pf_expr_op */
	uint16_t src_field;     /* enum pf_field_id */
	uint8_t value[16];      /* network order for addresses, host order for labels/vlan */
	uint32_t pool_size;
	uint32_t _pad;
};

#define PF_LEARN_MAX_SETS 8

struct pf_learn {
	uint32_t from_pipe;
	uint32_t to_pipe;
	uint32_t max_flows;
	uint32_t idle_timeout_ms;       /* 0 = never */
	uint32_t rate_limit_pps;        /* 0 = unlimited */
	uint32_t burst;
	uint32_t entry_flags;           /* enum pf_entry_flag for learned entries */
	uint32_t nsets;
	struct pf_fwd fwd;
	struct pf_actions base_actions;
	struct pf_learn_set sets[PF_LEARN_MAX_SETS];
};

struct pf_entry_info {
	uint32_t pipe;
	uint32_t mask_idx;
	uint32_t prefixlen;     /* lpm pipes */
	uint32_t _pad;
	uint64_t last_seen_ns;  /* CLOCK_MONOTONIC of the last hit, 0 if never */
	struct pf_fields match;
	struct pf_entry entry;
};

/* install latency buckets of struct pf_miss_stats: 17 log2 bounds from 1 us, then +Inf */
#define PF_MISS_LATENCY_BUCKETS 18

struct pf_miss_stats {
	uint64_t received;      /* frames that reached the handler */
	uint64_t installed;     /* entries created */
	uint64_t resubmitted;   /* frames re-injected after install */
	uint64_t coalesced;     /* frames of a flow already being installed */
	uint64_t refused_max_flows;
	uint64_t shed_rate_limit;
	uint64_t aged_out;
	uint64_t install_errors;
	uint64_t resubmit_errors;
	uint64_t no_policy;     /* misses of a pipe without a miss policy */
	/* missed frames the kernel dropped before the handler saw them (ebpf: the
	 * AF_XDP sockets' rx_dropped + rx_ring_full); pipe misses = received + ring_drops */
	uint64_t ring_drops;
	uint64_t rx_ring_full;          /* of ring_drops: the rx ring was full */
	uint64_t fill_ring_empty;       /* of ring_drops: no free umem frame to copy into */
	uint64_t install_batches;       /* map writes that installed several entries in one call */
	/* of shed_rate_limit: misses the datapath shed before the handler (ebpf: XDP); pipe misses =
	 * received + ring_drops + shed_in_datapath */
	uint64_t shed_in_datapath;
	/* a gauge, read at the call: missed frames waiting for a handler thread (ebpf: the AF_XDP
	 * rx rings' pending descriptors, summed; dpdk: the miss ring's rte_ring_count) */
	uint64_t queue_depth;
	/* time from a handler thread receiving a miss frame to its entry being installed:
	 * latency_buckets[i] counts installs of at most 1 us << i (1 us .. 65.536 ms), the last
	 * one those above; not cumulative */
	uint64_t install_latency_sum_ns;
	uint64_t install_latency_buckets[PF_MISS_LATENCY_BUCKETS];
};

/* One entry of pf_entry_add_batch: the arguments of pf_entry_add, and its outcome. */
struct pf_entry_req {
	uint32_t pipe;
	uint32_t mask_idx;
	uint32_t prefixlen;
	int32_t result;         /* out: 0, a negative errno, or -ECANCELED when not attempted */
	struct pf_fields match;
	struct pf_entry entry;  /* in: the entry; out: entry.id */
};

struct pf_test_result {
	uint32_t retval;        /* backend-native verdict (XDP action for ebpf) */
	uint32_t out_len;
	struct pf_verdict verdict;
};

/* library */
const char *pf_version(void);
void pf_log_set_handler(pf_log_fn fn, int level);
/* threshold of the SDKs' own messages (libbpf, DPDK, DOCA), independent of pyflow's */
void pf_log_set_sdk_level(int level);
int pf_backend_available(const char *backend, struct pf_error *err);

/* lifecycle */
int pf_instance_open(const struct pf_instance_opts *opts, pf_instance **out, struct pf_error *err);
int pf_instance_info_get(pf_instance *inst, struct pf_instance_info *info, struct pf_error *err);
int pf_instance_start(pf_instance *inst, struct pf_error *err);
int pf_instance_stop(pf_instance *inst, struct pf_error *err);
int pf_instance_destroy(pf_instance *inst, struct pf_error *err);  /* stop and remove pinned state */
void pf_instance_close(pf_instance *inst);

/* programming (before or after start) */
int pf_port_set(pf_instance *inst, uint32_t port_id, const char *binding, const struct pf_port *port, struct pf_error *err);
int pf_pipe_set(pf_instance *inst, uint32_t pipe_id, const struct pf_pipe *pipe, const struct pf_fields *masks, uint32_t nmasks, struct pf_error *err);
int pf_root_set(pf_instance *inst, uint32_t pipe_id, struct pf_error *err);
/* the pipe's config name, for backends that name their objects (doca); a no-op elsewhere */
int pf_pipe_name_set(pf_instance *inst, uint32_t pipe_id, const char *name, struct pf_error *err);
int pf_session_set(pf_instance *inst, uint32_t session_id, const struct pf_session *session, struct pf_error *err);
int pf_entry_add(pf_instance *inst, uint32_t pipe_id, uint32_t mask_idx, uint32_t prefixlen, const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err);
/* Modify entry_id in place (ovs-ofctl mod-flows): a new match and/or actions in the same pipe, the same id
 * and counters. -EEXIST if another entry already has the new match. */
int pf_entry_replace(pf_instance *inst, uint32_t entry_id, uint32_t pipe_id, uint32_t mask_idx, uint32_t prefixlen, const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err);
/* Add n entries in order, as n pf_entry_add calls would (an existing key is updated in
 * place and keeps its id), in as few map writes as the backend can. Stops at the first
 * failure: entries before it stay added, its result and err say "entry I of N: ...",
 * the rest are -ECANCELED. *added (may be NULL) = entries added. */
int pf_entry_add_batch(pf_instance *inst, struct pf_entry_req *reqs, uint32_t n, uint32_t *added, struct pf_error *err);
int pf_entry_del(pf_instance *inst, uint32_t entry_id, struct pf_error *err);
int pf_entry_list(pf_instance *inst, uint32_t pipe_id, struct pf_entry_info *out, uint32_t max, uint32_t *count, struct pf_error *err);
int pf_learn_set(pf_instance *inst, const struct pf_learn *policy, struct pf_error *err);

/* counters */
int pf_counters_entries(pf_instance *inst, const uint32_t *ids, uint32_t n, struct pf_counter *out, struct pf_error *err);
int pf_counters_pipe(pf_instance *inst, uint32_t pipe_id, struct pf_pipe_counter *out, struct pf_error *err);
int pf_counters_port(pf_instance *inst, uint32_t port_id, struct pf_port_counter *out, struct pf_error *err);
int pf_miss_stats_get(pf_instance *inst, struct pf_miss_stats *out, struct pf_error *err);

/* what the backend created, as JSON (doca: the DOCA Flow pipe graph); *needed = bytes incl. the NUL */
int pf_instance_describe(pf_instance *inst, char *buf, uint32_t len, uint32_t *needed, struct pf_error *err);

/* run one frame through the datapath as if received on in_port (tests, differential checks) */
int pf_test_run(pf_instance *inst, uint32_t in_port, const void *frame, uint32_t len, void *out, uint32_t out_cap, struct pf_test_result *res, struct pf_error *err);

/* pyflow trace: run one frame through the loaded datapath as pf_test_run does, but with no
 * side effect (no counter, no last-seen stamp, nothing handed to the miss handler, drop_pct
 * keeps the frame and says so) and the walk recorded hop by hop in *trace. */
int pf_trace_run(pf_instance *inst, uint32_t in_port, const void *frame, uint32_t len, void *out, uint32_t out_cap, struct pf_test_result *res, struct pf_trace *trace, struct pf_error *err);
/* pyflow capture: frames at the cfg's points into a pcap / pcapng file, written by a thread of
 * the core, until max_frames (0 = no limit), duration_ms (0 = none) or pf_capture_stop. One
 * capture per instance; while none runs the datapath pays one load per capture point. */
enum pf_capture_format {
	PF_CAPTURE_PCAP = 0,
	PF_CAPTURE_PCAPNG = 1,
};

struct pf_capture_stats {
	uint64_t frames;        /* written */
	uint64_t bytes;         /* frame bytes written */
	uint64_t lost;          /* the perf buffer was full */
	uint32_t running;
	uint32_t _pad;
};

int pf_capture_start(pf_instance *inst, const struct pf_capture_cfg *cfg, const char *path, uint32_t format, uint64_t max_frames, uint64_t duration_ms, struct pf_error *err);
int pf_capture_stats_get(pf_instance *inst, struct pf_capture_stats *out, struct pf_error *err);
int pf_capture_stop(pf_instance *inst, struct pf_capture_stats *out, struct pf_error *err);
/* DSCP -> MPLS traffic class of labels pushed with PF_ACT_MPLS_TC_DSCP: map[dscp] = 0..7, or 0xff
 * for the default, the class selector (dscp >> 3). Without a call every DSCP gets the default. */
int pf_dscp_tc_set(pf_instance *inst, const uint8_t *map, struct pf_error *err);
/* MPEG-TS deep-inspection counters (seed 003), summed over CPUs */
int pf_counters_dpi(pf_instance *inst, struct pf_dpi_counter *out, struct pf_error *err);
/* Where a pipe / entries run: 1 = in the NIC (dpdk: its rte_flow rules exist; doca: everything is
 * created in DOCA Flow), 0 = in software (dpdk: the software pipes; ebpf: XDP, always 0). */
int pf_pipe_offload_get(pf_instance *inst, uint32_t pipe_id, uint32_t *offloaded, struct pf_error *err);
/* offloaded[i] for entry_ids[i]; an entry is offloaded when it has its rule on every port it belongs on */
int pf_entry_offload_get(pf_instance *inst, const uint32_t *entry_ids, uint32_t n, uint8_t *offloaded, struct pf_error *err);

#endif
