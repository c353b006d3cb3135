// SPDX-License-Identifier: BSD-2-Clause
/*
 * docasim: a DOCA Flow stand-in for tests. Same function names and contract as
 * the subset of DOCA Flow 2.9 that pyflow's doca backend uses (declared in
 * native/src/doca/doca_flow_decl.h), so the backend runs unchanged against it.
 *
 * (a) It enforces the API's rules and answers with DOCA's error codes: init
 *     before ports, ports started before pipes, pipes on the switch manager
 *     port, one root pipe per port and domain, queue ids below the configured
 *     pipe queues, entries inactive until doca_flow_entries_process completes
 *     them, forward types valid for the pipe and its domain, entries within
 *     nr_entries, teardown in order (pipes that others forward to last,
 *     representor ports before the switch manager, ports before doca_flow_destroy).
 * (b) It executes the pipes on frames: its own parser fills a doca_flow_match
 *     view of the frame, entries match under their masks (basic: exact, control:
 *     lowest priority value wins, lpm: longest mask), actions modify the frame
 *     from the entry's template with checksums recomputed, forwards go to ports,
 *     pipes, drop or RSS queues. Nothing here shares code with pyflow's own
 *     datapath (bpf/include/pyflow/packet.h).
 *
 * Ports bound with devargs "N,iface=IFNAME" send and receive real frames on
 * that interface (AF_PACKET); frames delivered to RSS queues are read with
 * docasim_rx_burst; a frame sent with docasim_tx_burst on port P enters the
 * ingress root pipe as if received on P, carrying its pkt_meta (the path the
 * packet-resubmit example takes when it re-sends a frame through the PF).
 * Test code only: never shipped.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "doca/doca_flow_decl.h"
#include "doca/doca_fields.h"
#include "doca/doca_io.h"

#define SIM_MAX_PORTS 64
#define SIM_MAX_QUEUES 16         /* pipe queues doca_flow_cfg_set_pipe_queues accepts (a device's limit) */
#define SIM_RXQ 16                /* RSS (rx) queues per port */
#define SIM_RING 4096
#define SIM_MAX_ACTIONS 8
#define SIM_MAX_DESCS 4
#define SIM_MAX_HOPS 16
#define SIM_HASH_MAX_ENTRIES 65536
#define SIM_MAX_NR_ENTRIES (1u << 22)
#define SIM_FRAME_MAX 9216
#define SIM_MAX_MIRRORS 256
#define SIM_MAX_MIRROR_TARGETS 16
#define EXPORT __attribute__((visibility("default")))

struct doca_flow_cfg {
	uint16_t pipe_queues;
	uint32_t nr_mirrors;
	uint32_t nr_counters;
	char mode[128];
	doca_flow_entry_process_cb cb;
};

struct doca_flow_port_cfg {
	char devargs[128];
};

struct ring_slot {
	uint32_t len;
	uint16_t port_id;
	uint32_t mark;
	uint8_t data[SIM_FRAME_MAX];
};

struct ring {
	struct ring_slot *slots;
	uint32_t head, tail;            /* head: next to read */
	uint64_t dropped;
};

struct doca_flow_port {
	bool started;
	uint16_t port_id;
	char devargs[128];
	int fd;                         /* AF_PACKET socket, -1 without iface */
	int ifindex;
	uint32_t npipes;
	struct docasim_port_stats stats;
	struct ring rxq[SIM_RXQ];
};

struct doca_flow_pipe_cfg {
	struct doca_flow_port *port;
	char name[64];
	enum doca_flow_pipe_type type;
	enum doca_flow_pipe_domain domain;
	bool is_root;
	uint32_t nr_entries;
	bool has_match, has_mask, has_monitor, miss_counter;
	struct doca_flow_match match, mask;
	struct doca_flow_monitor monitor;
	uint32_t nr_actions;
	struct doca_flow_actions actions[SIM_MAX_ACTIONS], amasks[SIM_MAX_ACTIONS];
	bool has_amask[SIM_MAX_ACTIONS];
	uint32_t ndescs[SIM_MAX_ACTIONS];
	struct doca_flow_action_desc descs[SIM_MAX_ACTIONS][SIM_MAX_DESCS];
	char desc_fields[SIM_MAX_ACTIONS][SIM_MAX_DESCS][48];
};

/* a resolved forward: RSS queue lists are copied */
struct sim_fwd {
	enum doca_flow_fwd_type type;
	uint16_t port_id;
	struct doca_flow_pipe *next;
	uint16_t nq;
	uint16_t queues[SIM_RXQ];
};

struct doca_flow_pipe {
	struct doca_flow_pipe *next_created;
	struct doca_flow_pipe_cfg cfg;
	struct sim_fwd fwd, fwd_miss;
	struct doca_flow_pipe_entry *entries;   /* in add order */
	struct doca_flow_pipe_entry *entries_tail;
	uint32_t nentries;
	uint64_t miss_pkts, miss_bytes;
	uint32_t refs;                  /* forwards of other pipes / entries that name this pipe */
	/* basic pipes: exact keys hashed (every entry has the pipe's mask) */
	struct doca_flow_pipe_entry **buckets;
	uint32_t bucket_mask;
	/* hash pipes: the entry at each index (DOCA adds hash entries by index, not by match) */
	struct doca_flow_pipe_entry **slots;
};

enum entry_state { E_PENDING_ADD, E_ACTIVE, E_PENDING_DEL, E_ERROR };

struct doca_flow_pipe_entry {
	struct doca_flow_pipe_entry *next;      /* in the pipe */
	struct doca_flow_pipe_entry *hnext;     /* in its bucket (basic pipes) */
	uint32_t hash;
	struct doca_flow_pipe_entry *qnext;     /* on its queue's pending list */
	struct doca_flow_pipe *pipe;
	enum entry_state state;
	enum doca_flow_entry_status status;
	uint16_t queue;
	uint32_t priority;
	uint32_t index;                         /* hash pipes: its entry index */
	bool counted;
	bool has_fwd;
	bool has_actions;
	uint32_t aging_sec;                     /* monitor.aging_sec: 0, never aged */
	uint32_t mirror;                        /* monitor.shared_mirror_id, 0: none */
	uint64_t last_hit_ns;                   /* on the simulator's clock: added or last hit */
	bool aged;                              /* reported by doca_flow_aging_handle (once) */
	bool held;                              /* DOCA_FLOW_WAIT_FOR_BATCH: buffered, not pushed yet */
	struct sim_fwd fwd;
	struct doca_flow_match match, mask;     /* as given */
	bool has_mask;
	struct doca_flow_actions actions;
	/* effective key: fields in use, values under mask */
	uint8_t eff_val[sizeof(struct doca_flow_match)];
	uint8_t eff_mask[sizeof(struct doca_flow_match)];
	uint8_t fidx[PFDOCA_NFIELDS];
	uint8_t nf;
	uint8_t need_l3, need_l4;
	uint32_t mask_bits;
	uint64_t pkts, bytes;
	void *usr_ctx;
};

static struct {
	pthread_mutex_t lock;
	bool inited;
	bool vnf;                       /* "vnf,hws": every port its own pipes, no switch manager */
	struct doca_flow_cfg cfg;
	struct doca_flow_port ports[SIM_MAX_PORTS];
	struct doca_flow_pipe *pipes, *pipes_tail;
	struct doca_flow_pipe_entry *pending[SIM_MAX_QUEUES], *pending_tail[SIM_MAX_QUEUES];
	pthread_t wire;
	bool wire_running;
	volatile bool wire_stop;
	uint64_t violations;
	uint64_t clock_offset_ns;       /* docasim_clock_advance: tests move time on without sleeping */
	uint64_t batches_pushed;        /* entry adds that pushed their queue (not DOCA_FLOW_WAIT_FOR_BATCH) */
	uint64_t process_calls;         /* doca_flow_entries_process calls */
	bool rx_paused;                 /* docasim_rx_pause: frames wait in the RSS rings (a burst for the tests) */
	struct sim_mirror {
		bool configured;
		uint64_t bound;                 /* ports it is bound to, by id */
		uint32_t ntargets;
		uint16_t target_port[SIM_MAX_MIRROR_TARGETS];
	} mirrors[SIM_MAX_MIRRORS + 1];         /* by id, 1..nr_mirrors */
} S = { .lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP };

static __thread char last_error[512];

/* the simulator's clock, which ages entries: CLOCK_MONOTONIC plus what the tests advanced it by */
static uint64_t sim_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + S.clock_offset_ns;
}

/* what the batching test counts: pushes and process calls so far */
EXPORT void docasim_queue_stats(uint64_t *pushes, uint64_t *process_calls)
{
	pthread_mutex_lock(&S.lock);
	*pushes = S.batches_pushed;
	*process_calls = S.process_calls;
	pthread_mutex_unlock(&S.lock);
}

EXPORT void docasim_rx_pause(bool paused)
{
	pthread_mutex_lock(&S.lock);
	S.rx_paused = paused;
	pthread_mutex_unlock(&S.lock);
}

EXPORT void docasim_clock_advance(uint64_t ns)
{
	pthread_mutex_lock(&S.lock);
	S.clock_offset_ns += ns;
	pthread_mutex_unlock(&S.lock);
}

static doca_error_t fail(doca_error_t e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static doca_error_t fail(doca_error_t e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	if (getenv("DOCASIM_TRACE"))
		fprintf(stderr, "docasim: %s\n", last_error);
	return e;
}

#define LOCK() pthread_mutex_lock(&S.lock)
#define UNLOCK() pthread_mutex_unlock(&S.lock)
#define RET(e) do { doca_error_t r_ = (e); UNLOCK(); return r_; } while (0)

EXPORT const char *docasim_last_error(void)
{
	return last_error;
}

EXPORT const char *doca_error_get_name(doca_error_t e)
{
	switch (e) {
	case DOCA_SUCCESS: return "DOCA_SUCCESS";
	case DOCA_ERROR_UNKNOWN: return "DOCA_ERROR_UNKNOWN";
	case DOCA_ERROR_NOT_PERMITTED: return "DOCA_ERROR_NOT_PERMITTED";
	case DOCA_ERROR_IN_USE: return "DOCA_ERROR_IN_USE";
	case DOCA_ERROR_NOT_SUPPORTED: return "DOCA_ERROR_NOT_SUPPORTED";
	case DOCA_ERROR_AGAIN: return "DOCA_ERROR_AGAIN";
	case DOCA_ERROR_INVALID_VALUE: return "DOCA_ERROR_INVALID_VALUE";
	case DOCA_ERROR_NO_MEMORY: return "DOCA_ERROR_NO_MEMORY";
	case DOCA_ERROR_INITIALIZATION: return "DOCA_ERROR_INITIALIZATION";
	case DOCA_ERROR_TIME_OUT: return "DOCA_ERROR_TIME_OUT";
	case DOCA_ERROR_SHUTDOWN: return "DOCA_ERROR_SHUTDOWN";
	case DOCA_ERROR_NOT_FOUND: return "DOCA_ERROR_NOT_FOUND";
	case DOCA_ERROR_BAD_STATE: return "DOCA_ERROR_BAD_STATE";
	case DOCA_ERROR_ALREADY_EXIST: return "DOCA_ERROR_ALREADY_EXIST";
	case DOCA_ERROR_FULL: return "DOCA_ERROR_FULL";
	}
	return "DOCA_ERROR_UNKNOWN";
}

EXPORT const char *doca_error_get_descr(doca_error_t e)
{
	return doca_error_get_name(e);
}

/* ---- library ------------------------------------------------------------ */

EXPORT doca_error_t doca_flow_cfg_create(struct doca_flow_cfg **cfg)
{
	if (!cfg)
		return fail(DOCA_ERROR_INVALID_VALUE, "doca_flow_cfg_create: cfg is NULL");
	*cfg = calloc(1, sizeof(**cfg));
	if (!*cfg)
		return fail(DOCA_ERROR_NO_MEMORY, "doca_flow_cfg_create: out of memory");
	(*cfg)->pipe_queues = 1;
	return DOCA_SUCCESS;
}

EXPORT doca_error_t doca_flow_cfg_destroy(struct doca_flow_cfg *cfg)
{
	free(cfg);
	return DOCA_SUCCESS;
}

EXPORT doca_error_t doca_flow_cfg_set_pipe_queues(struct doca_flow_cfg *cfg, uint16_t pipe_queues)
{
	if (!cfg)
		return fail(DOCA_ERROR_INVALID_VALUE, "cfg is NULL");
	if (pipe_queues == 0 || pipe_queues > SIM_MAX_QUEUES)
		return fail(DOCA_ERROR_INVALID_VALUE, "%u pipe queues: 1 to %u are supported", pipe_queues,
			    SIM_MAX_QUEUES);
	cfg->pipe_queues = pipe_queues;
	return DOCA_SUCCESS;
}

EXPORT doca_error_t doca_flow_cfg_set_nr_counters(struct doca_flow_cfg *cfg, uint32_t nr_counters)
{
	if (!cfg)
		return fail(DOCA_ERROR_INVALID_VALUE, "cfg is NULL");
	cfg->nr_counters = nr_counters;
	return DOCA_SUCCESS;
}

EXPORT doca_error_t doca_flow_cfg_set_mode_args(struct doca_flow_cfg *cfg, const char *mode_args)
{
	if (!cfg || !mode_args)
		return fail(DOCA_ERROR_INVALID_VALUE, "cfg or mode_args is NULL");
	/* the simulator models switch and vnf mode, with hardware steering */
	if ((strncmp(mode_args, "switch,", 7) && strncmp(mode_args, "vnf,", 4)) || !strstr(mode_args, "hws"))
		return fail(DOCA_ERROR_NOT_SUPPORTED, "mode '%s': the simulator runs \"switch,hws\" or \"vnf,hws\"",
			    mode_args);
	snprintf(cfg->mode, sizeof(cfg->mode), "%s", mode_args);
	return DOCA_SUCCESS;
}

EXPORT doca_error_t doca_flow_cfg_set_nr_shared_resource(struct doca_flow_cfg *cfg, uint32_t nr,
						       enum doca_flow_shared_resource_type type)
{
	if (!cfg)
		return fail(DOCA_ERROR_INVALID_VALUE, "cfg is NULL");
	if (type != DOCA_FLOW_SHARED_RESOURCE_MIRROR)
		return fail(DOCA_ERROR_NOT_SUPPORTED, "shared resource type %d: the simulator models mirrors only", type);
	if (nr > SIM_MAX_MIRRORS)
		return fail(DOCA_ERROR_INVALID_VALUE, "%u shared mirrors: at most %u", nr, SIM_MAX_MIRRORS);
	cfg->nr_mirrors = nr;
	return DOCA_SUCCESS;
}

EXPORT doca_error_t doca_flow_cfg_set_cb_entry_process(struct doca_flow_cfg *cfg, doca_flow_entry_process_cb cb)
{
	if (!cfg)
		return fail(DOCA_ERROR_INVALID_VALUE, "cfg is NULL");
	cfg->cb = cb;
	return DOCA_SUCCESS;
}

EXPORT doca_error_t doca_flow_init(const struct doca_flow_cfg *cfg)
{
	LOCK();
	if (S.inited)
		RET(fail(DOCA_ERROR_BAD_STATE, "doca_flow_init: already initialised"));
	if (!cfg || !cfg->mode[0])
		RET(fail(DOCA_ERROR_INVALID_VALUE, "doca_flow_init: no mode_args set"));
	S.cfg = *cfg;
	S.vnf = !strncmp(cfg->mode, "vnf,", 4);
	memset(S.mirrors, 0, sizeof(S.mirrors));
	S.inited = true;
	for (int q = 0; q < SIM_MAX_QUEUES; q++)
		S.pending[q] = S.pending_tail[q] = NULL;
	RET(DOCA_SUCCESS);
}

static void wire_stop(void);

EXPORT void doca_flow_destroy(void)
{
	LOCK();
	for (int p = 0; p < SIM_MAX_PORTS; p++)
		if (S.ports[p].started) {
			/* documented order: stop every port before destroying the library */
			S.violations++;
			fail(DOCA_ERROR_BAD_STATE, "doca_flow_destroy: port %d still started", p);
		}
	S.inited = false;
	UNLOCK();
	wire_stop();
}

EXPORT uint64_t docasim_violations(void)
{
	return S.violations;
}

/* ---- ports --------------------------------------------------------------- */

EXPORT doca_error_t doca_flow_port_cfg_create(struct doca_flow_port_cfg **cfg)
{
	*cfg = calloc(1, sizeof(**cfg));
	return *cfg ? DOCA_SUCCESS : fail(DOCA_ERROR_NO_MEMORY, "out of memory");
}

EXPORT doca_error_t doca_flow_port_cfg_destroy(struct doca_flow_port_cfg *cfg)
{
	free(cfg);
	return DOCA_SUCCESS;
}

EXPORT doca_error_t doca_flow_port_cfg_set_devargs(struct doca_flow_port_cfg *cfg, const char *devargs)
{
	if (!cfg || !devargs || !*devargs)
		return fail(DOCA_ERROR_INVALID_VALUE, "devargs is empty");
	snprintf(cfg->devargs, sizeof(cfg->devargs), "%s", devargs);
	return DOCA_SUCCESS;
}

static void *wire_loop(void *arg);

static void wire_start(void)
{
	if (S.wire_running)
		return;
	S.wire_stop = false;
	if (pthread_create(&S.wire, NULL, wire_loop, NULL) == 0)
		S.wire_running = true;
}

static void wire_stop(void)
{
	bool any = false;

	LOCK();
	for (int p = 0; p < SIM_MAX_PORTS; p++)
		any |= S.ports[p].started && S.ports[p].fd >= 0;
	if (any || !S.wire_running) {
		UNLOCK();
		return;
	}
	S.wire_stop = true;
	UNLOCK();
	pthread_join(S.wire, NULL);
	S.wire_running = false;
}

static int open_iface(const char *ifname, int *ifindex)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int one = 1, bufsz = 16 << 20;
	int fd;

	*ifindex = (int)if_nametoindex(ifname);
	if (!*ifindex)
		return -ENODEV;
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (fd < 0)
		return -errno;
	sll.sll_ifindex = *ifindex;
	/* the frames this socket sends must not come back as received */
	setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
	/* room for a burst: a NIC has its rx ring, this socket only its buffer */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof(bufsz));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof(bufsz));
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

EXPORT doca_error_t doca_flow_port_start(const struct doca_flow_port_cfg *cfg, struct doca_flow_port **out)
{
	char *end;
	unsigned long id;
	const char *iface;
	struct doca_flow_port *p;

	LOCK();
	if (!S.inited)
		RET(fail(DOCA_ERROR_BAD_STATE, "doca_flow_port_start: doca_flow_init was not called"));
	if (!cfg || !out)
		RET(fail(DOCA_ERROR_INVALID_VALUE, "doca_flow_port_start: cfg and port are required"));
	id = strtoul(cfg->devargs, &end, 10);
	if (end == cfg->devargs || (*end && *end != ',') || id >= SIM_MAX_PORTS)
		RET(fail(DOCA_ERROR_INVALID_VALUE, "devargs '%s': expected a port id below %u, then ,iface=IFNAME",
			 cfg->devargs, SIM_MAX_PORTS));
	p = &S.ports[id];
	if (p->started)
		RET(fail(DOCA_ERROR_ALREADY_EXIST, "port %lu is already started", id));
	if (S.vnf && strstr(cfg->devargs, "representor"))
		RET(fail(DOCA_ERROR_NOT_SUPPORTED, "port %lu: vnf mode has no representors (devargs '%s'); "
			 "representors belong to switch mode", id, cfg->devargs));
	memset(p, 0, sizeof(*p));
	p->port_id = (uint16_t)id;
	p->fd = -1;
	snprintf(p->devargs, sizeof(p->devargs), "%s", cfg->devargs);
	iface = strstr(cfg->devargs, "iface=");
	if (iface) {
		char name[IFNAMSIZ] = "";
		int fd;

		sscanf(iface + 6, "%15[^,]", name);
		fd = open_iface(name, &p->ifindex);
		if (fd < 0)
			RET(fail(DOCA_ERROR_NOT_FOUND, "port %lu: interface '%s': %s", id, name, strerror(-fd)));
		p->fd = fd;
	}
	for (int q = 0; q < SIM_RXQ; q++) {
		p->rxq[q].slots = calloc(SIM_RING, sizeof(struct ring_slot));
		if (!p->rxq[q].slots) {
			for (int k = 0; k < q; k++)
				free(p->rxq[k].slots);
			if (p->fd >= 0)
				close(p->fd);
			RET(fail(DOCA_ERROR_NO_MEMORY, "port %lu: out of memory", id));
		}
	}
	p->started = true;
	*out = p;
	if (p->fd >= 0)
		wire_start();
	RET(DOCA_SUCCESS);
}

/* switch mode: the switch manager is the started port with the lowest id; vnf mode has none */
static struct doca_flow_port *switch_port(void)
{
	if (S.vnf)
		return NULL;
	for (int p = 0; p < SIM_MAX_PORTS; p++)
		if (S.ports[p].started)
			return &S.ports[p];
	return NULL;
}

EXPORT struct doca_flow_port *doca_flow_port_switch_get(const struct doca_flow_port *port)
{
	struct doca_flow_port *sw;

	LOCK();
	sw = port && port->started ? switch_port() : NULL;
	UNLOCK();
	return sw;
}

EXPORT doca_error_t doca_flow_port_stop(struct doca_flow_port *port)
{
	LOCK();
	if (!port || !port->started)
		RET(fail(DOCA_ERROR_BAD_STATE, "doca_flow_port_stop: port is not started"));
	if (port->npipes)
		RET(fail(DOCA_ERROR_IN_USE, "doca_flow_port_stop: port %u still has %u pipes; destroy them first",
			 port->port_id, port->npipes));
	if (port == switch_port())
		for (int p = port->port_id + 1; p < SIM_MAX_PORTS; p++)
			if (S.ports[p].started)
				RET(fail(DOCA_ERROR_IN_USE, "doca_flow_port_stop: port %u is the switch manager and port "
					 "%d is still started; stop the representors first", port->port_id, p));
	port->started = false;
	if (port->fd >= 0)
		close(port->fd);
	port->fd = -1;
	for (int q = 0; q < SIM_RXQ; q++) {
		free(port->rxq[q].slots);
		port->rxq[q].slots = NULL;
	}
	UNLOCK();
	wire_stop();
	return DOCA_SUCCESS;
}

/* ---- pipes --------------------------------------------------------------- */

EXPORT doca_error_t doca_flow_pipe_cfg_create(struct doca_flow_pipe_cfg **cfg, struct doca_flow_port *port)
{
	LOCK();
	if (!S.inited)
		RET(fail(DOCA_ERROR_BAD_STATE, "doca_flow_pipe_cfg_create: doca_flow_init was not called"));
	if (!cfg || !port || !port->started)
		RET(fail(DOCA_ERROR_BAD_STATE, "doca_flow_pipe_cfg_create: the port is not started"));
	if (!S.vnf && port != switch_port())
		RET(fail(DOCA_ERROR_NOT_SUPPORTED, "doca_flow_pipe_cfg_create: port %u is not the switch manager "
			 "(switch mode: pipes live on doca_flow_port_switch_get())", port->port_id));
	*cfg = calloc(1, sizeof(**cfg));
	if (!*cfg)
		RET(fail(DOCA_ERROR_NO_MEMORY, "out of memory"));
	(*cfg)->port = port;
	(*cfg)->nr_entries = 1;
	RET(DOCA_SUCCESS);
}

EXPORT doca_error_t doca_flow_pipe_cfg_destroy(struct doca_flow_pipe_cfg *cfg)
{
	free(cfg);
	return DOCA_SUCCESS;
}

EXPORT doca_error_t doca_flow_pipe_cfg_set_name(struct doca_flow_pipe_cfg *cfg, const char *name)
{
	snprintf(cfg->name, sizeof(cfg->name), "%s", name ? name : "");
	return DOCA_SUCCESS;
}

EXPORT doca_error_t doca_flow_pipe_cfg_set_type(struct doca_flow_pipe_cfg *cfg, enum doca_flow_pipe_type type)
{
	if (type != DOCA_FLOW_PIPE_BASIC && type != DOCA_FLOW_PIPE_CONTROL && type != DOCA_FLOW_PIPE_LPM &&
	    type != DOCA_FLOW_PIPE_HASH)
		return fail(DOCA_ERROR_NOT_SUPPORTED, "pipe %s: type %d is not simulated (basic, control, lpm, hash)",
			    cfg->name, type);
	cfg->type = type;
	return DOCA_SUCCESS;
}

EXPORT doca_error_t doca_flow_pipe_cfg_set_domain(struct doca_flow_pipe_cfg *cfg, enum doca_flow_pipe_domain domain)
{
	if (domain != DOCA_FLOW_PIPE_DOMAIN_DEFAULT && domain != DOCA_FLOW_PIPE_DOMAIN_EGRESS)
		return fail(DOCA_ERROR_NOT_SUPPORTED, "pipe %s: domain %d is not simulated", cfg->name, domain);
	cfg->domain = domain;
	return DOCA_SUCCESS;
}

EXPORT doca_error_t doca_flow_pipe_cfg_set_is_root(struct doca_flow_pipe_cfg *cfg, bool is_root)
{
	cfg->is_root = is_root;
	return DOCA_SUCCESS;
}

EXPORT doca_error_t doca_flow_pipe_cfg_set_nr_entries(struct doca_flow_pipe_cfg *cfg, uint32_t nr_entries)
{
	if (!nr_entries || nr_entries > SIM_MAX_NR_ENTRIES)
		return fail(DOCA_ERROR_INVALID_VALUE, "pipe %s: nr_entries %u out of range (1..%u)", cfg->name,
			    nr_entries, SIM_MAX_NR_ENTRIES);
	cfg->nr_entries = nr_entries;
	return DOCA_SUCCESS;
}

EXPORT doca_error_t doca_flow_pipe_cfg_set_match(struct doca_flow_pipe_cfg *cfg, const struct doca_flow_match *match,
						 const struct doca_flow_match *match_mask)
{
	cfg->has_match = match != NULL;
	cfg->has_mask = match_mask != NULL;
	if (match)
		cfg->match = *match;
	if (match_mask)
		cfg->mask = *match_mask;
	return DOCA_SUCCESS;
}

static const char *const known_desc_fields[] = { "outer.ipv4.ttl", "outer.ipv6.hop_limit" };

EXPORT doca_error_t doca_flow_pipe_cfg_set_actions(struct doca_flow_pipe_cfg *cfg,
						   struct doca_flow_actions *const *actions,
						   struct doca_flow_actions *const *actions_masks,
						   struct doca_flow_action_descs *const *action_descs, size_t nr_actions)
{
	if (nr_actions > SIM_MAX_ACTIONS)
		return fail(DOCA_ERROR_INVALID_VALUE, "pipe %s: %zu action templates, at most %u", cfg->name,
			    nr_actions, SIM_MAX_ACTIONS);
	if (nr_actions && !actions)
		return fail(DOCA_ERROR_INVALID_VALUE, "pipe %s: nr_actions %zu without actions", cfg->name, nr_actions);
	for (size_t i = 0; i < nr_actions; i++) {
		cfg->actions[i] = *actions[i];
		cfg->has_amask[i] = actions_masks && actions_masks[i];
		if (cfg->has_amask[i])
			cfg->amasks[i] = *actions_masks[i];
		cfg->ndescs[i] = 0;
		if (action_descs && action_descs[i]) {
			const struct doca_flow_action_descs *d = action_descs[i];

			if (d->nb_action_desc > SIM_MAX_DESCS)
				return fail(DOCA_ERROR_INVALID_VALUE, "pipe %s: %u action descs, at most %u", cfg->name,
					    d->nb_action_desc, SIM_MAX_DESCS);
			for (unsigned k = 0; k < d->nb_action_desc; k++) {
				const struct doca_flow_action_desc *ad = &d->desc_array[k];
				const char *f = ad->field_op.dst.field_string;
				bool known = false;

				for (size_t j = 0; f && j < sizeof(known_desc_fields) / sizeof(known_desc_fields[0]); j++)
					known |= !strcmp(f, known_desc_fields[j]);
				if (ad->type != DOCA_FLOW_ACTION_ADD || !known)
					return fail(DOCA_ERROR_NOT_SUPPORTED, "pipe %s: action desc %d on '%s' is not "
						    "simulated (add on outer.ipv4.ttl / outer.ipv6.hop_limit)", cfg->name,
						    ad->type, f ? f : "(null)");
				cfg->descs[i][k] = *ad;
				snprintf(cfg->desc_fields[i][k], sizeof(cfg->desc_fields[i][k]), "%s", f);
				cfg->descs[i][k].field_op.dst.field_string = cfg->desc_fields[i][k];
			}
			cfg->ndescs[i] = d->nb_action_desc;
		}
	}
	cfg->nr_actions = (uint32_t)nr_actions;
	return DOCA_SUCCESS;
}

EXPORT doca_error_t doca_flow_pipe_cfg_set_monitor(struct doca_flow_pipe_cfg *cfg, const struct doca_flow_monitor *m)
{
	cfg->has_monitor = m != NULL;
	if (m)
		cfg->monitor = *m;
	return DOCA_SUCCESS;
}

EXPORT doca_error_t doca_flow_pipe_cfg_set_miss_counter(struct doca_flow_pipe_cfg *cfg, bool miss_counter)
{
	cfg->miss_counter = miss_counter;
	return DOCA_SUCCESS;
}

static bool pipe_exists(const struct doca_flow_pipe *p)
{
	for (struct doca_flow_pipe *q = S.pipes; q; q = q->next_created)
		if (q == p)
			return true;
	return false;
}

/* Resolve and check a forward of a pipe (what: "fwd", "fwd_miss", "entry fwd"). */
static doca_error_t fwd_resolve(const struct doca_flow_pipe_cfg *pc, const char *what, const struct doca_flow_fwd *f,
				struct sim_fwd *out, bool changeable_ok)
{
	memset(out, 0, sizeof(*out));
	if (!f) {
		out->type = DOCA_FLOW_FWD_NONE;
		return DOCA_SUCCESS;
	}
	out->type = f->type;
	switch (f->type) {
	case DOCA_FLOW_FWD_NONE:
	case DOCA_FLOW_FWD_DROP:
		return DOCA_SUCCESS;
	case DOCA_FLOW_FWD_CHANGEABLE:
		if (!changeable_ok)
			return fail(DOCA_ERROR_INVALID_VALUE, "pipe %s: %s: FWD_CHANGEABLE is a pipe template type",
				    pc->name, what);
		return DOCA_SUCCESS;
	case DOCA_FLOW_FWD_PORT:
		if (f->port_id >= SIM_MAX_PORTS || !S.ports[f->port_id].started)
			return fail(DOCA_ERROR_INVALID_VALUE, "pipe %s: %s to port %u, which is not started", pc->name,
				    what, f->port_id);
		out->port_id = f->port_id;
		return DOCA_SUCCESS;
	case DOCA_FLOW_FWD_PIPE:
		if (!f->next_pipe) {
			if (changeable_ok)
				return DOCA_SUCCESS;    /* next pipe given per entry */
			return fail(DOCA_ERROR_INVALID_VALUE, "pipe %s: %s to a NULL pipe", pc->name, what);
		}
		if (!pipe_exists(f->next_pipe))
			return fail(DOCA_ERROR_INVALID_VALUE, "pipe %s: %s to a pipe that does not exist", pc->name, what);
		if (f->next_pipe->cfg.port != pc->port)
			return fail(DOCA_ERROR_INVALID_VALUE, "pipe %s: %s to pipe %s of another port", pc->name, what,
				    f->next_pipe->cfg.name);
		if (f->next_pipe->cfg.is_root)
			return fail(DOCA_ERROR_INVALID_VALUE, "pipe %s: %s to root pipe %s", pc->name, what,
				    f->next_pipe->cfg.name);
		out->next = f->next_pipe;
		return DOCA_SUCCESS;
	case DOCA_FLOW_FWD_RSS:
		/* RSS queues are an rx resource: egress pipes reach them through an ingress pipe */
		if (pc->domain == DOCA_FLOW_PIPE_DOMAIN_EGRESS)
			return fail(DOCA_ERROR_NOT_SUPPORTED, "pipe %s: %s RSS in the egress domain; forward to an "
				    "ingress pipe that does RSS", pc->name, what);
		if (f->rss_type != DOCA_FLOW_RESOURCE_TYPE_NON_SHARED)
			return fail(DOCA_ERROR_NOT_SUPPORTED, "pipe %s: %s: only non-shared RSS is simulated", pc->name,
				    what);
		if (f->rss.nr_queues <= 0 || f->rss.nr_queues > SIM_RXQ || !f->rss.queues_array)
			return fail(DOCA_ERROR_INVALID_VALUE, "pipe %s: %s RSS over %d queues (1..%u, with an array)",
				    pc->name, what, f->rss.nr_queues, SIM_RXQ);
		for (int i = 0; i < f->rss.nr_queues; i++) {
			if (f->rss.queues_array[i] >= SIM_RXQ)
				return fail(DOCA_ERROR_INVALID_VALUE, "pipe %s: %s RSS queue %u out of range (0..%u)",
					    pc->name, what, f->rss.queues_array[i], SIM_RXQ - 1);
			out->queues[i] = f->rss.queues_array[i];
		}
		out->nq = (uint16_t)f->rss.nr_queues;
		return DOCA_SUCCESS;
	default:
		return fail(DOCA_ERROR_NOT_SUPPORTED, "pipe %s: %s type %d is not simulated", pc->name, what, f->type);
	}
}

EXPORT doca_error_t doca_flow_pipe_create(const struct doca_flow_pipe_cfg *cfg, const struct doca_flow_fwd *fwd,
					  const struct doca_flow_fwd *fwd_miss, struct doca_flow_pipe **out)
{
	struct doca_flow_pipe *p;
	doca_error_t e;

	LOCK();
	if (!S.inited)
		RET(fail(DOCA_ERROR_BAD_STATE, "doca_flow_pipe_create: doca_flow_init was not called"));
	if (!cfg || !out || !cfg->port->started)
		RET(fail(DOCA_ERROR_BAD_STATE, "doca_flow_pipe_create: the pipe's port is not started"));
	if (cfg->is_root)
		for (struct doca_flow_pipe *q = S.pipes; q; q = q->next_created)
			if (q->cfg.is_root && q->cfg.port == cfg->port && q->cfg.domain == cfg->domain)
				RET(fail(DOCA_ERROR_ALREADY_EXIST, "pipe %s: port %u already has root pipe %s in this "
					 "domain", cfg->name, cfg->port->port_id, q->cfg.name));
	if (cfg->type == DOCA_FLOW_PIPE_LPM && (!cfg->has_match || cfg->nr_actions > 1))
		RET(fail(DOCA_ERROR_INVALID_VALUE, "pipe %s: an LPM pipe needs a match and at most one action template",
			 cfg->name));
	if (cfg->type == DOCA_FLOW_PIPE_HASH && (!cfg->has_mask || cfg->has_match || !cfg->nr_entries ||
						 cfg->nr_entries > SIM_HASH_MAX_ENTRIES))
		RET(fail(DOCA_ERROR_INVALID_VALUE, "pipe %s: a hash pipe needs a match mask (the fields hashed), no "
			 "match, and 1..%u entries (got %u)", cfg->name, SIM_HASH_MAX_ENTRIES, cfg->nr_entries));
	if (cfg->type != DOCA_FLOW_PIPE_BASIC && cfg->type != DOCA_FLOW_PIPE_CONTROL &&
	    cfg->type != DOCA_FLOW_PIPE_LPM && cfg->type != DOCA_FLOW_PIPE_HASH)
		RET(fail(DOCA_ERROR_NOT_SUPPORTED, "pipe %s: pipe type %d is not simulated", cfg->name, cfg->type));
	if (cfg->has_monitor && cfg->monitor.counter_type == DOCA_FLOW_RESOURCE_TYPE_SHARED)
		RET(fail(DOCA_ERROR_NOT_SUPPORTED, "pipe %s: shared counters are not simulated", cfg->name));
	p = calloc(1, sizeof(*p));
	if (!p)
		RET(fail(DOCA_ERROR_NO_MEMORY, "out of memory"));
	p->cfg = *cfg;
	if (cfg->type == DOCA_FLOW_PIPE_BASIC) {
		uint32_t n = 16;

		while (n < cfg->nr_entries && n < (1u << 20))
			n <<= 1;
		p->buckets = calloc(n, sizeof(*p->buckets));
		if (!p->buckets) {
			free(p);
			RET(fail(DOCA_ERROR_NO_MEMORY, "pipe %s: out of memory", cfg->name));
		}
		p->bucket_mask = n - 1;
	}
	if (cfg->type == DOCA_FLOW_PIPE_HASH) {
		p->slots = calloc(cfg->nr_entries, sizeof(*p->slots));
		if (!p->slots) {
			free(p);
			RET(fail(DOCA_ERROR_NO_MEMORY, "pipe %s: out of memory", cfg->name));
		}
	}
	for (uint32_t i = 0; i < cfg->nr_actions; i++)
		for (uint32_t k = 0; k < cfg->ndescs[i]; k++)
			p->cfg.descs[i][k].field_op.dst.field_string = p->cfg.desc_fields[i][k];
	e = fwd_resolve(cfg, "fwd", fwd, &p->fwd, true);
	if (!e && fwd_miss && fwd_miss->type != DOCA_FLOW_FWD_PIPE && fwd_miss->type != DOCA_FLOW_FWD_DROP &&
	    fwd_miss->type != DOCA_FLOW_FWD_NONE)
		e = fail(DOCA_ERROR_NOT_SUPPORTED, "pipe %s: fwd_miss type %d: a miss goes to a pipe or is dropped",
			 cfg->name, fwd_miss->type);
	if (!e)
		e = fwd_resolve(cfg, "fwd_miss", fwd_miss, &p->fwd_miss, false);
	if (e) {
		free(p);
		RET(e);
	}
	if (p->fwd.next)
		p->fwd.next->refs++;
	if (p->fwd_miss.next)
		p->fwd_miss.next->refs++;
	if (S.pipes_tail)
		S.pipes_tail->next_created = p;
	else
		S.pipes = p;
	S.pipes_tail = p;
	cfg->port->npipes++;
	*out = p;
	RET(DOCA_SUCCESS);
}

static void entry_free(struct doca_flow_pipe_entry *e)
{
	if (e->has_fwd && e->fwd.next)
		e->fwd.next->refs--;
	free(e);
}

static void bucket_unlink(struct doca_flow_pipe *p, struct doca_flow_pipe_entry *e);

static void pipe_unlink_entry(struct doca_flow_pipe *p, struct doca_flow_pipe_entry *e)
{
	struct doca_flow_pipe_entry **pp = &p->entries, *prev = NULL;

	bucket_unlink(p, e);
	if (p->slots && e->index < p->cfg.nr_entries && p->slots[e->index] == e)
		p->slots[e->index] = NULL;
	for (; *pp; prev = *pp, pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			if (p->entries_tail == e)
				p->entries_tail = prev;
			p->nentries--;
			return;
		}
}

static void queue_unlink(struct doca_flow_pipe_entry *e)
{
	struct doca_flow_pipe_entry **pp = &S.pending[e->queue], *prev = NULL;

	for (; *pp; prev = *pp, pp = &(*pp)->qnext)
		if (*pp == e) {
			*pp = e->qnext;
			if (S.pending_tail[e->queue] == e)
				S.pending_tail[e->queue] = prev;
			return;
		}
}

EXPORT doca_error_t doca_flow_pipe_destroy(struct doca_flow_pipe *pipe)
{
	struct doca_flow_pipe **pp, *prev = NULL;

	LOCK();
	if (!pipe || !pipe_exists(pipe))
		RET(fail(DOCA_ERROR_INVALID_VALUE, "doca_flow_pipe_destroy: no such pipe"));
	if (pipe->refs)
		RET(fail(DOCA_ERROR_IN_USE, "doca_flow_pipe_destroy: pipe %s is the forward target of %u pipes or "
			 "entries; destroy those first", pipe->cfg.name, pipe->refs));
	for (struct doca_flow_pipe_entry *e = pipe->entries, *n; e; e = n) {
		n = e->next;
		if (e->state == E_PENDING_ADD || e->state == E_PENDING_DEL)
			queue_unlink(e);
		entry_free(e);
	}
	if (pipe->fwd.next)
		pipe->fwd.next->refs--;
	if (pipe->fwd_miss.next)
		pipe->fwd_miss.next->refs--;
	for (pp = &S.pipes; *pp; prev = *pp, pp = &(*pp)->next_created)
		if (*pp == pipe) {
			*pp = pipe->next_created;
			if (S.pipes_tail == pipe)
				S.pipes_tail = prev;
			break;
		}
	pipe->cfg.port->npipes--;
	free(pipe->buckets);
	free(pipe->slots);
	free(pipe);
	RET(DOCA_SUCCESS);
}

/* ---- entries ------------------------------------------------------------- */

static bool field_nonzero(const void *base, size_t off, unsigned size)
{
	const uint8_t *b = (const uint8_t *)base + off;

	for (unsigned i = 0; i < size; i++)
		if (b[i])
			return true;
	return false;
}

/* A field of the ip4/ip6 union counts only under the l3_type its struct declares (the union's selector). */
static bool l3_ok(const struct pfdoca_field *f, enum doca_flow_l3_type t)
{
	if (!f->l3)
		return true;
	return (f->l3 == 4 && t == DOCA_FLOW_L3_TYPE_IP4) || (f->l3 == 6 && t == DOCA_FLOW_L3_TYPE_IP6);
}

/*
 * The key an entry matches. Basic and LPM pipes: the pipe's match template
 * says which fields are matched (a non-zero field; all ones = the value comes
 * from the entry, anything else = a constant of the pipe), under the pipe's
 * match_mask when it gave one. Control pipes: the entry's own match and mask
 * (without a mask, every non-zero field of its match is matched exactly).
 */
static void entry_key(struct doca_flow_pipe_entry *e)
{
	const struct doca_flow_pipe_cfg *pc = &e->pipe->cfg;
	bool control = pc->type == DOCA_FLOW_PIPE_CONTROL;
	const struct doca_flow_match *tmpl = control ? &e->match : &pc->match;

	e->nf = 0;
	e->mask_bits = 0;
	e->need_l3 = tmpl->outer.l3_type == DOCA_FLOW_L3_TYPE_IP4 ? 4 : tmpl->outer.l3_type == DOCA_FLOW_L3_TYPE_IP6 ? 6 : 0;
	e->need_l4 = 0;
	memset(e->eff_val, 0, sizeof(e->eff_val));
	memset(e->eff_mask, 0, sizeof(e->eff_mask));
	for (unsigned i = 0; i < PFDOCA_NFIELDS; i++) {
		const struct pfdoca_field *f = &pfdoca_fields[i];
		const uint8_t *t = (const uint8_t *)tmpl + f->match_off;
		const uint8_t *m;
		bool all_ones = true;
		bool used;

		if (!l3_ok(f, tmpl->outer.l3_type))
			continue;
		if (control)
			used = e->has_mask ? field_nonzero(&e->mask, f->match_off, f->size)
					   : field_nonzero(&e->match, f->match_off, f->size);
		else
			used = field_nonzero(tmpl, f->match_off, f->size) ||
			       (pc->has_mask && field_nonzero(&pc->mask, f->match_off, f->size));
		if (!used)
			continue;
		for (unsigned k = 0; k < f->size; k++)
			all_ones &= t[k] == 0xff;
		if (control)
			m = e->has_mask ? (const uint8_t *)&e->mask + f->match_off : NULL;
		else if (e->has_mask)   /* lpm: the entry's prefix mask */
			m = (const uint8_t *)&e->mask + f->match_off;
		else
			m = pc->has_mask ? (const uint8_t *)&pc->mask + f->match_off : NULL;
		for (unsigned k = 0; k < f->size; k++) {
			uint8_t mk = m ? m[k] : 0xff;
			/* basic/lpm: a changeable field takes the entry's value, a constant the pipe's */
			uint8_t v = (control || all_ones) ? ((const uint8_t *)&e->match + f->match_off)[k] : t[k];

			e->eff_mask[f->match_off + k] = mk;
			e->eff_val[f->match_off + k] = v & mk;
			e->mask_bits += (unsigned)__builtin_popcount(mk);
		}
		e->fidx[e->nf++] = (uint8_t)i;
		if (f->l3 && !e->need_l3)
			e->need_l3 = (uint8_t)f->l3;
		e->need_l4 |= (uint8_t)f->l4;
	}
}

/* the hash of a key: the bytes under mask of the entry's fields */
static uint32_t key_hash(const struct doca_flow_pipe_entry *e, const uint8_t *v, const uint8_t *mask)
{
	uint32_t h = 2166136261u;

	for (unsigned i = 0; i < e->nf; i++) {
		const struct pfdoca_field *fd = &pfdoca_fields[e->fidx[i]];

		for (unsigned k = 0; k < fd->size; k++)
			h = (h ^ (uint8_t)(v[fd->match_off + k] & mask[fd->match_off + k])) * 16777619u;
	}
	return h;
}

static void bucket_unlink(struct doca_flow_pipe *p, struct doca_flow_pipe_entry *e)
{
	struct doca_flow_pipe_entry **pp;

	if (!p->buckets)
		return;
	for (pp = &p->buckets[e->hash & p->bucket_mask]; *pp; pp = &(*pp)->hnext)
		if (*pp == e) {
			*pp = e->hnext;
			return;
		}
}

static bool same_key(const struct doca_flow_pipe_entry *a, const struct doca_flow_pipe_entry *b)
{
	return a->need_l3 == b->need_l3 && !memcmp(a->eff_val, b->eff_val, sizeof(a->eff_val)) &&
	       !memcmp(a->eff_mask, b->eff_mask, sizeof(a->eff_mask));
}

static doca_error_t entry_add(uint16_t queue, struct doca_flow_pipe *pipe, enum doca_flow_pipe_type want,
			      const char *call, uint32_t priority, uint32_t index, const struct doca_flow_match *match,
			      const struct doca_flow_match *mask, const struct doca_flow_actions *actions,
			      const struct doca_flow_monitor *monitor, const struct doca_flow_fwd *fwd, uint32_t flags,
			      void *usr_ctx, struct doca_flow_pipe_entry **out)
{
	struct doca_flow_pipe_entry *e;
	doca_error_t err;

	LOCK();
	if (!S.inited)
		RET(fail(DOCA_ERROR_BAD_STATE, "%s: doca_flow_init was not called", call));
	if (!pipe || !pipe_exists(pipe))
		RET(fail(DOCA_ERROR_INVALID_VALUE, "%s: no such pipe", call));
	if (queue >= S.cfg.pipe_queues)
		RET(fail(DOCA_ERROR_INVALID_VALUE, "%s: pipe %s: queue %u out of range (%u pipe queues configured)",
			 call, pipe->cfg.name, queue, S.cfg.pipe_queues));
	if (pipe->cfg.type != want)
		RET(fail(DOCA_ERROR_NOT_SUPPORTED, "%s: pipe %s is not of the type this call adds to", call,
			 pipe->cfg.name));
	if (pipe->nentries >= pipe->cfg.nr_entries)
		RET(fail(DOCA_ERROR_FULL, "%s: pipe %s holds its nr_entries (%u)", call, pipe->cfg.name,
			 pipe->cfg.nr_entries));
	if (flags > DOCA_FLOW_WAIT_FOR_BATCH)
		RET(fail(DOCA_ERROR_INVALID_VALUE, "%s: flags %u", call, flags));
	if (want != DOCA_FLOW_PIPE_CONTROL && want != DOCA_FLOW_PIPE_HASH && !match)
		RET(fail(DOCA_ERROR_INVALID_VALUE, "%s: pipe %s: match is required", call, pipe->cfg.name));
	if (want == DOCA_FLOW_PIPE_HASH && index >= pipe->cfg.nr_entries)
		RET(fail(DOCA_ERROR_INVALID_VALUE, "%s: pipe %s: entry index %u, the pipe has %u entries", call,
			 pipe->cfg.name, index, pipe->cfg.nr_entries));
	if (want == DOCA_FLOW_PIPE_HASH && pipe->slots[index] && pipe->slots[index]->state != E_PENDING_DEL &&
	    pipe->slots[index]->state != E_ERROR)
		RET(fail(DOCA_ERROR_ALREADY_EXIST, "%s: pipe %s: entry index %u is taken", call, pipe->cfg.name,
			 index));
	if (actions && pipe->cfg.nr_actions && actions->action_idx >= pipe->cfg.nr_actions)
		RET(fail(DOCA_ERROR_INVALID_VALUE, "%s: pipe %s: action_idx %u, the pipe has %u action templates", call,
			 pipe->cfg.name, actions->action_idx, pipe->cfg.nr_actions));
	if (monitor && monitor->counter_type == DOCA_FLOW_RESOURCE_TYPE_SHARED)
		RET(fail(DOCA_ERROR_NOT_SUPPORTED, "%s: shared counters are not simulated", call));
	e = calloc(1, sizeof(*e));
	if (!e)
		RET(fail(DOCA_ERROR_NO_MEMORY, "out of memory"));
	e->pipe = pipe;
	if (fwd) {
		enum doca_flow_fwd_type pt = pipe->fwd.type;

		/* an entry names its forward only where the pipe left it open */
		if (pt != DOCA_FLOW_FWD_CHANGEABLE &&
		    !(pt == fwd->type && ((pt == DOCA_FLOW_FWD_PIPE && !pipe->fwd.next) || pt == DOCA_FLOW_FWD_PORT ||
					  pt == DOCA_FLOW_FWD_RSS))) {
			free(e);
			RET(fail(DOCA_ERROR_INVALID_VALUE, "%s: pipe %s: entry fwd type %d, but the pipe's fwd is type "
				 "%d and not changeable", call, pipe->cfg.name, fwd->type, pt));
		}
		err = fwd_resolve(&pipe->cfg, "entry fwd", fwd, &e->fwd, false);
		if (err) {
			free(e);
			RET(err);
		}
		e->has_fwd = true;
	} else if (pipe->fwd.type == DOCA_FLOW_FWD_CHANGEABLE ||
		   (pipe->fwd.type == DOCA_FLOW_FWD_PIPE && !pipe->fwd.next)) {
		free(e);
		RET(fail(DOCA_ERROR_INVALID_VALUE, "%s: pipe %s: the pipe's forward is given per entry and this entry "
			 "has none", call, pipe->cfg.name));
	}
	e->queue = queue;
	e->priority = priority;
	e->index = index;
	if (want == DOCA_FLOW_PIPE_HASH)
		pipe->slots[index] = e;
	if (match)
		e->match = *match;
	e->has_mask = mask != NULL;
	if (mask)
		e->mask = *mask;
	e->has_actions = actions != NULL;
	if (actions)
		e->actions = *actions;
	e->counted = (pipe->cfg.has_monitor && pipe->cfg.monitor.counter_type == DOCA_FLOW_RESOURCE_TYPE_NON_SHARED) ||
		     (monitor && monitor->counter_type == DOCA_FLOW_RESOURCE_TYPE_NON_SHARED);
	e->usr_ctx = usr_ctx;
	if (monitor && monitor->shared_mirror_id) {
		uint32_t id = monitor->shared_mirror_id;

		if (id > S.cfg.nr_mirrors || !(S.mirrors[id].bound & (1ull << pipe->cfg.port->port_id))) {
			free(e);
			RET(fail(DOCA_ERROR_INVALID_VALUE, "%s: pipe %s: shared mirror %u is not configured and bound to "
				 "port %u", call, pipe->cfg.name, id, pipe->cfg.port->port_id));
		}
		e->mirror = id;
	}
	if (monitor && monitor->aging_sec) {
		if (!S.cfg.cb) {
			free(e);
			RET(fail(DOCA_ERROR_INVALID_VALUE, "%s: pipe %s: monitor.aging_sec without an entry process "
				 "callback (aged entries are reported through it)", call, pipe->cfg.name));
		}
		e->aging_sec = monitor->aging_sec;
		e->last_hit_ns = sim_now_ns();
	}
	entry_key(e);
	if (want == DOCA_FLOW_PIPE_BASIC) {
		e->hash = key_hash(e, e->eff_val, e->eff_mask);
		for (struct doca_flow_pipe_entry *o = pipe->buckets[e->hash & pipe->bucket_mask]; o; o = o->hnext)
			if (o->state != E_PENDING_DEL && o->state != E_ERROR && same_key(o, e)) {
				free(e);
				RET(fail(DOCA_ERROR_ALREADY_EXIST, "%s: pipe %s already has an entry with this match",
					 call, pipe->cfg.name));
			}
		e->hnext = pipe->buckets[e->hash & pipe->bucket_mask];
		pipe->buckets[e->hash & pipe->bucket_mask] = e;
	}
	if (e->has_fwd && e->fwd.next)
		e->fwd.next->refs++;
	e->state = E_PENDING_ADD;
	e->status = DOCA_FLOW_ENTRY_STATUS_IN_PROCESS;
	if (pipe->entries_tail)
		pipe->entries_tail->next = e;
	else
		pipe->entries = e;
	pipe->entries_tail = e;
	pipe->nentries++;
	/* buffered entries are pushed by the next entry without DOCA_FLOW_WAIT_FOR_BATCH on this port's queue
	 * (such adds are counted: the batching test and the bench), or by doca_flow_entries_process */
	e->held = flags == DOCA_FLOW_WAIT_FOR_BATCH;
	if (!e->held) {
		for (struct doca_flow_pipe_entry *o = S.pending[queue]; o; o = o->qnext)
			if (o->pipe->cfg.port == pipe->cfg.port)
				o->held = false;
		S.batches_pushed++;
	}
	if (S.pending_tail[queue])
		S.pending_tail[queue]->qnext = e;
	else
		S.pending[queue] = e;
	S.pending_tail[queue] = e;
	*out = e;
	RET(DOCA_SUCCESS);
}

EXPORT doca_error_t doca_flow_pipe_add_entry(uint16_t pipe_queue, struct doca_flow_pipe *pipe,
					     const struct doca_flow_match *match, const struct doca_flow_actions *actions,
					     const struct doca_flow_monitor *monitor, const struct doca_flow_fwd *fwd,
					     uint32_t flags, void *usr_ctx, struct doca_flow_pipe_entry **entry)
{
	return entry_add(pipe_queue, pipe, DOCA_FLOW_PIPE_BASIC, "doca_flow_pipe_add_entry", 0, 0, match, NULL, actions,
			 monitor, fwd, flags, usr_ctx, entry);
}

EXPORT doca_error_t doca_flow_pipe_control_add_entry(uint16_t pipe_queue, uint32_t priority,
						     struct doca_flow_pipe *pipe, const struct doca_flow_match *match,
						     const struct doca_flow_match *match_mask, const void *condition,
						     const struct doca_flow_actions *actions,
						     const struct doca_flow_actions *actions_mask,
						     const struct doca_flow_action_descs *action_descs,
						     const struct doca_flow_monitor *monitor,
						     const struct doca_flow_fwd *fwd, void *usr_ctx,
						     struct doca_flow_pipe_entry **entry)
{
	if (condition || actions_mask || action_descs)
		return fail(DOCA_ERROR_NOT_SUPPORTED, "doca_flow_pipe_control_add_entry: conditions and per-entry "
			    "action masks/descs are not simulated (use the pipe's templates)");
	return entry_add(pipe_queue, pipe, DOCA_FLOW_PIPE_CONTROL, "doca_flow_pipe_control_add_entry", priority,
			 0, match, match_mask, actions, monitor, fwd, DOCA_FLOW_NO_WAIT, usr_ctx, entry);
}

EXPORT doca_error_t doca_flow_pipe_lpm_add_entry(uint16_t pipe_queue, struct doca_flow_pipe *pipe,
						 const struct doca_flow_match *match,
						 const struct doca_flow_match *match_mask,
						 const struct doca_flow_actions *actions,
						 const struct doca_flow_monitor *monitor, const struct doca_flow_fwd *fwd,
						 enum doca_flow_flags_type flag, void *usr_ctx,
						 struct doca_flow_pipe_entry **entry)
{
	return entry_add(pipe_queue, pipe, DOCA_FLOW_PIPE_LPM, "doca_flow_pipe_lpm_add_entry", 0, 0, match, match_mask,
			 actions, monitor, fwd, flag, usr_ctx, entry);
}

/* A hash pipe has no per-entry match: the pipe hashes the fields of its match mask and the frame takes the
 * entry at (hash % nr_entries). */
EXPORT doca_error_t doca_flow_pipe_hash_add_entry(uint16_t pipe_queue, struct doca_flow_pipe *pipe,
						  uint32_t entry_index, const struct doca_flow_actions *actions,
						  const struct doca_flow_monitor *monitor,
						  const struct doca_flow_fwd *fwd, enum doca_flow_flags_type flags,
						  void *usr_ctx, struct doca_flow_pipe_entry **entry)
{
	return entry_add(pipe_queue, pipe, DOCA_FLOW_PIPE_HASH, "doca_flow_pipe_hash_add_entry", 0, entry_index,
			 NULL, NULL, actions, monitor, fwd, flags, usr_ctx, entry);
}

static bool entry_live(const struct doca_flow_pipe_entry *e)
{
	for (struct doca_flow_pipe *p = S.pipes; p; p = p->next_created)
		for (struct doca_flow_pipe_entry *x = p->entries; x; x = x->next)
			if (x == e)
				return true;
	return false;
}

EXPORT doca_error_t doca_flow_pipe_remove_entry(uint16_t pipe_queue, uint32_t flags, struct doca_flow_pipe_entry *e)
{
	LOCK();
	if (pipe_queue >= S.cfg.pipe_queues)
		RET(fail(DOCA_ERROR_INVALID_VALUE, "doca_flow_pipe_remove_entry: queue %u out of range (%u pipe queues)",
			 pipe_queue, S.cfg.pipe_queues));
	if (!e || !entry_live(e))
		RET(fail(DOCA_ERROR_INVALID_VALUE, "doca_flow_pipe_remove_entry: no such entry"));
	if (e->state == E_PENDING_DEL)
		RET(fail(DOCA_ERROR_BAD_STATE, "doca_flow_pipe_remove_entry: removal already pending"));
	if (e->state == E_PENDING_ADD)
		queue_unlink(e);
	e->state = E_PENDING_DEL;
	e->queue = pipe_queue;
	e->qnext = NULL;
	if (S.pending_tail[pipe_queue])
		S.pending_tail[pipe_queue]->qnext = e;
	else
		S.pending[pipe_queue] = e;
	S.pending_tail[pipe_queue] = e;
	RET(DOCA_SUCCESS);
}

EXPORT doca_error_t doca_flow_entries_process(struct doca_flow_port *port, uint16_t pipe_queue, uint64_t timeout,
					      uint32_t max_processed_entries)
{
	uint32_t done = 0;

	LOCK();
	if (!S.inited)
		RET(fail(DOCA_ERROR_BAD_STATE, "doca_flow_entries_process: doca_flow_init was not called"));
	if (!port || !port->started)
		RET(fail(DOCA_ERROR_BAD_STATE, "doca_flow_entries_process: port is not started"));
	if (pipe_queue >= S.cfg.pipe_queues)
		RET(fail(DOCA_ERROR_INVALID_VALUE, "doca_flow_entries_process: queue %u out of range (%u pipe queues)",
			 pipe_queue, S.cfg.pipe_queues));
	S.process_calls++;
	/* a queue is per port: another port's work on it waits for that port's own process call */
	for (struct doca_flow_pipe_entry **link = &S.pending[pipe_queue], *prev = NULL, *e;
	     (e = *link) && (!max_processed_entries || done < max_processed_entries);) {
		enum doca_flow_entry_op op = e->state == E_PENDING_DEL ? DOCA_FLOW_ENTRY_OP_DEL : DOCA_FLOW_ENTRY_OP_ADD;

		if (e->pipe->cfg.port != port) {
			prev = e;
			link = &e->qnext;
			continue;
		}
		e->held = false;        /* a buffered entry is pushed by the process call */
		*link = e->qnext;
		if (S.pending_tail[pipe_queue] == e)
			S.pending_tail[pipe_queue] = prev;
		e->qnext = NULL;
		done++;
		if (op == DOCA_FLOW_ENTRY_OP_ADD) {
			e->state = E_ACTIVE;
			e->status = DOCA_FLOW_ENTRY_STATUS_SUCCESS;
			if (S.cfg.cb)
				S.cfg.cb(e, pipe_queue, e->status, op, e->usr_ctx);
		} else {
			pipe_unlink_entry(e->pipe, e);
			/* the callback sees the entry a last time, then it is gone */
			if (S.cfg.cb)
				S.cfg.cb(e, pipe_queue, DOCA_FLOW_ENTRY_STATUS_SUCCESS, op, e->usr_ctx);
			entry_free(e);
		}
	}
	RET(DOCA_SUCCESS);
}

/*
 * Aging: an active entry added with monitor.aging_sec and not hit for that long (on the simulator's clock)
 * is reported once, through the entry process callback with DOCA_FLOW_ENTRY_OP_AGED, by the
 * doca_flow_aging_handle call for its port and the queue it was added on; the application removes it.
 * Returns how many were reported (at most max_entries, 0: no limit), -1 on misuse.
 */
EXPORT int doca_flow_aging_handle(struct doca_flow_port *port, uint16_t queue, uint64_t quota, uint64_t max_entries)
{
	uint64_t now;
	int n = 0;

	LOCK();
	if (!S.inited || !port || !port->started || queue >= S.cfg.pipe_queues) {
		fail(DOCA_ERROR_INVALID_VALUE, "doca_flow_aging_handle: %s", !S.inited ? "doca_flow_init was not called"
		     : !port || !port->started ? "port is not started" : "queue out of range");
		UNLOCK();
		return -1;
	}
	now = sim_now_ns();
	for (struct doca_flow_pipe *p = S.pipes; p; p = p->next_created) {
		if (p->cfg.port != port)
			continue;
		for (struct doca_flow_pipe_entry *e = p->entries; e; e = e->next) {
			if (max_entries && (uint64_t)n >= max_entries)
				goto out;
			if (!e->aging_sec || e->aged || e->state != E_ACTIVE || e->queue != queue ||
			    now - e->last_hit_ns < (uint64_t)e->aging_sec * 1000000000ull)
				continue;
			e->aged = true;
			n++;
			S.cfg.cb(e, queue, DOCA_FLOW_ENTRY_STATUS_SUCCESS, DOCA_FLOW_ENTRY_OP_AGED, e->usr_ctx);
		}
	}
out:
	UNLOCK();
	return n;
}

/*
 * Shared mirrors: ids 1..nr (doca_flow_cfg_set_nr_shared_resource), each configured once with its targets
 * (here: ports, each gets a copy), bound to the ports whose pipes' entries name it in monitor.shared_mirror_id.
 */
EXPORT doca_error_t doca_flow_shared_resource_set_cfg(enum doca_flow_shared_resource_type type, uint32_t id,
						      struct doca_flow_shared_resource_cfg *cfg)
{
	struct sim_mirror *m;

	LOCK();
	if (!S.inited)
		RET(fail(DOCA_ERROR_BAD_STATE, "doca_flow_shared_resource_set_cfg: doca_flow_init was not called"));
	if (type != DOCA_FLOW_SHARED_RESOURCE_MIRROR)
		RET(fail(DOCA_ERROR_NOT_SUPPORTED, "doca_flow_shared_resource_set_cfg: type %d is not simulated", type));
	if (!id || id > S.cfg.nr_mirrors)
		RET(fail(DOCA_ERROR_INVALID_VALUE, "doca_flow_shared_resource_set_cfg: mirror %u outside 1..%u (the "
			 "number set with doca_flow_cfg_set_nr_shared_resource)", id, S.cfg.nr_mirrors));
	m = &S.mirrors[id];
	if (m->configured)
		RET(fail(DOCA_ERROR_ALREADY_EXIST, "doca_flow_shared_resource_set_cfg: mirror %u is configured", id));
	if (!cfg || cfg->mirror_cfg.nr_targets <= 0 || cfg->mirror_cfg.nr_targets > SIM_MAX_MIRROR_TARGETS ||
	    !cfg->mirror_cfg.target)
		RET(fail(DOCA_ERROR_INVALID_VALUE, "doca_flow_shared_resource_set_cfg: mirror %u: 1..%u targets", id,
			 SIM_MAX_MIRROR_TARGETS));
	for (int i = 0; i < cfg->mirror_cfg.nr_targets; i++) {
		const struct doca_flow_mirror_target *t = &cfg->mirror_cfg.target[i];

		if (t->has_encap || t->fwd.type != DOCA_FLOW_FWD_PORT)
			RET(fail(DOCA_ERROR_NOT_SUPPORTED, "doca_flow_shared_resource_set_cfg: mirror %u target %d: the "
				 "simulator mirrors to ports, without encap", id, i));
		if (t->fwd.port_id >= SIM_MAX_PORTS || !S.ports[t->fwd.port_id].started)
			RET(fail(DOCA_ERROR_INVALID_VALUE, "doca_flow_shared_resource_set_cfg: mirror %u target %d: port "
				 "%u is not started", id, i, t->fwd.port_id));
		m->target_port[i] = t->fwd.port_id;
	}
	m->ntargets = (uint32_t)cfg->mirror_cfg.nr_targets;
	m->configured = true;
	RET(DOCA_SUCCESS);
}

EXPORT doca_error_t doca_flow_shared_resources_bind(enum doca_flow_shared_resource_type type, uint32_t *res_array,
						    uint32_t res_array_len, void *bindable_obj)
{
	struct doca_flow_port *port = bindable_obj;

	LOCK();
	if (type != DOCA_FLOW_SHARED_RESOURCE_MIRROR)
		RET(fail(DOCA_ERROR_NOT_SUPPORTED, "doca_flow_shared_resources_bind: type %d is not simulated", type));
	if (!port || port < S.ports || port >= S.ports + SIM_MAX_PORTS || !port->started)
		RET(fail(DOCA_ERROR_INVALID_VALUE, "doca_flow_shared_resources_bind: mirrors bind to a started port"));
	for (uint32_t i = 0; i < res_array_len; i++)
		if (!res_array[i] || res_array[i] > S.cfg.nr_mirrors || !S.mirrors[res_array[i]].configured)
			RET(fail(DOCA_ERROR_INVALID_VALUE, "doca_flow_shared_resources_bind: mirror %u is not configured",
				 res_array[i]));
	for (uint32_t i = 0; i < res_array_len; i++)
		S.mirrors[res_array[i]].bound |= 1ull << port->port_id;
	RET(DOCA_SUCCESS);
}

EXPORT enum doca_flow_entry_status doca_flow_pipe_entry_get_status(struct doca_flow_pipe_entry *entry)
{
	enum doca_flow_entry_status s;

	LOCK();
	s = entry && entry_live(entry) ? entry->status : DOCA_FLOW_ENTRY_STATUS_ERROR;
	UNLOCK();
	return s;
}

EXPORT doca_error_t doca_flow_resource_query_entry(struct doca_flow_pipe_entry *entry,
						   struct doca_flow_resource_query *q)
{
	LOCK();
	if (!entry || !q)
		RET(fail(DOCA_ERROR_INVALID_VALUE, "doca_flow_resource_query_entry: entry and query are required"));
	if (!entry->counted)
		RET(fail(DOCA_ERROR_NOT_SUPPORTED, "doca_flow_resource_query_entry: the entry has no counter "
			 "(no monitor with a counter on it or its pipe)"));
	q->counter.total_pkts = entry->pkts;
	q->counter.total_bytes = entry->bytes;
	RET(DOCA_SUCCESS);
}

EXPORT doca_error_t doca_flow_resource_query_pipe_miss(struct doca_flow_pipe *pipe, struct doca_flow_resource_query *q)
{
	LOCK();
	if (!pipe || !pipe_exists(pipe))
		RET(fail(DOCA_ERROR_INVALID_VALUE, "doca_flow_resource_query_pipe_miss: no such pipe"));
	if (!pipe->cfg.miss_counter)
		RET(fail(DOCA_ERROR_NOT_SUPPORTED, "doca_flow_resource_query_pipe_miss: pipe %s has no miss counter",
			 pipe->cfg.name));
	q->counter.total_pkts = pipe->miss_pkts;
	q->counter.total_bytes = pipe->miss_bytes;
	RET(DOCA_SUCCESS);
}

/* ---- the executor ------------------------------------------------------- */

struct frame {
	uint8_t *d;
	uint32_t len;
	struct doca_flow_match v;       /* what the parser saw */
	uint32_t l3_off, l4_off;        /* 0: absent */
	uint8_t l3;                     /* 4, 6, 0 */
	uint8_t l4_proto;
	uint32_t l4_icmp_off;           /* ICMP / ICMPv6 header, 0: absent */
};

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void parse(struct frame *f)
{
	uint32_t off = 14;
	uint16_t type;
	int tags = 0;

	memset(&f->v, 0, sizeof(f->v));
	f->l3 = 0;
	f->l3_off = f->l4_off = 0;
	f->l4_proto = 0;
	if (f->len < 14)
		return;
	memcpy(f->v.outer.eth.dst_mac, f->d, 6);
	memcpy(f->v.outer.eth.src_mac, f->d + 6, 6);
	type = rd16(f->d + 12);
	while ((type == 0x8100 || type == 0x88a8) && tags < 2 && f->len >= off + 4) {
		memcpy(&f->v.outer.eth_vlan[tags].tci, f->d + off, 2);
		type = rd16(f->d + off + 2);
		off += 4;
		tags++;
	}
	f->v.outer.eth.type = htons(type);
	if (type == 0x0800 && f->len >= off + 20 && (f->d[off] >> 4) == 4 && (f->d[off] & 15) >= 5 &&
	    f->len >= off + (f->d[off] & 15u) * 4) {
		const uint8_t *ip = f->d + off;

		f->l3 = 4;
		f->l3_off = off;
		f->v.outer.l3_type = DOCA_FLOW_L3_TYPE_IP4;
		f->v.parser_meta.outer_l3_type = DOCA_FLOW_L3_META_IPV4;
		f->v.outer.ip4.version_ihl = ip[0];
		f->v.outer.ip4.dscp_ecn = ip[1];
		f->v.outer.ip4.ttl = ip[8];
		f->v.outer.ip4.next_proto = ip[9];
		memcpy(&f->v.outer.ip4.src_ip, ip + 12, 4);
		memcpy(&f->v.outer.ip4.dst_ip, ip + 16, 4);
		f->l4_proto = ip[9];
		if (!(rd16(ip + 6) & 0x1fff))   /* first fragment or none: L4 follows */
			f->l4_off = off + (ip[0] & 15u) * 4;
	} else if (type == 0x86dd && f->len >= off + 40 && (f->d[off] >> 4) == 6) {
		const uint8_t *ip = f->d + off;

		f->l3 = 6;
		f->l3_off = off;
		f->v.outer.l3_type = DOCA_FLOW_L3_TYPE_IP6;
		f->v.parser_meta.outer_l3_type = DOCA_FLOW_L3_META_IPV6;
		f->v.outer.ip6.traffic_class = (uint8_t)((ip[0] & 15) << 4 | ip[1] >> 4);
		f->v.outer.ip6.next_proto = ip[6];
		f->v.outer.ip6.hop_limit = ip[7];
		memcpy(f->v.outer.ip6.src_ip, ip + 8, 16);
		memcpy(f->v.outer.ip6.dst_ip, ip + 24, 16);
		f->l4_proto = ip[6];
		f->l4_off = off + 40;
	}
	if (f->l3 && f->l4_proto == 1 && f->l3 == 4)
		f->v.parser_meta.outer_l4_type = DOCA_FLOW_L4_META_ICMP;
	if (f->l4_off) {
		uint32_t need = f->l4_proto == 6 ? 20 : 8;

		if ((f->l4_proto != 6 && f->l4_proto != 17) || f->len < f->l4_off + need) {
			if (f->l4_proto == 1 || f->l4_proto == 58)
				f->l4_icmp_off = f->l4_off;
			f->l4_off = 0;
		} else {
			const uint8_t *l4 = f->d + f->l4_off;

			f->v.outer.l4_type_ext = f->l4_proto == 6 ? DOCA_FLOW_L4_TYPE_EXT_TCP : DOCA_FLOW_L4_TYPE_EXT_UDP;
			f->v.parser_meta.outer_l4_type = f->l4_proto == 6 ? DOCA_FLOW_L4_META_TCP : DOCA_FLOW_L4_META_UDP;
			memcpy(&f->v.outer.transport.src_port, l4, 2);
			memcpy(&f->v.outer.transport.dst_port, l4 + 2, 2);
			if (f->l4_proto == 6)
				f->v.outer.tcp.flags = l4[13];
		}
	}
}

static bool entry_matches(const struct doca_flow_pipe_entry *e, const struct frame *f)
{
	const uint8_t *v = (const uint8_t *)&f->v;

	if (e->need_l3 && e->need_l3 != f->l3)
		return false;
	if (e->need_l4 && !f->l4_off)
		return false;
	for (unsigned i = 0; i < e->nf; i++) {
		const struct pfdoca_field *fd = &pfdoca_fields[e->fidx[i]];

		for (unsigned k = 0; k < fd->size; k++) {
			size_t o = fd->match_off + k;

			if ((v[o] & e->eff_mask[o]) != e->eff_val[o])
				return false;
		}
	}
	return true;
}

/*
 * The simulator's hash-pipe function. Hardware's hash is its own; this model uses pyflow's documented
 * flow hash (murmur3-style mixing of src, dst, the 16-byte IPv6 words, ports, protocol, then the fmix
 * finaliser) so a simulated hash pipe spreads flows as pyflow's other backends do. It is computed here
 * from the frame as this simulator parsed it, not from pyflow's parser. The mask selects components: a
 * component not in the mask hashes as 0. Addresses of the frame's own family are hashed in their slot
 * (IPv4 words, then the IPv6 words), the other family's slot as 0; ICMP type/code stand in for the ports.
 */
static uint32_t hmix(uint32_t h, uint32_t v)
{
	v *= 0xcc9e2d51u;
	v = (v << 15) | (v >> 17);
	v *= 0x1b873593u;
	h ^= v;
	h = (h << 13) | (h >> 19);
	return h * 5 + 0xe6546b64u;
}

static bool mask_any(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return true;
	return false;
}

static uint32_t hash_pipe_hash(const struct doca_flow_pipe *p, const struct frame *f)
{
	const struct doca_flow_header_format *m = &p->cfg.mask.outer;
	bool v6m = m->l3_type == DOCA_FLOW_L3_TYPE_IP6;
	bool src = v6m ? mask_any(m->ip6.src_ip, 16) : mask_any(&m->ip4.src_ip, 4);
	bool dst = v6m ? mask_any(m->ip6.dst_ip, 16) : mask_any(&m->ip4.dst_ip, 4);
	bool proto = v6m ? m->ip6.next_proto != 0 : m->ip4.next_proto != 0;
	uint32_t h = 0x70664d31u, w, v4s = 0, v4d = 0;
	uint8_t s6[16] = { 0 }, d6[16] = { 0 };
	uint16_t sp = 0, dp = 0;

	if (f->l3 == 4) {
		memcpy(&v4s, f->d + f->l3_off + 12, 4);
		memcpy(&v4d, f->d + f->l3_off + 16, 4);
	} else if (f->l3 == 6) {
		memcpy(s6, f->d + f->l3_off + 8, 16);
		memcpy(d6, f->d + f->l3_off + 24, 16);
	}
	if (f->l4_off) {
		memcpy(&sp, f->d + f->l4_off, 2);
		memcpy(&dp, f->d + f->l4_off + 2, 2);
	} else if (f->l3 && (f->l4_proto == 1 || f->l4_proto == 58) && f->l4_icmp_off &&
		   f->len >= f->l4_icmp_off + 4) {
		sp = htons(f->d[f->l4_icmp_off]);
		dp = htons(f->d[f->l4_icmp_off + 1]);
	}
	h = hmix(h, src ? v4s : 0);
	h = hmix(h, dst ? v4d : 0);
	for (int i = 0; i < 16; i += 4) {
		memcpy(&w, s6 + i, 4);
		h = hmix(h, src ? w : 0);
		memcpy(&w, d6 + i, 4);
		h = hmix(h, dst ? w : 0);
	}
	h = hmix(h, (m->transport.src_port ? (uint32_t)sp << 16 : 0) | (m->transport.dst_port ? dp : 0));
	h = hmix(h, proto && f->l3 ? f->l4_proto : 0);
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

static struct doca_flow_pipe_entry *lookup(struct doca_flow_pipe *p, const struct frame *f)
{
	struct doca_flow_pipe_entry *best = NULL;

	if (p->cfg.type == DOCA_FLOW_PIPE_HASH) {
		struct doca_flow_pipe_entry *e = p->slots[hash_pipe_hash(p, f) % p->cfg.nr_entries];

		return e && e->state == E_ACTIVE ? e : NULL;
	}

	if (p->cfg.type == DOCA_FLOW_PIPE_BASIC) {
		/* every entry of a basic pipe has the pipe's fields and mask: hash the frame under them */
		const struct doca_flow_pipe_entry *any = p->entries;
		uint32_t h;

		if (!any)
			return NULL;
		h = key_hash(any, (const uint8_t *)&f->v, any->eff_mask);
		for (struct doca_flow_pipe_entry *e = p->buckets[h & p->bucket_mask]; e; e = e->hnext)
			if (e->hash == h && e->state == E_ACTIVE && entry_matches(e, f))
				return e;
		return NULL;
	}
	for (struct doca_flow_pipe_entry *e = p->entries; e; e = e->next) {
		if (e->state != E_ACTIVE || !entry_matches(e, f))
			continue;
		if (p->cfg.type == DOCA_FLOW_PIPE_BASIC)
			return e;
		if (!best || (p->cfg.type == DOCA_FLOW_PIPE_CONTROL && e->priority < best->priority) ||
		    (p->cfg.type == DOCA_FLOW_PIPE_LPM && e->mask_bits > best->mask_bits))
			best = e;
	}
	return best;
}

static uint16_t csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint32_t csum_add(uint32_t s, const uint8_t *p, uint32_t n)
{
	for (uint32_t i = 0; i + 1 < n; i += 2)
		s += rd16(p + i);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

/* IPv4 header and UDP/TCP checksums, recomputed whole after a modification */
static void fix_checksums(struct frame *f)
{
	if (f->l3 == 4) {
		uint8_t *ip = f->d + f->l3_off;
		uint32_t hl = (ip[0] & 15u) * 4;
		uint16_t c;

		ip[10] = ip[11] = 0;
		c = csum_fold(csum_add(0, ip, hl));
		ip[10] = (uint8_t)(c >> 8);
		ip[11] = (uint8_t)c;
	}
	if (f->l4_off && f->l3) {
		uint8_t *ip = f->d + f->l3_off, *l4 = f->d + f->l4_off;
		uint32_t l4len, s = 0;
		uint8_t *ck = l4 + (f->l4_proto == 6 ? 16 : 6);
		uint16_t c;

		if (f->l3 == 4)
			l4len = rd16(ip + 2) - (ip[0] & 15u) * 4;
		else
			l4len = rd16(ip + 4);
		if (f->l4_off + l4len > f->len)
			return;
		if (f->l4_proto == 17 && !ck[0] && !ck[1] && f->l3 == 4)
			return;         /* IPv4 UDP without a checksum stays without */
		ck[0] = ck[1] = 0;
		if (f->l3 == 4)
			s = csum_add(s, ip + 12, 8);
		else
			s = csum_add(s, ip + 8, 32);
		s += f->l4_proto + l4len;
		s = csum_add(s, l4, l4len);
		c = csum_fold(s);
		if (f->l4_proto == 17 && !c)
			c = 0xffff;
		ck[0] = (uint8_t)(c >> 8);
		ck[1] = (uint8_t)c;
	}
}

/* where a modifiable field sits in the frame, or NULL when the frame lacks that header */
static bool frame_tagged(const struct frame *f)
{
	return f->len >= 18 && (rd16(f->d + 12) == 0x8100 || rd16(f->d + 12) == 0x88a8);
}

static uint8_t *frame_field(struct frame *f, const char *name)
{
	if (!strcmp(name, "outer.eth_vlan[0].tci"))
		return frame_tagged(f) ? f->d + 14 : NULL;
	if (!strcmp(name, "outer.eth.dst_mac"))
		return f->len >= 14 ? f->d : NULL;
	if (!strcmp(name, "outer.eth.src_mac"))
		return f->len >= 14 ? f->d + 6 : NULL;
	if (f->l3 == 4) {
		uint8_t *ip = f->d + f->l3_off;

		if (!strcmp(name, "outer.ip4.src_ip")) return ip + 12;
		if (!strcmp(name, "outer.ip4.dst_ip")) return ip + 16;
		if (!strcmp(name, "outer.ip4.dscp_ecn")) return ip + 1;
		if (!strcmp(name, "outer.ip4.ttl")) return ip + 8;
	}
	if (f->l3 == 6) {
		uint8_t *ip = f->d + f->l3_off;

		if (!strcmp(name, "outer.ip6.src_ip")) return ip + 8;
		if (!strcmp(name, "outer.ip6.dst_ip")) return ip + 24;
		if (!strcmp(name, "outer.ip6.hop_limit")) return ip + 7;
	}
	if (f->l4_off) {
		if (!strcmp(name, "outer.transport.src_port")) return f->d + f->l4_off;
		if (!strcmp(name, "outer.transport.dst_port")) return f->d + f->l4_off + 2;
	}
	return NULL;
}

struct pkt_meta {
	uint32_t pkt_meta, mark;
};

/* The entry's actions through its pipe's template: all-ones fields take the entry's value, others the template's. */
static void apply_actions(const struct doca_flow_pipe_entry *e, struct frame *f, struct pkt_meta *meta)
{
	const struct doca_flow_pipe_cfg *pc = &e->pipe->cfg;
	uint32_t idx = e->has_actions ? e->actions.action_idx : 0;
	const struct doca_flow_actions *t, *m;
	bool changed = false;

	/* an entry added without actions selects no template: it modifies nothing */
	if (!e->has_actions || !pc->nr_actions || idx >= pc->nr_actions)
		return;
	t = &pc->actions[idx];
	m = pc->has_amask[idx] ? &pc->amasks[idx] : NULL;
	/* pop, then modify, then push: a frame without a tag has none to pop */
	if (t->pop_vlan && frame_tagged(f)) {
		memmove(f->d + 12, f->d + 16, f->len - 16);
		f->len -= 4;
		parse(f);
		changed = true;
	}
	for (unsigned i = 0; i < PFDOCA_NFIELDS; i++) {
		const struct pfdoca_field *fd = &pfdoca_fields[i];
		const uint8_t *tv, *ev, *mv;
		uint8_t val[16];
		bool all_ones = true;
		uint8_t *dst;

		bool by_desc = false;

		if (fd->action_off == (size_t)-1 || !l3_ok(fd, t->outer.l3_type) ||
		    !field_nonzero(t, fd->action_off, fd->size))
			continue;
		/* a field an action desc adds to carries the addend, it is not set */
		for (uint32_t k = 0; k < pc->ndescs[idx]; k++)
			by_desc |= (!strcmp(fd->name, "outer.ip4.ttl") &&
				    !strcmp(pc->descs[idx][k].field_op.dst.field_string, "outer.ipv4.ttl")) ||
				   (!strcmp(fd->name, "outer.ip6.hop_limit") &&
				    !strcmp(pc->descs[idx][k].field_op.dst.field_string, "outer.ipv6.hop_limit"));
		if (by_desc)
			continue;
		tv = (const uint8_t *)t + fd->action_off;
		ev = (const uint8_t *)&e->actions + fd->action_off;
		mv = m ? (const uint8_t *)m + fd->action_off : NULL;
		for (unsigned k = 0; k < fd->size; k++)
			all_ones &= tv[k] == 0xff;
		for (unsigned k = 0; k < fd->size; k++)
			val[k] = all_ones && e->has_actions ? ev[k] : tv[k];
		if (!strcmp(fd->name, "meta.pkt_meta") || !strcmp(fd->name, "meta.mark")) {
			uint32_t v;

			memcpy(&v, val, 4);
			if (fd->name[5] == 'p')
				meta->pkt_meta = v;
			else
				meta->mark = v;
			continue;
		}
		dst = frame_field(f, fd->name);
		if (!dst)
			continue;       /* the header is not there: nothing to modify */
		for (unsigned k = 0; k < fd->size; k++) {
			uint8_t mk = mv ? mv[k] : 0xff;

			dst[k] = (uint8_t)((dst[k] & ~mk) | (val[k] & mk));
		}
		changed = true;
	}
	for (uint32_t k = 0; k < pc->ndescs[idx]; k++) {
		const struct doca_flow_action_desc *d = &pc->descs[idx][k];
		const char *fs = d->field_op.dst.field_string;
		uint8_t *dst = NULL;
		uint8_t add = 0;

		if (!strcmp(fs, "outer.ipv4.ttl") && f->l3 == 4) {
			dst = f->d + f->l3_off + 8;
			add = e->has_actions && t->outer.ip4.ttl == 0xff ? e->actions.outer.ip4.ttl : t->outer.ip4.ttl;
		} else if (!strcmp(fs, "outer.ipv6.hop_limit") && f->l3 == 6) {
			dst = f->d + f->l3_off + 7;
			add = e->has_actions && t->outer.ip6.hop_limit == 0xff ? e->actions.outer.ip6.hop_limit
									      : t->outer.ip6.hop_limit;
		}
		if (dst) {
			*dst = (uint8_t)(*dst + add);   /* DOCA_FLOW_ACTION_ADD: modulo the field's width */
			changed = true;
		}
	}
	if (t->has_push && t->push.type == DOCA_FLOW_PUSH_ACTION_VLAN && f->len >= 14 && f->len + 4 <= SIM_FRAME_MAX) {
		const struct doca_flow_push_vlan_action *tp = &t->push.vlan, *ep = &e->actions.push.vlan;
		uint16_t tpid = tp->eth_type == 0xffff ? ep->eth_type : tp->eth_type;
		uint16_t tci = tp->vlan_hdr.tci == 0xffff ? ep->vlan_hdr.tci : tp->vlan_hdr.tci;

		memmove(f->d + 16, f->d + 12, f->len - 12);
		memcpy(f->d + 12, &tpid, 2);
		memcpy(f->d + 14, &tci, 2);
		f->len += 4;
		parse(f);
		changed = true;
	}
	if (changed) {
		fix_checksums(f);
		parse(f);       /* later pipes match the modified frame */
	}
}

static uint32_t rss_hash(const struct frame *f)
{
	uint32_t h = 2166136261u;
	const uint8_t *p = (const uint8_t *)&f->v.outer;

	/* the simulator's own spread over the queue list (not the NIC's Toeplitz) */
	for (size_t i = 0; i < sizeof(f->v.outer); i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static void enqueue(struct doca_flow_port *sw, uint16_t q, const struct frame *f, uint16_t in_port, uint32_t mark)
{
	struct ring *r = &sw->rxq[q];
	struct ring_slot *s;

	if (!r->slots || r->tail - r->head >= SIM_RING || f->len > SIM_FRAME_MAX) {
		r->dropped++;
		sw->stats.imissed++;
		return;
	}
	s = &r->slots[r->tail % SIM_RING];
	memcpy(s->data, f->d, f->len);
	s->len = f->len;
	s->port_id = in_port;
	s->mark = mark;
	r->tail++;
}

/*
 * One frame through the pipes from the ingress root of the switch, as received
 * on in_port (pkt_meta: what the sender attached; 0 from the wire).
 * Called with the lock held. buf has room for SIM_FRAME_MAX bytes.
 */
static void run(uint16_t in_port, uint32_t pkt_meta, uint8_t *buf, uint32_t len, uint32_t flags,
		struct docasim_result *res)
{
	/* switch mode: the switch manager's root sees every port; vnf: the port's own root and RSS queues */
	struct doca_flow_port *sw = S.vnf ? &S.ports[in_port] : switch_port();
	struct doca_flow_pipe *p = NULL;
	struct frame f = { .d = buf, .len = len };
	struct pkt_meta meta = { .pkt_meta = pkt_meta };

	memset(res, 0, sizeof(*res));
	res->verdict = DOCASIM_DROP;
	if (!sw || !sw->started)
		return;
	for (struct doca_flow_pipe *q = S.pipes; q; q = q->next_created)
		if (q->cfg.is_root && q->cfg.domain == DOCA_FLOW_PIPE_DOMAIN_DEFAULT && q->cfg.port == sw)
			p = q;
	parse(&f);
	while (p && res->hops < SIM_MAX_HOPS) {
		struct doca_flow_pipe_entry *e;
		const struct sim_fwd *fw;

		res->hops++;
		f.v.parser_meta.port_id = in_port;
		f.v.meta.pkt_meta = meta.pkt_meta;
		f.v.meta.mark = meta.mark;
		e = lookup(p, &f);
		if (e) {
			if (e->counted) {
				e->pkts++;
				e->bytes += f.len;
			}
			if (e->aging_sec)
				e->last_hit_ns = sim_now_ns();
			res->last_entry_ctx = e->usr_ctx;
			apply_actions(e, &f, &meta);
			/* a copy to each target of the entry's mirror, the packet itself on to its forward */
			for (uint32_t t = 0; e->mirror && t < S.mirrors[e->mirror].ntargets; t++) {
				struct doca_flow_port *mp = &S.ports[S.mirrors[e->mirror].target_port[t]];

				res->mirrored++;
				if (mp->started && ((flags & DOCASIM_INJECT_NO_QUEUE) ||
						    (mp->fd >= 0 && send(mp->fd, f.d, f.len, 0) == (ssize_t)f.len))) {
					mp->stats.opackets++;
					mp->stats.obytes += f.len;
				}
			}
			fw = e->has_fwd ? &e->fwd : &p->fwd;
		} else {
			if (p->cfg.miss_counter) {
				p->miss_pkts++;
				p->miss_bytes += f.len;
			}
			fw = &p->fwd_miss;
		}
		switch (fw->type) {
		case DOCA_FLOW_FWD_PIPE:
			p = fw->next;
			continue;
		case DOCA_FLOW_FWD_PORT: {
			struct doca_flow_port *op = &S.ports[fw->port_id];

			res->verdict = DOCASIM_TX;
			res->port_id = fw->port_id;
			res->out_len = f.len;
			/* under NO_QUEUE the frame is counted as sent and handed back to the caller only */
			if (op->started && ((flags & DOCASIM_INJECT_NO_QUEUE) ||
					    (op->fd >= 0 && send(op->fd, f.d, f.len, 0) == (ssize_t)f.len))) {
				op->stats.opackets++;
				op->stats.obytes += f.len;
			}
			return;
		}
		case DOCA_FLOW_FWD_RSS: {
			uint16_t q = fw->queues[rss_hash(&f) % fw->nq];

			res->verdict = DOCASIM_RSS;
			res->port_id = sw->port_id;
			res->queue = q;
			res->mark = meta.mark;
			res->out_len = f.len;
			if (!(flags & DOCASIM_INJECT_NO_QUEUE))
				enqueue(sw, q, &f, in_port, meta.mark);
			return;
		}
		default:
			res->out_len = f.len;
			return;         /* drop, none */
		}
	}
}

EXPORT int docasim_inject(uint16_t port_id, const void *frame, uint32_t len, uint32_t flags, void *out,
			  uint32_t out_cap, struct docasim_result *res)
{
	uint8_t *buf;

	if (len > SIM_FRAME_MAX || port_id >= SIM_MAX_PORTS)
		return -EINVAL;
	buf = malloc(SIM_FRAME_MAX);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, frame, len);
	LOCK();
	if (!S.ports[port_id].started) {
		UNLOCK();
		free(buf);
		return -ENODEV;
	}
	S.ports[port_id].stats.ipackets++;
	S.ports[port_id].stats.ibytes += len;
	run(port_id, 0, buf, len, flags, res);
	UNLOCK();
	if (out && out_cap && res->verdict == DOCASIM_TX)
		memcpy(out, buf, res->out_len < out_cap ? res->out_len : out_cap);
	free(buf);
	return 0;
}

EXPORT uint16_t docasim_rx_burst(uint16_t port_id, uint16_t queue, struct docasim_pkt *pkts, uint16_t n)
{
	struct doca_flow_port *p;
	uint16_t got = 0;

	if (port_id >= SIM_MAX_PORTS || queue >= SIM_RXQ)
		return 0;
	LOCK();
	p = &S.ports[port_id];
	if (p->started && p->rxq[queue].slots && !S.rx_paused)
		for (struct ring *r = &p->rxq[queue]; got < n && r->head != r->tail; r->head++, got++) {
			struct ring_slot *s = &r->slots[r->head % SIM_RING];
			uint32_t l = s->len < pkts[got].cap ? s->len : pkts[got].cap;

			memcpy(pkts[got].data, s->data, l);
			pkts[got].len = l;
			pkts[got].port_id = s->port_id;
			pkts[got].mark = s->mark;
		}
	UNLOCK();
	return got;
}

EXPORT uint16_t docasim_tx_burst(uint16_t port_id, uint16_t queue, const struct docasim_pkt *pkts, uint16_t n)
{
	struct docasim_result res;
	uint8_t *buf;
	uint16_t sent = 0;

	if (port_id >= SIM_MAX_PORTS || queue >= SIM_RXQ)
		return 0;
	buf = malloc(SIM_FRAME_MAX);
	if (!buf)
		return 0;
	LOCK();
	if (S.ports[port_id].started)
		for (; sent < n; sent++) {
			if (pkts[sent].len > SIM_FRAME_MAX)
				break;
			memcpy(buf, pkts[sent].data, pkts[sent].len);
			/* sent by the application: into the root pipe, as the resubmit example's PF path */
			run(port_id, pkts[sent].pkt_meta, buf, pkts[sent].len, 0, &res);
		}
	UNLOCK();
	free(buf);
	return sent;
}

EXPORT int docasim_port_stats(uint16_t port_id, struct docasim_port_stats *st)
{
	int ret = 0;

	if (port_id >= SIM_MAX_PORTS)
		return -EINVAL;
	LOCK();
	if (S.ports[port_id].started)
		*st = S.ports[port_id].stats;
	else
		ret = -ENODEV;
	UNLOCK();
	return ret;
}

static void *wire_loop(void *arg)
{
	uint8_t *buf = malloc(SIM_FRAME_MAX);
	struct pollfd pfd[SIM_MAX_PORTS];
	uint16_t who[SIM_MAX_PORTS];

	(void)arg;
	while (buf && !S.wire_stop) {
		int n = 0;

		LOCK();
		for (int p = 0; p < SIM_MAX_PORTS; p++)
			if (S.ports[p].started && S.ports[p].fd >= 0) {
				pfd[n].fd = S.ports[p].fd;
				pfd[n].events = POLLIN;
				who[n++] = (uint16_t)p;
			}
		UNLOCK();
		if (poll(pfd, (nfds_t)n, 20) <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			for (int k = 0; k < 64; k++) {
				struct sockaddr_ll from;
				socklen_t fl = sizeof(from);
				ssize_t len;
				struct docasim_result res;
				struct doca_flow_port *p;

				LOCK();
				p = &S.ports[who[i]];
				if (!p->started || p->fd != pfd[i].fd) {
					UNLOCK();
					break;
				}
				len = recvfrom(p->fd, buf, SIM_FRAME_MAX, 0, (struct sockaddr *)&from, &fl);
				if (len <= 0) {
					UNLOCK();
					break;
				}
				if (from.sll_pkttype == PACKET_OUTGOING) {
					UNLOCK();
					continue;
				}
				p->stats.ipackets++;
				p->stats.ibytes += (uint64_t)len;
				run(who[i], 0, buf, (uint32_t)len, 0, &res);
				UNLOCK();
			}
		}
	}
	free(buf);
	return NULL;
}

/* ---- dump --------------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, used;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->buf + (o->used < o->len ? o->used : o->len), o->used < o->len ? o->len - o->used : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->used += (size_t)n;
}

static void put_hex(struct out *o, const uint8_t *p, unsigned n)
{
	put(o, "\"");
	for (unsigned i = 0; i < n; i++)
		put(o, "%02x", p[i]);
	put(o, "\"");
}

/* fields of a match (or actions, off_actions) that are non-zero, as {"name": "hex"} */
/* the fields of s that sel has set (sel: its mask or its pipe's template; s itself when NULL) */
static void put_fields_sel(struct out *o, const void *s, const void *sel, bool actions)
{
	enum doca_flow_l3_type t = actions ? ((const struct doca_flow_actions *)s)->outer.l3_type
					   : ((const struct doca_flow_match *)s)->outer.l3_type;
	bool first = true;

	if (!sel)
		sel = s;

	put(o, "{");
	for (unsigned i = 0; i < PFDOCA_NFIELDS; i++) {
		const struct pfdoca_field *f = &pfdoca_fields[i];
		size_t off = actions ? f->action_off : f->match_off;

		if (off == (size_t)-1 || !l3_ok(f, t) || !(field_nonzero(sel, off, f->size) || field_nonzero(s, off, f->size)))
			continue;
		put(o, "%s\"%s\": ", first ? "" : ", ", f->name);
		if (f->host) {
			uint32_t v;

			memcpy(&v, (const uint8_t *)s + off, 4);
			put(o, "\"%u\"", v);
		} else {
			put_hex(o, (const uint8_t *)s + off, f->size);
		}
		first = false;
	}
	if (actions && ((const struct doca_flow_actions *)s)->pop_vlan) {
		put(o, "%s\"pop_vlan\": \"true\"", first ? "" : ", ");
		first = false;
	}
	if (actions && ((const struct doca_flow_actions *)s)->has_push) {
		const struct doca_flow_push_vlan_action *pv = &((const struct doca_flow_actions *)s)->push.vlan;

		put(o, "%s\"push.vlan\": \"%04x/%04x\"", first ? "" : ", ", ntohs(pv->eth_type), ntohs(pv->vlan_hdr.tci));
	}
	put(o, "}");
}

static void put_fields(struct out *o, const void *s, bool actions)
{
	put_fields_sel(o, s, NULL, actions);
}

static void put_fwd(struct out *o, const struct sim_fwd *f)
{
	switch (f->type) {
	case DOCA_FLOW_FWD_PORT: put(o, "\"port:%u\"", f->port_id); break;
	case DOCA_FLOW_FWD_PIPE:
		if (f->next)
			put(o, "\"pipe:%s\"", f->next->cfg.name);
		else
			put(o, "\"pipe:per-entry\"");
		break;
	case DOCA_FLOW_FWD_DROP: put(o, "\"drop\""); break;
	case DOCA_FLOW_FWD_CHANGEABLE: put(o, "\"changeable\""); break;
	case DOCA_FLOW_FWD_RSS:
		put(o, "\"rss:");
		for (unsigned i = 0; i < f->nq; i++)
			put(o, "%s%u", i ? "," : "", f->queues[i]);
		put(o, "\"");
		break;
	default: put(o, "\"none\""); break;
	}
}

static const char *type_name(enum doca_flow_pipe_type t)
{
	return t == DOCA_FLOW_PIPE_BASIC ? "basic" : t == DOCA_FLOW_PIPE_CONTROL ? "control"
	       : t == DOCA_FLOW_PIPE_HASH ? "hash" : "lpm";
}

EXPORT int docasim_dump_json(char *buf, size_t len)
{
	struct out o = { buf, len, 0 };
	bool pfirst = true;

	LOCK();
	put(&o, "{\"ports\": [");
	for (int p = 0, first = 1; p < SIM_MAX_PORTS; p++)
		if (S.ports[p].started) {
			put(&o, "%s%d", first ? "" : ", ", p);
			first = 0;
		}
	put(&o, "], \"initialised\": %s, \"violations\": %lu, \"pipes\": [", S.inited ? "true" : "false",
	    (unsigned long)S.violations);
	for (struct doca_flow_pipe *p = S.pipes; p; p = p->next_created) {
		const struct doca_flow_pipe_cfg *c = &p->cfg;
		bool efirst = true;

		put(&o, "%s{\"name\": \"%s\", \"type\": \"%s\", \"domain\": \"%s\", \"is_root\": %s, \"nr_entries\": %u, "
		    "\"match\": ", pfirst ? "" : ", ", c->name, type_name(c->type),
		    c->domain == DOCA_FLOW_PIPE_DOMAIN_EGRESS ? "egress" : "default", c->is_root ? "true" : "false",
		    c->nr_entries);
		if (c->has_match)
			put_fields(&o, &c->match, false);
		else
			put(&o, "null");
		put(&o, ", \"match_mask\": ");
		if (c->has_mask)
			put_fields(&o, &c->mask, false);
		else
			put(&o, "null");
		put(&o, ", \"actions\": [");
		for (uint32_t i = 0; i < c->nr_actions; i++) {
			put(&o, "%s{\"fields\": ", i ? ", " : "");
			put_fields(&o, &c->actions[i], true);
			put(&o, ", \"masks\": ");
			if (c->has_amask[i])
				put_fields(&o, &c->amasks[i], true);
			else
				put(&o, "null");
			put(&o, ", \"descs\": [");
			for (uint32_t k = 0; k < c->ndescs[i]; k++)
				put(&o, "%s\"add %s\"", k ? ", " : "", c->desc_fields[i][k]);
			put(&o, "]}");
		}
		put(&o, "], \"counter\": %s, \"miss_counter\": %s, \"fwd\": ",
		    c->has_monitor && c->monitor.counter_type == DOCA_FLOW_RESOURCE_TYPE_NON_SHARED ? "true" : "false",
		    c->miss_counter ? "true" : "false");
		put_fwd(&o, &p->fwd);
		put(&o, ", \"fwd_miss\": ");
		put_fwd(&o, &p->fwd_miss);
		put(&o, ", \"entries\": [");
		for (struct doca_flow_pipe_entry *e = p->entries; e; e = e->next) {
			if (e->state == E_PENDING_DEL)
				continue;
			put(&o, "%s{\"ctx\": %lu, \"priority\": %u, ", efirst ? "" : ", ",
			    (unsigned long)(uintptr_t)e->usr_ctx, e->priority);
			if (c->type == DOCA_FLOW_PIPE_HASH)
				put(&o, "\"index\": %u, ", e->index);
			put(&o, "\"match\": ");
			put_fields_sel(&o, &e->match, e->has_mask ? (const void *)&e->mask
						       : c->has_match ? (const void *)&c->match : NULL, false);
			put(&o, ", \"match_mask\": ");
			if (e->has_mask)
				put_fields(&o, &e->mask, false);
			else
				put(&o, "null");
			put(&o, ", \"action_idx\": %d, \"actions\": ", e->has_actions ? e->actions.action_idx : -1);
			if (e->has_actions)
				put_fields(&o, &e->actions, true);
			else
				put(&o, "null");
			put(&o, ", \"fwd\": ");
			if (e->has_fwd)
				put_fwd(&o, &e->fwd);
			else
				put(&o, "null");
			if (e->aging_sec)
				put(&o, ", \"aging_sec\": %u", e->aging_sec);
			if (e->mirror)
				put(&o, ", \"shared_mirror_id\": %u", e->mirror);
			put(&o, ", \"active\": %s}", e->state == E_ACTIVE ? "true" : "false");
			efirst = false;
		}
		put(&o, "]}");
		pfirst = false;
	}
	put(&o, "]}");
	UNLOCK();
	if (o.used >= len)
		return -ENOSPC;
	return (int)o.used;
}
