// SPDX-License-Identifier: BSD-2-Clause
/* The simulator's contract, call by call: each documented rule refused with its documented error. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "doca/doca_flow_decl.h"
#include "doca/doca_io.h"

static int failures;

#define CHECK(what, expr)                                                                 \
	do {                                                                              \
		if (expr)                                                                 \
			printf("ok %s\n", what);                                          \
		else {                                                                    \
			printf("FAIL %s (%s:%d)\n", what, __FILE__, __LINE__);            \
			failures++;                                                       \
		}                                                                         \
	} while (0)

static struct doca_flow_port *start_port(const char *devargs, doca_error_t *e)
{
	struct doca_flow_port_cfg *pc;
	struct doca_flow_port *p = NULL;

	doca_flow_port_cfg_create(&pc);
	doca_flow_port_cfg_set_devargs(pc, devargs);
	*e = doca_flow_port_start(pc, &p);
	doca_flow_port_cfg_destroy(pc);
	return p;
}

static doca_error_t basic_pipe(struct doca_flow_port *port, const char *name, bool root, enum doca_flow_pipe_domain dom,
			       const struct doca_flow_fwd *fwd, const struct doca_flow_fwd *miss, struct doca_flow_pipe **out)
{
	struct doca_flow_pipe_cfg *cfg;
	struct doca_flow_match m = { 0 };
	struct doca_flow_monitor mon = { .counter_type = DOCA_FLOW_RESOURCE_TYPE_NON_SHARED };
	doca_error_t e = doca_flow_pipe_cfg_create(&cfg, port);

	if (e)
		return e;
	m.outer.l3_type = DOCA_FLOW_L3_TYPE_IP4;
	m.outer.ip4.dst_ip = 0xffffffffu;
	doca_flow_pipe_cfg_set_name(cfg, name);
	doca_flow_pipe_cfg_set_type(cfg, DOCA_FLOW_PIPE_BASIC);
	doca_flow_pipe_cfg_set_is_root(cfg, root);
	doca_flow_pipe_cfg_set_domain(cfg, dom);
	doca_flow_pipe_cfg_set_nr_entries(cfg, 2);
	doca_flow_pipe_cfg_set_match(cfg, &m, NULL);
	doca_flow_pipe_cfg_set_monitor(cfg, &mon);
	doca_flow_pipe_cfg_set_miss_counter(cfg, true);
	e = doca_flow_pipe_create(cfg, fwd, miss, out);
	doca_flow_pipe_cfg_destroy(cfg);
	return e;
}

/* a hash pipe of n entries hashing ip4 dst (with a match as well when bad_match) */
static doca_error_t hash_pipe(struct doca_flow_port *port, uint32_t n, bool bad_match, const struct doca_flow_fwd *fwd,
			      struct doca_flow_pipe **out)
{
	struct doca_flow_pipe_cfg *cfg;
	struct doca_flow_match m = { 0 };
	doca_error_t e = doca_flow_pipe_cfg_create(&cfg, port);

	if (e)
		return e;
	m.outer.l3_type = DOCA_FLOW_L3_TYPE_IP4;
	m.outer.ip4.dst_ip = 0xffffffffu;
	doca_flow_pipe_cfg_set_name(cfg, "h");
	doca_flow_pipe_cfg_set_type(cfg, DOCA_FLOW_PIPE_HASH);
	doca_flow_pipe_cfg_set_nr_entries(cfg, n);
	doca_flow_pipe_cfg_set_match(cfg, bad_match ? &m : NULL, &m);
	e = doca_flow_pipe_create(cfg, fwd, NULL, out);
	doca_flow_pipe_cfg_destroy(cfg);
	return e;
}

static uint8_t frame[64];

static void make_frame(uint32_t dst)
{
	memset(frame, 0, sizeof(frame));
	frame[12] = 0x08;
	frame[14] = 0x45;
	frame[16] = 0;
	frame[17] = 50;
	frame[22] = 64;
	frame[23] = 17;
	memcpy(frame + 30, &dst, 4);
	frame[34 + 5] = 30;     /* udp length */
}

int main(void)
{
	struct doca_flow_cfg *cfg;
	struct doca_flow_port *p0, *p1, *tmp;
	struct doca_flow_pipe *root, *root2, *eg, *pipe;
	struct doca_flow_pipe_entry *e1, *e2;
	struct doca_flow_fwd to_p1 = { .type = DOCA_FLOW_FWD_PORT, .port_id = 1 }, drop = { .type = DOCA_FLOW_FWD_DROP };
	struct doca_flow_fwd rss = { .type = DOCA_FLOW_FWD_RSS };
	struct doca_flow_match m = { 0 };
	struct doca_flow_resource_query q;
	struct docasim_result res;
	uint16_t queues[1] = { 0 };
	doca_error_t e;

	CHECK("port_start before doca_flow_init: DOCA_ERROR_BAD_STATE",
	      (start_port("0", &e), e == DOCA_ERROR_BAD_STATE));
	doca_flow_cfg_create(&cfg);
	CHECK("pipe queues above the device's: DOCA_ERROR_INVALID_VALUE",
	      doca_flow_cfg_set_pipe_queues(cfg, 17) == DOCA_ERROR_INVALID_VALUE);
	doca_flow_cfg_set_pipe_queues(cfg, 2);
	CHECK("init without mode_args: DOCA_ERROR_INVALID_VALUE", doca_flow_init(cfg) == DOCA_ERROR_INVALID_VALUE);
	doca_flow_cfg_set_mode_args(cfg, "switch,hws");
	CHECK("init", doca_flow_init(cfg) == DOCA_SUCCESS);
	CHECK("init twice: DOCA_ERROR_BAD_STATE", doca_flow_init(cfg) == DOCA_ERROR_BAD_STATE);
	doca_flow_cfg_destroy(cfg);
	p0 = start_port("0", &e);
	CHECK("port 0 started", e == DOCA_SUCCESS && p0);
	CHECK("port 0 twice: DOCA_ERROR_ALREADY_EXIST", (start_port("0", &e), e == DOCA_ERROR_ALREADY_EXIST));
	CHECK("pipe forwarding to a port not started: DOCA_ERROR_INVALID_VALUE",
	      basic_pipe(p0, "x", false, DOCA_FLOW_PIPE_DOMAIN_DEFAULT, &to_p1, &drop, &pipe) == DOCA_ERROR_INVALID_VALUE);
	p1 = start_port("1", &e);
	CHECK("pipes only on the switch manager: DOCA_ERROR_NOT_SUPPORTED",
	      basic_pipe(p1, "x", false, DOCA_FLOW_PIPE_DOMAIN_DEFAULT, &to_p1, &drop, &pipe) == DOCA_ERROR_NOT_SUPPORTED);
	CHECK("switch manager is port 0", doca_flow_port_switch_get(p1) == p0);
	CHECK("egress pipe", basic_pipe(p0, "eg", false, DOCA_FLOW_PIPE_DOMAIN_EGRESS, &to_p1, &drop, &eg) == 0);
	rss.rss_type = DOCA_FLOW_RESOURCE_TYPE_NON_SHARED;
	rss.rss.queues_array = queues;
	rss.rss.nr_queues = 1;
	CHECK("RSS from the egress domain: DOCA_ERROR_NOT_SUPPORTED",
	      basic_pipe(p0, "x", false, DOCA_FLOW_PIPE_DOMAIN_EGRESS, &rss, &drop, &pipe) == DOCA_ERROR_NOT_SUPPORTED);
	CHECK("fwd_miss to a port: DOCA_ERROR_NOT_SUPPORTED",
	      basic_pipe(p0, "x", false, DOCA_FLOW_PIPE_DOMAIN_DEFAULT, &drop, &to_p1, &pipe) == DOCA_ERROR_NOT_SUPPORTED);
	{
		struct doca_flow_fwd to_eg = { .type = DOCA_FLOW_FWD_PIPE, .next_pipe = eg };

		CHECK("root pipe", basic_pipe(p0, "root", true, DOCA_FLOW_PIPE_DOMAIN_DEFAULT, &to_eg, &drop, &root) == 0);
	}
	CHECK("a second root in the domain: DOCA_ERROR_ALREADY_EXIST",
	      basic_pipe(p0, "root2", true, DOCA_FLOW_PIPE_DOMAIN_DEFAULT, &drop, &drop, &root2) == DOCA_ERROR_ALREADY_EXIST);
	m.outer.l3_type = DOCA_FLOW_L3_TYPE_IP4;
	m.outer.ip4.dst_ip = inet_addr("10.0.0.1");
	CHECK("entry on queue 2 of 2: DOCA_ERROR_INVALID_VALUE",
	      doca_flow_pipe_add_entry(2, root, &m, NULL, NULL, NULL, DOCA_FLOW_NO_WAIT, NULL, &e1) ==
		      DOCA_ERROR_INVALID_VALUE);
	CHECK("entry added", doca_flow_pipe_add_entry(1, root, &m, NULL, NULL, NULL, DOCA_FLOW_NO_WAIT, (void *)7, &e1) == 0);
	CHECK("same key twice: DOCA_ERROR_ALREADY_EXIST",
	      doca_flow_pipe_add_entry(1, root, &m, NULL, NULL, NULL, DOCA_FLOW_NO_WAIT, NULL, &e2) ==
		      DOCA_ERROR_ALREADY_EXIST);
	CHECK("egress entry added", doca_flow_pipe_add_entry(1, eg, &m, NULL, NULL, NULL, DOCA_FLOW_WAIT_FOR_BATCH, (void *)8,
							     &e2) == 0);
	make_frame(inet_addr("10.0.0.1"));
	docasim_inject(0, frame, sizeof(frame), DOCASIM_INJECT_NO_QUEUE, NULL, 0, &res);
	CHECK("entry in process: the frame misses", res.verdict == DOCASIM_DROP && !res.last_entry_ctx &&
	      doca_flow_pipe_entry_get_status(e1) == DOCA_FLOW_ENTRY_STATUS_IN_PROCESS);
	doca_flow_entries_process(p0, 0, 0, 0);
	CHECK("processing another queue leaves it pending",
	      doca_flow_pipe_entry_get_status(e1) == DOCA_FLOW_ENTRY_STATUS_IN_PROCESS);
	doca_flow_entries_process(p0, 1, 0, 0);
	docasim_inject(0, frame, sizeof(frame), DOCASIM_INJECT_NO_QUEUE, NULL, 0, &res);
	CHECK("processed: the frame hits and leaves through the egress pipe on port 1",
	      doca_flow_pipe_entry_get_status(e1) == DOCA_FLOW_ENTRY_STATUS_SUCCESS && res.verdict == DOCASIM_TX &&
	      res.port_id == 1 && res.last_entry_ctx == (void *)8 && res.hops == 2);
	CHECK("its counter", doca_flow_resource_query_entry(e1, &q) == 0 && q.counter.total_pkts == 1);
	CHECK("the egress entry's counter, no egress miss", doca_flow_resource_query_entry(e2, &q) == 0 &&
	      q.counter.total_pkts == 1 && doca_flow_resource_query_pipe_miss(eg, &q) == 0 && q.counter.total_pkts == 0);
	make_frame(inet_addr("10.0.0.2"));
	docasim_inject(0, frame, sizeof(frame), DOCASIM_INJECT_NO_QUEUE, NULL, 0, &res);
	CHECK("another destination misses the root (the unprocessed one did too)", res.verdict == DOCASIM_DROP &&
	      doca_flow_resource_query_pipe_miss(root, &q) == 0 && q.counter.total_pkts == 2);
	{
		struct doca_flow_pipe *h;
		struct doca_flow_pipe_entry *h0, *hx;

		CHECK("hash pipe with a match (entries are by index): DOCA_ERROR_INVALID_VALUE",
		      hash_pipe(p0, 2, true, &to_p1, &h) == DOCA_ERROR_INVALID_VALUE);
		CHECK("hash pipe of 65537 entries: DOCA_ERROR_INVALID_VALUE",
		      hash_pipe(p0, 65537, false, &to_p1, &h) == DOCA_ERROR_INVALID_VALUE);
		CHECK("hash pipe", hash_pipe(p0, 2, false, &to_p1, &h) == 0);
		CHECK("hash entry index 2 of 2: DOCA_ERROR_INVALID_VALUE",
		      doca_flow_pipe_hash_add_entry(0, h, 2, NULL, NULL, NULL, DOCA_FLOW_NO_WAIT, NULL, &hx) ==
			      DOCA_ERROR_INVALID_VALUE);
		CHECK("hash entry 0", doca_flow_pipe_hash_add_entry(0, h, 0, NULL, NULL, NULL, DOCA_FLOW_NO_WAIT, NULL,
								   &h0) == 0);
		CHECK("hash entry 0 twice: DOCA_ERROR_ALREADY_EXIST",
		      doca_flow_pipe_hash_add_entry(0, h, 0, NULL, NULL, NULL, DOCA_FLOW_NO_WAIT, NULL, &hx) ==
			      DOCA_ERROR_ALREADY_EXIST);
		CHECK("a basic entry into a hash pipe: DOCA_ERROR_NOT_SUPPORTED",
		      doca_flow_pipe_add_entry(0, h, &m, NULL, NULL, NULL, DOCA_FLOW_NO_WAIT, NULL, &hx) ==
			      DOCA_ERROR_NOT_SUPPORTED);
		CHECK("hash entry removed, its index free again",
		      doca_flow_entries_process(p0, 0, 0, 0) == 0 && doca_flow_pipe_remove_entry(0, DOCA_FLOW_NO_WAIT, h0) == 0 &&
		      doca_flow_entries_process(p0, 0, 0, 0) == 0 &&
		      doca_flow_pipe_hash_add_entry(0, h, 0, NULL, NULL, NULL, DOCA_FLOW_NO_WAIT, NULL, &h0) == 0 &&
		      doca_flow_entries_process(p0, 0, 0, 0) == 0 &&
		      doca_flow_pipe_entry_get_status(h0) == DOCA_FLOW_ENTRY_STATUS_SUCCESS);
		CHECK("hash pipe destroyed", doca_flow_pipe_remove_entry(0, DOCA_FLOW_NO_WAIT, h0) == 0 &&
		      doca_flow_entries_process(p0, 0, 0, 0) == 0 && doca_flow_pipe_destroy(h) == 0);
	}
	CHECK("destroying a pipe others forward to: DOCA_ERROR_IN_USE", doca_flow_pipe_destroy(eg) == DOCA_ERROR_IN_USE);
	CHECK("stopping a port with pipes: DOCA_ERROR_IN_USE", doca_flow_port_stop(p0) == DOCA_ERROR_IN_USE);
	CHECK("remove entry", doca_flow_pipe_remove_entry(1, DOCA_FLOW_NO_WAIT, e1) == 0 &&
	      doca_flow_entries_process(p0, 1, 0, 0) == 0);
	CHECK("destroy in order", doca_flow_pipe_destroy(root) == 0 && doca_flow_pipe_destroy(eg) == 0);
	CHECK("the switch manager before its representor: DOCA_ERROR_IN_USE", doca_flow_port_stop(p0) == DOCA_ERROR_IN_USE);
	CHECK("ports stopped", doca_flow_port_stop(p1) == 0 && doca_flow_port_stop(p0) == 0);
	tmp = start_port("3", &e);
	doca_flow_destroy();
	CHECK("doca_flow_destroy with a port started is a violation", docasim_violations() == 1);
	CHECK("the port left started stops", doca_flow_port_stop(tmp) == 0);

	/* vnf mode: no switch manager, each port its own pipes, root, RSS queues and entry queues */
	{
		struct doca_flow_fwd to_p0 = { .type = DOCA_FLOW_FWD_PORT, .port_id = 0 };
		struct doca_flow_fwd to_other = { .type = DOCA_FLOW_FWD_PIPE };
		struct doca_flow_pipe *r0, *r1, *n1, *x;
		uint32_t d0 = htonl(0x0a000001), d1 = htonl(0x0a000002);

		doca_flow_cfg_create(&cfg);
		doca_flow_cfg_set_pipe_queues(cfg, 1);
		CHECK("vnf: mode vnf,hws", doca_flow_cfg_set_mode_args(cfg, "vnf,hws") == 0 && doca_flow_init(cfg) == 0);
		doca_flow_cfg_destroy(cfg);
		CHECK("vnf: a representor port: DOCA_ERROR_NOT_SUPPORTED",
		      (start_port("1,representor=vf0", &e), e == DOCA_ERROR_NOT_SUPPORTED));
		p0 = start_port("0", &e);
		p1 = start_port("1", &e);
		CHECK("vnf: ports start, and there is no switch manager",
		      p0 && p1 && !doca_flow_port_switch_get(p0) && !doca_flow_port_switch_get(p1));
		CHECK("vnf: a root pipe on each port",
		      basic_pipe(p0, "r0", true, DOCA_FLOW_PIPE_DOMAIN_DEFAULT, &to_p1, &drop, &r0) == 0 &&
		      basic_pipe(p1, "r1", true, DOCA_FLOW_PIPE_DOMAIN_DEFAULT, &to_p0, &drop, &r1) == 0);
		CHECK("vnf: a second root on a port: DOCA_ERROR_ALREADY_EXIST",
		      basic_pipe(p1, "r1b", true, DOCA_FLOW_PIPE_DOMAIN_DEFAULT, &to_p0, &drop, &x) ==
			      DOCA_ERROR_ALREADY_EXIST);
		CHECK("vnf: a pipe on port 1", basic_pipe(p1, "n1", false, DOCA_FLOW_PIPE_DOMAIN_DEFAULT, &to_p0, &drop,
							  &n1) == 0);
		to_other.next_pipe = n1;
		CHECK("vnf: forward to a pipe of another port: DOCA_ERROR_INVALID_VALUE",
		      basic_pipe(p0, "x", false, DOCA_FLOW_PIPE_DOMAIN_DEFAULT, &to_other, &drop, &x) ==
			      DOCA_ERROR_INVALID_VALUE);
		memset(&m, 0, sizeof(m));
		m.outer.l3_type = DOCA_FLOW_L3_TYPE_IP4;
		m.outer.ip4.dst_ip = d0;
		CHECK("vnf: entries on both ports' roots, one queue",
		      doca_flow_pipe_add_entry(0, r1, &m, NULL, NULL, NULL, DOCA_FLOW_NO_WAIT, NULL, &e2) == 0 &&
		      doca_flow_pipe_add_entry(0, r0, &m, NULL, NULL, NULL, DOCA_FLOW_NO_WAIT, NULL, &e1) == 0);
		CHECK("vnf: doca_flow_entries_process on port 0 completes port 0's entries only",
		      doca_flow_entries_process(p0, 0, 0, 0) == 0 &&
		      doca_flow_pipe_entry_get_status(e1) == DOCA_FLOW_ENTRY_STATUS_SUCCESS &&
		      doca_flow_pipe_entry_get_status(e2) == DOCA_FLOW_ENTRY_STATUS_IN_PROCESS);
		CHECK("vnf: and on port 1 port 1's", doca_flow_entries_process(p1, 0, 0, 0) == 0 &&
		      doca_flow_pipe_entry_get_status(e2) == DOCA_FLOW_ENTRY_STATUS_SUCCESS);
		make_frame(d0);
		CHECK("vnf: a frame on port 0 takes port 0's root, out on port 1",
		      docasim_inject(0, frame, sizeof(frame), DOCASIM_INJECT_NO_QUEUE, NULL, 0, &res) == 0 &&
		      res.verdict == DOCASIM_TX && res.port_id == 1 && res.hops == 1);
		CHECK("vnf: a frame on port 1 takes port 1's root, out on port 0",
		      docasim_inject(1, frame, sizeof(frame), DOCASIM_INJECT_NO_QUEUE, NULL, 0, &res) == 0 &&
		      res.verdict == DOCASIM_TX && res.port_id == 0);
		make_frame(d1);
		CHECK("vnf: a miss on port 1 is port 1's root's",
		      docasim_inject(1, frame, sizeof(frame), DOCASIM_INJECT_NO_QUEUE, NULL, 0, &res) == 0 &&
		      res.verdict == DOCASIM_DROP && doca_flow_resource_query_pipe_miss(r1, &q) == 0 &&
		      q.counter.total_pkts == 1 && doca_flow_resource_query_pipe_miss(r0, &q) == 0 &&
		      q.counter.total_pkts == 0);
		CHECK("vnf: teardown, ports in any order",
		      doca_flow_pipe_remove_entry(0, DOCA_FLOW_NO_WAIT, e1) == 0 &&
		      doca_flow_pipe_remove_entry(0, DOCA_FLOW_NO_WAIT, e2) == 0 &&
		      doca_flow_entries_process(p0, 0, 0, 0) == 0 && doca_flow_entries_process(p1, 0, 0, 0) == 0 &&
		      doca_flow_pipe_destroy(r0) == 0 && doca_flow_pipe_destroy(r1) == 0 && doca_flow_pipe_destroy(n1) == 0 &&
		      doca_flow_port_stop(p0) == 0 && doca_flow_port_stop(p1) == 0);
		doca_flow_destroy();
		CHECK("vnf: no violation", docasim_violations() == 1);
	}

	/* shared mirrors: configured by id, bound to the port, named by an entry's monitor */
	{
		struct doca_flow_mirror_target tg = { .fwd = { .type = DOCA_FLOW_FWD_PORT, .port_id = 2 } };
		struct doca_flow_shared_resource_cfg sc = { .mirror_cfg = { .nr_targets = 1, .target = &tg } };
		struct doca_flow_monitor mon = { .counter_type = DOCA_FLOW_RESOURCE_TYPE_NON_SHARED, .shared_mirror_id = 1 };
		struct docasim_port_stats st;
		struct doca_flow_port *p2;
		uint32_t ids[1] = { 1 };
		uint32_t d0 = htonl(0x0a000001);

		doca_flow_cfg_create(&cfg);
		doca_flow_cfg_set_pipe_queues(cfg, 1);
		doca_flow_cfg_set_mode_args(cfg, "switch,hws");
		CHECK("mirrors: nr_shared_resource", doca_flow_cfg_set_nr_shared_resource(cfg, 2,
										  DOCA_FLOW_SHARED_RESOURCE_MIRROR) == 0);
		CHECK("mirrors: init", doca_flow_init(cfg) == 0);
		doca_flow_cfg_destroy(cfg);
		p0 = start_port("0", &e);
		p1 = start_port("1", &e);
		p2 = start_port("2", &e);
		CHECK("mirrors: id 3 of 2: DOCA_ERROR_INVALID_VALUE",
		      doca_flow_shared_resource_set_cfg(DOCA_FLOW_SHARED_RESOURCE_MIRROR, 3, &sc) == DOCA_ERROR_INVALID_VALUE);
		CHECK("mirrors: binding one not configured: DOCA_ERROR_INVALID_VALUE",
		      doca_flow_shared_resources_bind(DOCA_FLOW_SHARED_RESOURCE_MIRROR, ids, 1, p0) ==
			      DOCA_ERROR_INVALID_VALUE);
		CHECK("mirrors: configured", doca_flow_shared_resource_set_cfg(DOCA_FLOW_SHARED_RESOURCE_MIRROR, 1, &sc) == 0);
		CHECK("mirrors: configured twice: DOCA_ERROR_ALREADY_EXIST",
		      doca_flow_shared_resource_set_cfg(DOCA_FLOW_SHARED_RESOURCE_MIRROR, 1, &sc) == DOCA_ERROR_ALREADY_EXIST);
		CHECK("mirrors: a root pipe", basic_pipe(p0, "m", true, DOCA_FLOW_PIPE_DOMAIN_DEFAULT, &to_p1, &drop, &root) == 0);
		memset(&m, 0, sizeof(m));
		m.outer.l3_type = DOCA_FLOW_L3_TYPE_IP4;
		m.outer.ip4.dst_ip = d0;
		CHECK("mirrors: an entry naming a mirror not bound to the port: DOCA_ERROR_INVALID_VALUE",
		      doca_flow_pipe_add_entry(0, root, &m, NULL, &mon, NULL, DOCA_FLOW_NO_WAIT, NULL, &e1) ==
			      DOCA_ERROR_INVALID_VALUE);
		CHECK("mirrors: bound, and the entry added",
		      doca_flow_shared_resources_bind(DOCA_FLOW_SHARED_RESOURCE_MIRROR, ids, 1, p0) == 0 &&
		      doca_flow_pipe_add_entry(0, root, &m, NULL, &mon, NULL, DOCA_FLOW_NO_WAIT, NULL, &e1) == 0 &&
		      doca_flow_entries_process(p0, 0, 0, 0) == 0);
		make_frame(d0);
		CHECK("mirrors: the packet to its forward, a copy to the target",
		      docasim_inject(0, frame, sizeof(frame), DOCASIM_INJECT_NO_QUEUE, NULL, 0, &res) == 0 &&
		      res.verdict == DOCASIM_TX && res.port_id == 1 && res.mirrored == 1 &&
		      docasim_port_stats(2, &st) == 0 && st.opackets == 1 && docasim_port_stats(1, &st) == 0 &&
		      st.opackets == 1);
		CHECK("mirrors: teardown", doca_flow_pipe_remove_entry(0, DOCA_FLOW_NO_WAIT, e1) == 0 &&
		      doca_flow_entries_process(p0, 0, 0, 0) == 0 && doca_flow_pipe_destroy(root) == 0 &&
		      doca_flow_port_stop(p2) == 0 && doca_flow_port_stop(p1) == 0 && doca_flow_port_stop(p0) == 0);
		doca_flow_destroy();
	}
	return failures ? 1 : 0;
}
