/* SPDX-License-Identifier: BSD-2-Clause */
/* State of one ebpf-backend instance, shared by the loader and the miss path. */
#ifndef PYFLOW_EBPF_H
#define PYFLOW_EBPF_H

#include <pthread.h>
#include <bpf/libbpf.h>
#include "internal.h"

/* our clsact filters: a fixed handle/priority so stop removes exactly them */
#define PF_EBPF_TC_HANDLE 0x7066
#define PF_EBPF_TC_PRIORITY 0x7066

struct pf_ebpf_port {
	uint32_t in_use;
	uint32_t ifindex;
	char ifname[32];
};

/* Where an entry id lives, so it can be removed or listed by id alone. */
enum pf_ebpf_slot_kind {
	PF_EBPF_SLOT_FREE = 0,
	PF_EBPF_SLOT_HASH = 1,          /* exact/control: the table and key its mask slot's kind says (mkind) */
	PF_EBPF_SLOT_LPM = 2,           /* lpm trie, key = lpm_key */
	PF_EBPF_SLOT_BUCKET = 3,        /* hash-pipe member: owns buckets [first, first + count) */
	PF_EBPF_SLOT_RESERVED = 4,      /* id handed to a batched write in progress (under lock) */
};

struct pf_ebpf_slot {
	uint8_t kind;
	uint8_t mkind;                  /* kind HASH: enum pf_mask_kind: entries (flow_key), entries_c
					 * (ckey), entries_c1 (its first 8 bytes) or port_entries
					 * (element ckey.slot) */
	uint8_t _pad[2];
	uint32_t pipe;
	struct pf_ckey ckey;
	union {
		struct pf_flow_key flow_key;
		struct pf_lpm_key lpm_key;
		struct {
			uint32_t first, count;
		} buckets;
	};
	struct pf_entry entry;          /* as installed (hash-pipe members live only here and in buckets) */
};

struct pf_ebpf {
	pf_instance *inst;
	struct bpf_object *obj;
	struct bpf_program *prog;
	int prog_fd;                    /* XDP root program (also the resubmit target) */

	/* map fds (names of the maps in datapath.bpf.c / under the pin dir) */
	int map_config;                 /* "config": array[1] of pf_config */
	int map_pipes;                  /* "pipes": array[PF_MAX_PIPES] of pf_pipe */
	int map_pipe_masks;             /* "pipe_masks": array of pf_fields, pipe*PF_MAX_MASKS+idx */
	int map_entries;                /* "entries": hash pf_flow_key -> pf_entry */
	int map_entries_c;              /* "entries_c": hash pf_ckey -> pf_entry (masks that pack) */
	int map_entries_c1;             /* "entries_c1": hash 8-byte pf_ckey prefix -> pf_entry (one word) */
	int map_mask_keys;              /* "mask_keys": array of pf_mask_key, like pipe_masks */
	int map_port_entries;           /* "port_entries": array of pf_entry, masks on meta.port alone */
	int map_lpm;                    /* "lpm": LPM trie pf_lpm_key -> pf_entry */
	int map_buckets;                /* "hash_buckets": array of pf_entry, slot*PF_HASH_BUCKETS+bucket */
	int map_ports;                  /* "ports": array[PF_MAX_PORTS] of pf_port */
	int map_ifindex;                /* "ifindex_port": hash ifindex -> port id */
	int map_tx;                     /* "tx_ports": DEVMAP port id -> ifindex */
	int map_xsks;                   /* "xsks": XSKMAP, port*PF_MAX_QUEUES + rx queue */
	int map_entry_counters;         /* "entry_counters": per-CPU pf_counter by entry id */
	int map_entry_seen;             /* "entry_seen": array of u64 CLOCK_MONOTONIC ns by entry id */
	int map_pipe_counters;          /* "pipe_counters": per-CPU pf_pipe_counter by pipe id */
	int map_port_counters;          /* "port_counters": per-CPU pf_port_counter by port id */
	int map_verdict;                /* "verdict": per-CPU pf_verdict[1] */
	int map_sessions;               /* "sessions": array of pf_session */
	int map_miss_limits;            /* "miss_limits": array of pf_miss_limit by pipe */
	int map_miss_buckets;           /* "miss_buckets": per-CPU pf_miss_bucket by pipe */

	uint32_t max_entries;           /* size of entries / lpm / counters; ids are 0..max_entries-1 */
	uint32_t nqueues;               /* XSKMAP slots used per port (<= PF_MAX_QUEUES) */
	uint32_t flags;                 /* enum pf_instance_flag */
	uint32_t xdp_mode_req;          /* enum pf_xdp_mode asked for */
	uint32_t xdp_mode;              /* in use after start */
	uint32_t adopted;
	uint32_t started;
	int ncpus;
	char mode_reason[256];
	struct pf_ebpf_port ports[PF_MAX_PORTS];
	uint32_t attach_flags[PF_MAX_PORTS];    /* XDP_FLAGS_* used to attach, for detach */
	char pin_dir[256];

	/* entry ids: slots[id] says where entry id lives; guarded by lock
	 * (control API and miss handler threads install concurrently) */
	pthread_mutex_t lock;
	struct pf_ebpf_slot *slots;
	uint32_t next_id;               /* allocation cursor */

	/* ids whose entry_counters / entry_seen may hold a previous entry's values:
	 * only these are reset when the id is given out again (fresh maps are zero) */
	uint8_t *id_dirty;
	/* exact/control keys -> id (chains through index_next), so an install knows
	 * whether its key exists without asking the kernel; guarded by lock */
	uint32_t *index_head;
	uint32_t *index_next;
	uint32_t index_mask;
	uint64_t install_batches;       /* bpf_map_update_batch calls that wrote entries */

	/* what pipe_set wrote to "pipes" / "pipe_masks", so an install reads no map;
	 * filled from the maps on first use after a re-adopt; guarded by pipe_lock */
	pthread_mutex_t pipe_lock;
	uint8_t pipe_cached[PF_MAX_PIPES];
	struct pf_pipe pipe_cache[PF_MAX_PIPES];
	struct pf_fields mask_cache[PF_MAX_PIPES * PF_MAX_MASKS];
	struct pf_mask_key mkey_cache[PF_MAX_PIPES * PF_MAX_MASKS];    /* as in "mask_keys" */

	void *miss;                     /* owned by miss/ebpf_miss.c */
	void *capture;                  /* owned by capture.c */
	uint32_t miss_threads;          /* opts->miss_threads: handler threads, 0 = 1 */

	/* replication: multicast groups in XDP, clone sessions on clsact (tc_replicate.bpf.o) */
	int map_group_ports;            /* "group_ports": array of DEVMAP_HASH, one per session */
	struct bpf_object *tc_obj;      /* shares the XDP object's maps */
	int tc_ingress_fd;
	int tc_egress_fd;
	uint8_t tc_attached[PF_MAX_PORTS];      /* filters on this port's clsact */
	uint8_t tc_hook_created[PF_MAX_PORTS];  /* we added the clsact qdisc: remove it on stop */
	void *plan;                     /* plan.c: what a dry instance was given */
};

/* install / remove an entry in a pipe (used by the control API and the miss handler).
 * Fills entry->id. An existing key is updated in place and keeps its id. Thread safe. */
int pf_ebpf_entry_install(struct pf_ebpf *eb, uint32_t pipe, uint32_t mask_idx, uint32_t prefixlen,
			  const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err);
/* pf_entry_add_batch on the ebpf tables: exact/control entries are written with
 * bpf_map_update_batch (BPF_NOEXIST; an existing key falls back to an in-place
 * update keeping its id), other kinds one by one. Thread safe. */
int pf_ebpf_entry_install_batch(struct pf_ebpf *eb, struct pf_entry_req *reqs, uint32_t n, uint32_t *added,
				struct pf_error *err);
/* The cached definition of a pipe and its mask slot (0 or -ENOENT / -ERANGE). */
int pf_ebpf_pipe_get(struct pf_ebpf *eb, uint32_t pipe_id, struct pf_pipe *pipe);
int pf_ebpf_mask_get(struct pf_ebpf *eb, uint32_t pipe_id, uint32_t mask_idx, struct pf_fields *mask);
int pf_ebpf_entry_remove(struct pf_ebpf *eb, uint32_t entry_id, struct pf_error *err);
/* CLOCK_MONOTONIC ns of the last hit, 0 if never (or unknown id) */
uint64_t pf_ebpf_entry_last_seen(struct pf_ebpf *eb, uint32_t entry_id);
/* 1 if entry_id is installed as an exact entry of pipe with this (masked) match */
int pf_ebpf_entry_installed(struct pf_ebpf *eb, uint32_t pipe, const struct pf_fields *match, uint32_t entry_id);

/* Re-inject frame as if received on port: BPF_PROG_RUN with live frames,
 * ingress_ifindex = the port's interface, pf_xdp_meta (packet_path RESUBMIT)
 * in the metadata area. The datapath never hands such a frame to the miss
 * handler again. Thread safe. */
int pf_ebpf_resubmit(struct pf_ebpf *eb, uint32_t port, const void *frame, uint32_t len, struct pf_error *err);

/* Same, saying which pipe missed: the frame is counted again only from that
 * pipe on (pipe >= PF_MAX_PIPES: unknown, counted from the first pipe on its
 * way whose misses go to the handler). */
int pf_ebpf_resubmit_from(struct pf_ebpf *eb, uint32_t port, uint32_t pipe, const void *frame, uint32_t len,
			  struct pf_error *err);

/* Make <pin_root> (mounting bpffs at /sys/fs/bpf if absent) and pin_dir, root-only;
 * *created says pin_dir is new. A bad pin root is a one-line error naming the path. */
int pf_ebpf_pins_prepare(const char *pin_root, const char *pin_dir, int *created, struct pf_error *err);
/* Unlink every pin in dir, then dir itself. */
void pf_ebpf_pins_remove(const char *dir);
/* trace.c: pf_trace_run and pf_counters_dpi on the ebpf backend */
int pf_ebpf_trace_run(pf_instance *inst, uint32_t in_port, const void *frame, uint32_t len, void *out,
		      uint32_t out_cap, struct pf_test_result *res, struct pf_trace *trace, struct pf_error *err);
int pf_ebpf_counters_dpi(pf_instance *inst, struct pf_dpi_counter *out, struct pf_error *err);
/* capture.c: pf_capture_* on the ebpf backend; release stops a running capture */
int pf_ebpf_capture_start(pf_instance *inst, const struct pf_capture_cfg *cfg, const char *path, uint32_t format,
			  uint64_t max_frames, uint64_t duration_ms, struct pf_error *err);
int pf_ebpf_capture_stats(pf_instance *inst, struct pf_capture_stats *out, struct pf_error *err);
int pf_ebpf_capture_stop(pf_instance *inst, struct pf_capture_stats *out, struct pf_error *err);
void pf_ebpf_capture_release(struct pf_ebpf *eb);
int pf_ebpf_bss_write(struct pf_ebpf *eb, const char *name, const void *data, uint32_t len, struct pf_error *err);
int pf_ebpf_dscp_tc_set(pf_instance *inst, const uint8_t *map, struct pf_error *err);

/* ---- between the backend's files (backend_ebpf.c: loader, attach, programming; entries.c;
 * counters.c; progrun.c) ---- */
static inline struct pf_ebpf *pf_ebpf_of(pf_instance *inst)
{
	return inst->priv;
}

/* counters.c: per-CPU values summed / written on every CPU, and the counter ops */
size_t pf_ebpf_percpu_stride(size_t value_size);
int pf_ebpf_percpu_sum(struct pf_ebpf *eb, int fd, uint32_t key, void *out, size_t size);
int pf_ebpf_percpu_fill(struct pf_ebpf *eb, int fd, uint32_t key, const void *value, size_t size);
int pf_ebpf_counters_entries(pf_instance *inst, const uint32_t *ids, uint32_t n, struct pf_counter *out,
			     struct pf_error *err);
int pf_ebpf_counters_pipe(pf_instance *inst, uint32_t pipe_id, struct pf_pipe_counter *out, struct pf_error *err);
int pf_ebpf_counters_port(pf_instance *inst, uint32_t port_id, struct pf_port_counter *out, struct pf_error *err);

/* progrun.c: pf_test_run */
int pf_ebpf_test_run(pf_instance *inst, uint32_t in_port, const void *frame, uint32_t len, void *out,
		     uint32_t out_cap, struct pf_test_result *res, struct pf_error *err);

/* entries.c: what the loader and pipe programming need of the entry tables */
int pf_ebpf_index_alloc(struct pf_ebpf *eb);
void pf_ebpf_slots_adopt(struct pf_ebpf *eb);
void pf_ebpf_pipe_cache_store(struct pf_ebpf *eb, uint32_t pipe_id, const struct pf_pipe *pipe,
			      const struct pf_fields *masks, const struct pf_mask_key *mkeys, uint32_t nmasks);
/* The key of each of pipe_id's PF_MAX_MASKS mask slots (past nmasks: an empty mask), for
 * "mask_keys" and then pf_ebpf_pipe_cache_store. */
void pf_ebpf_mask_keys_plan(struct pf_ebpf *eb, uint32_t pipe_id, const struct pf_fields *masks, uint32_t nmasks,
			    struct pf_mask_key *mkeys);
int pf_ebpf_fwd_check(const struct pf_fwd *fwd, const char *what, struct pf_error *err);
int pf_ebpf_entry_replace(pf_instance *inst, uint32_t id, uint32_t pipe_id, uint32_t mask_idx, uint32_t prefixlen,
			  const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err);
int pf_ebpf_entry_list(pf_instance *inst, uint32_t pipe_id, struct pf_entry_info *out, uint32_t max,
		       uint32_t *count, struct pf_error *err);

/* The value pipe_set writes to "pipes" for pipe_id (checked, its hash bucket block chosen); no map written. */
int pf_ebpf_pipe_value(struct pf_ebpf *eb, uint32_t pipe_id, const struct pf_pipe *pipe, uint32_t nmasks,
		       struct pf_pipe *out, struct pf_error *err);
/* Where an install puts an entry and under which key (slot->kind, key), with no map touched. */
int pf_ebpf_entry_encode(struct pf_ebpf *eb, uint32_t pipe_id, uint32_t mask_idx, uint32_t prefixlen,
			 const struct pf_fields *match, const struct pf_entry *entry, struct pf_ebpf_slot *slot,
			 struct pf_error *err);
/* The map an exact/control entry of mask kind mkind lives in, its key size there, and a slot's key. */
int pf_ebpf_table_fd(struct pf_ebpf *eb, uint8_t mkind);
size_t pf_ebpf_table_key_size(uint8_t mkind);
const void *pf_ebpf_slot_key(const struct pf_ebpf_slot *slot);
/* plan.c: pf_instance_describe (programs and attach points, maps, their entries) of a loaded instance,
 * and the ops of a dry one */
int pf_ebpf_describe(pf_instance *inst, char *buf, uint32_t len, uint32_t *needed, struct pf_error *err);
extern const struct pf_backend_ops pf_backend_ebpf_dry;

/* rx queues of an interface (sysfs), 1 when it cannot say */
uint32_t pf_ebpf_rx_queue_count(const char *ifname);

/* The instance's ebpf state (NULL if inst is not an ebpf instance). */
struct pf_ebpf *pf_ebpf_from_instance(pf_instance *inst);

/* XDP_REDIRECT into a veth is dropped unless the veth's peer runs an XDP
 * program. Returns 1 if ifname is a veth whose peer has none (reason filled),
 * 0 if redirect into it will deliver, negative errno on lookup failure. */
int pf_ebpf_veth_peer_check(const char *ifname, char *reason, size_t reason_len);

#endif
