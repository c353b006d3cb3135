/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * State of the dpdk backend: EAL, ethdev ports, the software pipes (one
 * lock-free rte_hash for every exact/control pipe, rte_lpm per IPv4 lpm pipe),
 * per-lcore counters, the miss ring and its handler. Private to native/src/dpdk.
 */
#ifndef PYFLOW_DPDK_H
#define PYFLOW_DPDK_H

#include <pthread.h>
#include <stdbool.h>
#include <rte_ethdev.h>
#include <rte_hash.h>
#include <rte_lpm.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_spinlock.h>
#include "internal.h"
#include "miss/miss.h"

/* Private to the backend's objects: calls between them are direct, not through the PLT. */
#pragma GCC visibility push(hidden)

#define PFD_BURST 32
#define PFD_RX_DESC 1024
#define PFD_TX_DESC 1024
#define PFD_MISS_RING 8192
#define PFD_MAX_WORKERS 16
/* Counter / RCU slots: one per worker lcore, then the miss handler, then callers
 * from non-EAL threads (test_run from Python). */
#define PFD_SLOT_HANDLER PFD_MAX_WORKERS
#define PFD_SLOT_CONTROL (PFD_MAX_WORKERS + 1)
#define PFD_NSLOTS (PFD_MAX_WORKERS + 2)
#define PFD_NO_ENTRY 0xffffffffu
/* rte_flow MARK on a pipe's miss rule: the worker continues that pipe (low bits) in software. */
#define PFD_MARK_MISS 0x00100000u
#define PFD_MARK_PIPE_MASK 0x000fffffu

enum pfd_rte_flow_mode { PFD_RTE_FLOW_AUTO, PFD_RTE_FLOW_OFF, PFD_RTE_FLOW_FORCE };

/* IPv6 lpm prefixes live in the exact-match hash: mask_idx = flag | prefix length. */
#define PFD_LPM6_MASK_FLAG 0x80000000u

/* What the worker hands to the miss handler, kept in the mbuf's private area. */
struct pfd_mbuf_meta {
	uint32_t port;
	uint32_t pipe;
	uint8_t packet_path;
	uint8_t _pad[7];
};

static inline struct pfd_mbuf_meta *pfd_meta(struct rte_mbuf *m)
{
	return (struct pfd_mbuf_meta *)rte_mbuf_to_priv(m);
}

struct pfd_port {
	bool in_use;
	bool started;
	uint16_t dpdk_port;
	uint16_t nrxq;
	uint16_t ntxq;
	struct pf_port cfg;
	char name[RTE_ETH_NAME_MAX_LEN];
	/* tx queues shared by more lcores than queues take this lock */
	rte_spinlock_t txlock[PF_MAX_QUEUES];
	bool tx_shared;
	bool flow_configured;           /* rte_flow_configure was asked (template API) */
	bool flow_async;                /* rules go through template tables and the async queue */
};

/* A pipe mask's exact key: loads of at most 8 bytes, each inside one field of struct pf_fields
 * (a load spanning fields the parser stored separately would wait for the stores to retire). */
#define PFD_KEY_PIECES 32
struct pfd_key_layout {
	uint32_t n;
	uint32_t seed;                  /* hash of (pipe, mask slot), where the pieces' hash starts */
	uint8_t off[PFD_KEY_PIECES];
	uint8_t width[PFD_KEY_PIECES];
	uint64_t mask[PFD_KEY_PIECES];
};

struct pfd_pipe {
	struct pf_pipe cfg;
	struct pf_fields masks[PF_MAX_MASKS];
	uint32_t nmasks;
	/* per mask: the pieces of the fields it keeps any bit of; only those make an exact key */
	struct pfd_key_layout keys[PF_MAX_MASKS];
	struct rte_lpm *lpm;            /* IPv4 lpm pipes */
	uint32_t lpm4_default;          /* IPv4 lpm pipes: id of the /0 entry (rte_lpm takes depths 1..32), or
					 * PFD_NO_ENTRY */
	uint64_t lpm6_lengths[3];       /* IPv6 lpm pipes: prefix lengths in use (bitmap 0..128) */
	bool offloaded;                 /* its rules exist in the NIC */
};

struct pfd_entry {
	uint32_t in_use;
	uint32_t pipe;
	uint32_t mask_idx;
	uint32_t prefixlen;
	struct pf_fields match;
	struct pf_entry e;
	uint64_t last_seen_ns;
};

/* Exact-match index of the basic and control pipes: open addressing with linear probing, one
 * 8-byte slot per key (hash << 32 | entry id); the entry itself holds the key. Slots only go
 * empty -> used -> removed -> used, so a reader never misses a key that stays installed. */
#define PFD_XSLOT_EMPTY 0xffffffffu
#define PFD_XSLOT_REMOVED 0xfffffffeu
#define PFD_XINDEX_MIN_SLOTS 64u
#define PFD_XINDEX_START_SLOTS 1024u
struct pfd_xindex {
	uint32_t mask;                  /* slots - 1 */
	uint32_t probe_limit;           /* no key sits further than this from its home slot */
	uint32_t used;
	uint32_t removed;
	uint64_t slots[];
};

struct pfd_slot_counters {
	struct pf_counter *entries;     /* [max_entries] */
	struct pf_pipe_counter pipes[PF_MAX_PIPES];
	struct pf_port_counter ports[PF_MAX_PORTS];
	struct pf_dpi_counter dpi;      /* MPEG-TS classes, as the XDP datapath counts them */
} __rte_cache_aligned;

struct pfd;

struct pfd_worker {
	struct pfd *inst_state;
	unsigned int lcore;
	uint32_t slot;
	uint32_t nrx;
	struct { uint16_t port; uint16_t queue; } rx[PF_MAX_PORTS * 2];
};

struct pfd {
	pf_instance *inst;
	uint32_t max_entries;
	struct rte_mempool *pool;       /* ports, misses, resubmits */
	struct rte_mempool *aux_pool;   /* test_run, which needs no port */
	char mode_reason[256];          /* rte_flow offload summary */
	enum pfd_rte_flow_mode rte_flow_mode;
	bool rte_flow_all;              /* every pipe validated on every port */
	struct pfd_hw *hw;              /* rte_flow rules; NULL: software pipes only */
	struct rte_hash *table;         /* IPv6 lpm prefixes: key struct pf_flow_key -> entry id */
	struct pfd_xindex *xindex;      /* basic/control pipes; replaced whole (under RCU) to grow or shed removed slots */
	struct pfd_xindex *xindex_retired[64];  /* replaced, freed after the next grace period */
	uint32_t nretired;
	struct rte_rcu_qsbr *rcu;
	pthread_mutex_t write_lock;     /* one writer at a time on tables and entries */
	struct pfd_entry *entries;      /* [max_entries], by id */
	uint32_t next_free_hint;

	struct pfd_port ports[PF_MAX_PORTS];
	uint16_t dpdk_to_port[RTE_MAX_ETHPORTS];   /* 0xffff = unbound */
	struct pfd_pipe pipes[PF_MAX_PIPES];
	struct pf_session sessions[PF_MAX_SESSIONS];
	uint32_t buckets[PF_MAX_HASH_PIPES][PF_HASH_BUCKETS];  /* hash pipes: bucket -> entry id */
	uint32_t root_pipe;
	bool root_set;

	struct pfd_slot_counters *counters; /* [PFD_NSLOTS] */

	/* lcores */
	struct pfd_worker workers[PFD_MAX_WORKERS];
	uint32_t nworkers;
	unsigned int handler_lcore;     /* RTE_MAX_LCORE: handler runs on a control thread */
	pthread_t handler_thread;
	bool handler_thread_running;
	volatile bool running;
	bool started;

	/* misses */
	struct rte_ring *miss_ring;
	struct pf_learner *learner;
	bool have_policy;
};

/* software pipes (swtable.c) */
int pfd_tables_init(struct pfd *d, struct pf_error *err);
void pfd_tables_free(struct pfd *d);
int pfd_pipe_set(struct pfd *d, uint32_t pipe_id, const struct pf_pipe *pipe, const struct pf_fields *masks,
		 uint32_t nmasks, struct pf_error *err);
int pfd_entry_install(struct pfd *d, uint32_t pipe, uint32_t mask_idx, uint32_t prefixlen,
		      const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err);
int pfd_entry_remove(struct pfd *d, uint32_t entry_id, struct pf_error *err);
/* pf_entry_replace: the same id (and counters) with a new match and/or entry, in its pipe */
int pfd_entry_install_batch(struct pfd *d, struct pf_entry_req *reqs, uint32_t n, uint32_t *added,
			    struct pf_error *err);
int pfd_entry_replace(struct pfd *d, uint32_t id, uint32_t pipe, uint32_t mask_idx, uint32_t prefixlen,
		      const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err);
int pfd_entry_list(struct pfd *d, uint32_t pipe, struct pf_entry_info *out, uint32_t max, uint32_t *count,
		   struct pf_error *err);

uint32_t pfd_lookup(struct pfd *d, uint32_t pipe, const struct pf_fields *f, uint32_t flow_hash);

/* Where one frame goes after the pipeline; a frame may go to several ports (sessions). */
struct pfd_outputs {
	uint32_t n;
	uint32_t ports[PF_MAX_SESSION_MEMBERS + 1];
	struct rte_mbuf *mbufs[PF_MAX_SESSION_MEMBERS + 1];
};

/* Run m through the pipeline as received on port. On return m is either consumed
 * (dropped / handed to the miss ring / placed in out) and verdict says what happened. */
/* pyflow trace on the software pipes: as pfd_pipeline_run from the root, counting nothing, never to
 * the miss ring, drop_pct keeping the frame, every hop recorded in *trace */
void pfd_pipeline_trace(struct pfd *d, uint32_t slot, uint32_t port, struct rte_mbuf *m, struct pfd_outputs *out,
			struct pf_verdict *verdict, struct pf_trace *trace);
/* pf_dscp_tc_set for the software pipes */
int pfd_dscp_tc_set(pf_instance *inst, const uint8_t *map, struct pf_error *err);
void pfd_pipeline_run(struct pfd *d, uint32_t slot, uint32_t port, uint8_t packet_path, struct rte_mbuf *m,
		      struct pfd_outputs *out, struct pf_verdict *verdict, bool to_miss_ring);
/* The same, entering at start_pipe (a frame the NIC's rte_flow rules sent up on a miss of that pipe).
 * now_ns: the time of the rx burst, stamped as the hit entry's last-seen (0: read the clock at the first hit). */
void pfd_pipeline_run_from(struct pfd *d, uint32_t slot, uint32_t port, uint8_t packet_path, uint32_t start_pipe,
			   uint64_t now_ns, struct rte_mbuf *m, struct pfd_outputs *out, struct pf_verdict *verdict,
			   bool to_miss_ring);
/* A frame the miss handler resubmits after installing its entry: it replays the walk from the root
 * without counting or acting until missed_pipe (unknown: >= PF_MAX_PIPES), as the XDP datapath does. */
void pfd_pipeline_resubmit(struct pfd *d, uint32_t slot, uint32_t port, uint32_t missed_pipe, struct rte_mbuf *m,
			   struct pfd_outputs *out, struct pf_verdict *verdict);

/* counters */
void pfd_counters_sum_entry(struct pfd *d, uint32_t id, struct pf_counter *out);
void pfd_counters_sum_pipe(struct pfd *d, uint32_t pipe, struct pf_pipe_counter *out);
void pfd_counters_sum_port(struct pfd *d, uint32_t port, struct pf_port_counter *out);

/* lcores, ports, miss handler (lcore.c) */
int pfd_ports_start(struct pfd *d, struct pf_error *err);
void pfd_ports_stop(struct pfd *d);
int pfd_lcores_start(struct pfd *d, struct pf_error *err);
void pfd_lcores_stop(struct pfd *d);
uint16_t pfd_tx(struct pfd *d, uint32_t slot, uint32_t port, struct rte_mbuf **m, uint16_t n);
extern const struct pf_learn_ops pfd_learn_ops;

/* rte_flow offload (rteflow.c) */
struct pfd_hw;
void pfd_rte_flow_probe(struct pfd *d);
int pfd_rte_flow_port_configure(struct pfd *d, uint32_t port);
int pfd_rte_flow_install(struct pfd *d);
void pfd_rte_flow_remove(struct pfd *d);
void pfd_rte_flow_entry_added(struct pfd *d, uint32_t id);
void pfd_rte_flow_entry_removed(struct pfd *d, uint32_t id);
void pfd_rte_flow_entry_counts(struct pfd *d, uint32_t id, struct pf_counter *out);
/* 1 when the entry has its rule on every port it belongs on */
bool pfd_rte_flow_entry_offloaded(struct pfd *d, uint32_t id);
/* pf_instance_describe: every pipe's rte_flow rules (testpmd commands) or why it runs in software */
int pfd_rte_flow_describe(pf_instance *inst, char *buf, uint32_t len, uint32_t *needed, struct pf_error *err);
/* PYFLOW_DPDK_RTE_FLOW */
enum pfd_rte_flow_mode pfd_rte_flow_mode_from_env(void);
/* the ops of a dry instance (pyflow plan): rules described, no EAL */
extern const struct pf_backend_ops pf_backend_dpdk_dry;

/* telemetry (telemetry.c) */
void pfd_telemetry_register(struct pfd *d);
void pfd_telemetry_unregister(struct pfd *d);

/* RCU helpers: the calling thread's reader slot, and going quiet around blocking writes */
void pfd_rcu_reader_enter(struct pfd *d, uint32_t slot);
void pfd_rcu_reader_leave(struct pfd *d, uint32_t slot);
extern __thread int pfd_thread_slot;

#pragma GCC visibility pop

#endif
