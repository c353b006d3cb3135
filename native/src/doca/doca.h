/* SPDX-License-Identifier: BSD-2-Clause */
/* State of the doca backend; private to native/src/doca. */
#ifndef PYFLOW_DOCA_H
#define PYFLOW_DOCA_H

#include <pthread.h>
#include <stdbool.h>
#include "internal.h"
#include "miss/miss.h"
#include "doca_flow_api.h"
#include "doca_io.h"

#define PFDOCA_MAX_THREADS 32           /* miss handler threads, one pipe queue and one RSS queue each */
#define PFDOCA_MAX_TEMPLATES 8          /* action templates per pipe */
#define PFDOCA_NO_PIPE 0xffffffffu
/* meta.pkt_meta of a resubmitted frame: tag | the pipe that missed */
#define PFDOCA_RESUBMIT_TAG 0x70660000u
/* meta.mark the RSS pipes put on a missed frame: kind | the pipe that missed */
#define PFDOCA_MARK_MISS 0x00100000u
#define PFDOCA_MARK_RESUBMITTED 0x00200000u
#define PFDOCA_MARK_PIPE 0x0000ffffu
#define PFDOCA_FRAME_MAX 9216
/* vnf mode: pipes live per port, so the pipeline is created once per bound port (a plane) */
#define PFDOCA_MAX_PLANES 4

/* Every DOCA Flow call the backend makes, plus the packet I/O beside it: resolved from
 * the SDK at link time, or from a DOCA Flow implementation loaded with PYFLOW_DOCA_SIM. */
struct pfdoca_api {
#define PFDOCA_FN(ret, name, args) ret(*name) args;
#include "doca_api_list.h"
#undef PFDOCA_FN
	uint16_t (*rx_burst)(uint16_t port_id, uint16_t queue, struct docasim_pkt *pkts, uint16_t n);
	uint16_t (*tx_burst)(uint16_t port_id, uint16_t queue, const struct docasim_pkt *pkts, uint16_t n);
	int (*port_stats)(uint16_t port_id, struct docasim_port_stats *st);
	/* simulator only (NULL on hardware) */
	int (*inject)(uint16_t port_id, const void *frame, uint32_t len, uint32_t flags, void *out, uint32_t out_cap,
		      struct docasim_result *res);
	int (*dump_json)(char *buf, size_t len);
	const char *(*last_error)(void);
};

/* the graph: what the backend asked DOCA Flow to create, rendered from the arguments of its calls */
struct pfdoca_gentry {
	struct pfdoca_gentry *next;
	bool removed;
	char *json;
};

struct pfdoca_gpipe {
	struct pfdoca_gpipe *next;
	char *head;                     /* the pipe's JSON up to its entries */
	struct pfdoca_gentry *entries, *entries_tail;
};

struct pfdoca_port {
	bool in_use;
	bool started;
	uint16_t doca_id;
	char devargs[128];
	struct pf_port cfg;
	struct doca_flow_port *dp;
};

/* one pipe's DOCA objects on one plane (switch mode: the switch manager; vnf mode: one port) */
struct pfdoca_plane_pipe {
	bool created;
	struct doca_flow_pipe *dp;
	struct pfdoca_gpipe *g;
	struct doca_flow_pipe *rss;                     /* where its misses go (fwd miss) */
	struct pfdoca_gpipe *rss_g;
	struct doca_flow_pipe_entry *rss_entries[2];
	/* hash pipes: the DOCA entry at each bucket index and its graph line (a pyflow member owns a range) */
	struct doca_flow_pipe_entry *hde[PF_HASH_BUCKETS];
	struct pfdoca_gentry *hg[PF_HASH_BUCKETS];
};

struct pfdoca_pipe {
	bool in_use;
	bool visiting;                  /* creation order walk */
	bool fwd_changeable;            /* entries carry their own forward */
	bool has_policy;                /* a miss policy learns its misses */
	char name[64];
	struct pf_pipe cfg;
	struct pf_fields masks[PF_MAX_MASKS];
	uint32_t nmasks;
	uint32_t ntemplates;
	uint32_t templates[PFDOCA_MAX_TEMPLATES];       /* action flag sets, by action_idx */
	struct doca_flow_match tmpl;                    /* the match template (basic, lpm) */
	struct pfdoca_plane_pipe pl[PFDOCA_MAX_PLANES];
};

struct pfdoca_entry {
	bool in_use;
	uint32_t pipe;
	uint32_t mask_idx;
	uint32_t prefixlen;
	struct pf_fields match;
	struct pf_entry e;
	/* per plane; NULL on a plane the entry cannot match on (vnf: another port's in_port) */
	struct doca_flow_pipe_entry *de[PFDOCA_MAX_PLANES];
	struct pfdoca_gentry *g[PFDOCA_MAX_PLANES];
	uint64_t seen_pkts;
	uint64_t last_seen_ns;
	uint32_t aging_sec;             /* learned with an idle timeout: DOCA ages it (monitor.aging_sec) */
	uint8_t aged;                   /* planes whose copy DOCA reported aged */
};

struct pfdoca;

struct pfdoca_thread {
	struct pfdoca *d;
	pthread_t tid;
	uint16_t queue;                 /* pipe queue and RSS queue */
	bool running;
};

struct pfdoca {
	pf_instance *inst;
	bool dry;                       /* plan: calls are rendered, not made */
	const struct pfdoca_api *api;
	void *dl;
	char api_source[256];
	uint32_t max_entries;
	uint32_t nthreads;
	uint16_t nqueues;               /* pipe queues: 0 for the control thread, 1.. for handlers */
	pthread_mutex_t lock;

	struct pfdoca_port ports[PF_MAX_PORTS];
	int32_t port_of_doca[PF_MAX_PORTS];     /* DOCA port id -> pyflow port id, -1 */
	struct pfdoca_pipe pipes[PF_MAX_PIPES];
	uint32_t root_pipe;
	bool root_set;
	struct pfdoca_entry *entries;           /* [max_entries], by id */
	uint32_t next_free_hint;
	uint32_t *key_heads;                    /* key hash -> first entry id (chains through key_next) */
	uint32_t *key_next;
	uint32_t key_mask;

	struct pf_session sessions[PF_MAX_SESSIONS];   /* groups: a shared mirror each (DOCA id = session + 1) */
	bool session_in_use[PF_MAX_SESSIONS];
	struct pf_learn policies[PF_MAX_PIPES];
	uint32_t npolicies;
	struct pf_learner *learner;

	bool inited;
	bool started;
	bool vnf;                               /* "vnf,hws": pipes per port, no switch manager */
	bool no_batch;                          /* PYFLOW_DOCA_NO_BATCH: learner installs one by one (bench) */
	uint32_t nplanes;
	struct {
		struct doca_flow_port *port;    /* switch mode: the switch manager; vnf: the plane's port */
		uint16_t doca_id;
		int32_t pf_port;                /* vnf: the pyflow port whose frames this plane sees; -1: all */
		struct doca_flow_pipe *resubmit_root;   /* root when misses are learned: resubmits skip to their pipe */
		struct pfdoca_gpipe *resubmit_root_g;
	} planes[PFDOCA_MAX_PLANES];
	struct doca_flow_pipe_entry *internal_entries[(PF_MAX_PIPES + 1) * PFDOCA_MAX_PLANES];
	uint32_t ninternal;
	struct doca_flow_pipe *created[(PF_MAX_PIPES * 2 + 1) * PFDOCA_MAX_PLANES];   /* creation order, for teardown */
	uint32_t ncreated;
	struct pfdoca_gpipe *graph, *graph_tail;
	uint64_t async_errors;

	struct pfdoca_thread threads[PFDOCA_MAX_THREADS];
	volatile bool running;
};

/* the calling thread's pipe queue: 0 for control calls, a handler's own otherwise */
extern __thread uint16_t pfdoca_queue;

#endif
