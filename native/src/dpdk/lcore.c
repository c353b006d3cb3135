// SPDX-License-Identifier: BSD-2-Clause
/*
 * Ports, worker lcores and the miss handler of the dpdk backend.
 * Workers: burst rx, run the software pipes, burst tx. Misses go through an
 * rte_ring to the handler (an lcore when one is spare, else a control thread),
 * which asks the shared learner to install an entry and resubmit the frame.
 */
#ifdef PF_HAVE_DPDK
#define ALLOW_EXPERIMENTAL_API 1   /* rte_eth_link_to_str */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_malloc.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include "dpdk.h"

/* Frames ahead of the one being processed whose headers are prefetched. */
#define PFD_PREFETCH_AHEAD 4

/* RCU/counter slot of the calling thread (-1: not a datapath thread). */
__thread int pfd_thread_slot = -1;

static const char *port_label(const struct pfd *d, uint32_t port, char *buf, size_t len)
{
	snprintf(buf, len, "port %u (%s, dpdk port %u)", port, d->ports[port].name, d->ports[port].dpdk_port);
	return buf;
}

static int port_start_one(struct pfd *d, uint32_t port, struct pf_error *err)
{
	struct pfd_port *p = &d->ports[port];
	struct rte_eth_conf conf = { 0 };
	struct rte_eth_dev_info info;
	struct rte_eth_link link;
	uint16_t nrxd = PFD_RX_DESC, ntxd = PFD_TX_DESC;
	char label[96], link_txt[RTE_ETH_LINK_MAX_STR_LEN];
	int ret, socket = rte_eth_dev_socket_id(p->dpdk_port);

	port_label(d, port, label, sizeof(label));
	if (socket < 0)
		socket = (int)rte_socket_id();
	ret = rte_eth_dev_info_get(p->dpdk_port, &info);
	if (ret)
		return pf_err(err, ret, "%s: cannot read device info: %s", label, rte_strerror(-ret));
	if (!p->started) {
		p->nrxq = (uint16_t)RTE_MIN(RTE_MAX(d->nworkers, 1u), (unsigned int)RTE_MIN(info.max_rx_queues, PF_MAX_QUEUES));
		/* one tx queue per worker plus the miss handler, or shared under a lock */
		p->ntxq = (uint16_t)RTE_MIN(d->nworkers + 1, (unsigned int)RTE_MIN(info.max_tx_queues, PF_MAX_QUEUES));
		if (!p->nrxq || !p->ntxq)
			return pf_err(err, -ENODEV, "%s: driver %s offers no rx/tx queues", label, info.driver_name);
		p->tx_shared = p->ntxq < d->nworkers + 1;
		for (int q = 0; q < PF_MAX_QUEUES; q++)
			rte_spinlock_init(&p->txlock[q]);
		if (!p->flow_configured && d->rte_flow_mode != PFD_RTE_FLOW_OFF) {
			/* the miss rules MARK frames for the workers: ask for the mark before configuring */
			uint64_t meta = RTE_ETH_RX_METADATA_USER_MARK;

			rte_eth_rx_metadata_negotiate(p->dpdk_port, &meta);
		}
		if (p->nrxq > 1 && (info.flow_type_rss_offloads & RTE_ETH_RSS_IP)) {
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
		} else if (p->nrxq > 1) {
			p->nrxq = 1;
		}
		ret = rte_eth_dev_configure(p->dpdk_port, p->nrxq, p->ntxq, &conf);
		if (ret && p->ntxq != p->nrxq) {
			/* some PMDs (net_tap) want as many tx as rx queues: share the tx queues instead */
			p->ntxq = p->nrxq;
			p->tx_shared = true;
			ret = rte_eth_dev_configure(p->dpdk_port, p->nrxq, p->ntxq, &conf);
		}
		if (ret)
			return pf_err(err, ret, "%s: configure with %u rx / %u tx queues failed: %s", label, p->nrxq,
				      p->ntxq, rte_strerror(-ret));
		rte_eth_dev_adjust_nb_rx_tx_desc(p->dpdk_port, &nrxd, &ntxd);
		for (uint16_t q = 0; q < p->nrxq; q++) {
			ret = rte_eth_rx_queue_setup(p->dpdk_port, q, nrxd, (unsigned int)socket, NULL, d->pool);
			if (ret)
				return pf_err(err, ret, "%s: rx queue %u setup failed: %s", label, q, rte_strerror(-ret));
		}
		for (uint16_t q = 0; q < p->ntxq; q++) {
			ret = rte_eth_tx_queue_setup(p->dpdk_port, q, ntxd, (unsigned int)socket, NULL);
			if (ret)
				return pf_err(err, ret, "%s: tx queue %u setup failed: %s", label, q, rte_strerror(-ret));
		}
		/* the template API must be configured before the port starts */
		if (!p->flow_configured) {
			p->flow_configured = true;
			pfd_rte_flow_port_configure(d, port);
		}
	}
	ret = rte_eth_dev_start(p->dpdk_port);
	if (ret)
		return pf_err(err, ret, "%s: start failed: %s", label, rte_strerror(-ret));
	p->started = true;
	rte_eth_promiscuous_enable(p->dpdk_port);  /* not every PMD can; frames to us still arrive */
	rte_eth_link_get_nowait(p->dpdk_port, &link);
	rte_eth_link_to_str(link_txt, sizeof(link_txt), &link);
	pf_info("%s: driver %s, %u rx / %u tx queues%s, %s", label, info.driver_name, p->nrxq, p->ntxq,
		p->tx_shared ? " (tx shared)" : "", link_txt);
	return 0;
}

int pfd_ports_start(struct pfd *d, struct pf_error *err)
{
	for (uint32_t port = 0; port < PF_MAX_PORTS; port++) {
		int ret;

		if (!d->ports[port].in_use)
			continue;
		ret = port_start_one(d, port, err);
		if (ret) {
			pfd_ports_stop(d);
			return ret;
		}
	}
	return 0;
}

void pfd_ports_stop(struct pfd *d)
{
	for (uint32_t port = 0; port < PF_MAX_PORTS; port++) {
		struct pfd_port *p = &d->ports[port];

		if (p->in_use && p->started) {
			rte_eth_dev_stop(p->dpdk_port);
			p->started = false;
		}
	}
}

uint16_t pfd_tx(struct pfd *d, uint32_t slot, uint32_t port, struct rte_mbuf **m, uint16_t n)
{
	struct pfd_port *p = &d->ports[port];
	struct pf_port_counter *c = &d->counters[slot].ports[port];
	uint64_t bytes[PFD_BURST * 2];
	uint16_t sent, q;

	if (!p->in_use || !p->started) {
		c->drops[PF_DROP_TX_FAIL] += n;
		rte_pktmbuf_free_bulk(m, n);
		return 0;
	}
	for (uint16_t i = 0; i < n && i < RTE_DIM(bytes); i++)
		bytes[i] = rte_pktmbuf_pkt_len(m[i]);
	q = (uint16_t)(slot % p->ntxq);
	if (p->tx_shared)
		rte_spinlock_lock(&p->txlock[q]);
	sent = rte_eth_tx_burst(p->dpdk_port, q, m, n);
	if (p->tx_shared)
		rte_spinlock_unlock(&p->txlock[q]);
	c->tx_packets += sent;
	for (uint16_t i = 0; i < sent && i < RTE_DIM(bytes); i++)
		c->tx_bytes += bytes[i];
	if (sent < n) {
		c->drops[PF_DROP_TX_FAIL] += n - sent;
		rte_pktmbuf_free_bulk(&m[sent], n - sent);
	}
	return sent;
}

/* Per-worker tx staging: frames are sent per output port once per rx burst. */
struct tx_stage {
	uint16_t n[PF_MAX_PORTS];
	uint16_t touched[PF_MAX_PORTS];
	uint16_t ntouched;
	struct rte_mbuf *m[PF_MAX_PORTS][PFD_BURST * 2];
};

static void stage_flush(struct pfd *d, uint32_t slot, struct tx_stage *st)
{
	for (uint16_t i = 0; i < st->ntouched; i++) {
		uint16_t port = st->touched[i];

		pfd_tx(d, slot, port, st->m[port], st->n[port]);
		st->n[port] = 0;
	}
	st->ntouched = 0;
}

static void stage_add(struct pfd *d, uint32_t slot, struct tx_stage *st, uint32_t port, struct rte_mbuf *m)
{
	if (st->n[port] == RTE_DIM(st->m[port])) {
		pfd_tx(d, slot, port, st->m[port], st->n[port]);
		st->n[port] = 0;
	}
	if (st->n[port] == 0) {
		bool seen = false;

		for (uint16_t i = 0; i < st->ntouched; i++)
			seen |= st->touched[i] == port;
		if (!seen)
			st->touched[st->ntouched++] = (uint16_t)port;
	}
	st->m[port][st->n[port]++] = m;
}

static void run_and_stage(struct pfd *d, uint32_t slot, struct tx_stage *st, uint32_t port, uint8_t path,
			  uint64_t now_ns, struct rte_mbuf *m, bool to_miss_ring)
{
	struct pfd_outputs out;
	struct pf_verdict v;
	uint32_t start = d->root_pipe;

	/* a frame the NIC sent up on a pipe's miss continues that pipe here (the pipes before it ran in the NIC) */
	if ((m->ol_flags & RTE_MBUF_F_RX_FDIR_ID) && (m->hash.fdir.hi & PFD_MARK_MISS) &&
	    (m->hash.fdir.hi & PFD_MARK_PIPE_MASK) < PF_MAX_PIPES)
		start = m->hash.fdir.hi & PFD_MARK_PIPE_MASK;
	out.n = 0;
	pfd_pipeline_run_from(d, slot, port, path, start, now_ns, m, &out, &v, to_miss_ring);
	for (uint32_t i = 0; i < out.n; i++)
		stage_add(d, slot, st, out.ports[i], out.mbufs[i]);
}

/* tx staging of the resubmits of the thread that handles misses */
static __thread struct tx_stage *resubmit_stage;
static bool misses_inline(const struct pfd *d);
static unsigned int handle_misses(struct pfd *d);

static int worker_main(void *arg)
{
	struct pfd_worker *w = arg;
	struct pfd *d = w->inst_state;
	struct tx_stage *st = rte_zmalloc("pfd_stage", sizeof(*st), RTE_CACHE_LINE_SIZE);
	struct tx_stage *rst = NULL;
	struct rte_mbuf *rx[PFD_BURST];
	bool learns = misses_inline(d) && w->slot == 0;

	if (!st)
		return -ENOMEM;
	if (learns) {
		rst = rte_zmalloc("pfd_resubmit_stage", sizeof(*rst), RTE_CACHE_LINE_SIZE);
		if (!rst) {
			rte_free(st);
			return -ENOMEM;
		}
		resubmit_stage = rst;
	}
	pfd_thread_slot = (int)w->slot;
	pfd_rcu_reader_enter(d, w->slot);
	while (d->running) {
		for (uint32_t i = 0; i < w->nrx; i++) {
			uint16_t dport = w->rx[i].port;
			uint32_t port = d->dpdk_to_port[dport];
			uint16_t n = rte_eth_rx_burst(dport, w->rx[i].queue, rx, PFD_BURST);
			uint64_t now;

			if (!n)
				continue;
			/* one clock read per burst: entries' last-seen stamps only need millisecond precision */
			now = pf_now_ns();
			for (uint16_t k = 0; k < n && k < PFD_PREFETCH_AHEAD; k++)
				rte_prefetch0(rte_pktmbuf_mtod(rx[k], void *));
			for (uint16_t k = 0; k < n; k++) {
				/* the headers of a later frame come in from memory while this one is processed */
				if (k + PFD_PREFETCH_AHEAD < n)
					rte_prefetch0(rte_pktmbuf_mtod(rx[k + PFD_PREFETCH_AHEAD], void *));
				run_and_stage(d, w->slot, st, port, PF_PATH_NORMAL, now, rx[k], true);
			}
			stage_flush(d, w->slot, st);
		}
		if (learns)
			handle_misses(d);
		rte_rcu_qsbr_quiescent(d->rcu, w->slot);
	}
	pfd_rcu_reader_leave(d, w->slot);
	pfd_thread_slot = -1;
	resubmit_stage = NULL;
	rte_free(rst);
	rte_free(st);
	return 0;
}

/* The learner's ops: the software table is the install target, resubmit replays the pipeline from the root. */
static int learn_install(void *backend, uint32_t pipe, const struct pf_fields *match, struct pf_entry *entry,
			 struct pf_error *err)
{
	struct pfd *d = backend;
	uint32_t plen = 0;

	if (pipe < PF_MAX_PIPES && d->pipes[pipe].cfg.type == PF_PIPE_LPM)
		plen = d->pipes[pipe].cfg.lpm_field >= PF_LPM_IPV6_DST ? 128 : 32;
	return pfd_entry_install(d, pipe, 0, plen, match, entry, err);
}

static int learn_remove(void *backend, uint32_t entry_id, struct pf_error *err)
{
	struct pfd *d = backend;
	int slot = pfd_thread_slot, ret;

	/* removal waits for every online reader, so this thread must not be one meanwhile */
	if (slot >= 0)
		pfd_rcu_reader_leave(d, (uint32_t)slot);
	ret = pfd_entry_remove(d, entry_id, err);
	if (slot >= 0)
		pfd_rcu_reader_enter(d, (uint32_t)slot);
	return ret;
}

static uint64_t learn_last_seen(void *backend, uint32_t entry_id)
{
	struct pfd *d = backend;

	return entry_id < d->max_entries ? d->entries[entry_id].last_seen_ns : 0;
}

static int learn_installed(void *backend, uint32_t pipe, const struct pf_fields *match, uint32_t entry_id)
{
	struct pfd *d = backend;
	const struct pfd_entry *e;

	if (entry_id >= d->max_entries)
		return 0;
	e = &d->entries[entry_id];
	return __atomic_load_n(&e->in_use, __ATOMIC_ACQUIRE) && e->pipe == pipe &&
	       !memcmp(&e->match, match, sizeof(*match));
}

static int learn_resubmit(void *backend, uint32_t port, uint32_t pipe, const void *frame, uint32_t len,
			  struct pf_error *err)
{
	struct pfd *d = backend;
	struct pfd_outputs out;
	struct pf_verdict v;
	struct rte_mbuf *m;
	uint32_t slot = pfd_thread_slot >= 0 ? (uint32_t)pfd_thread_slot : PFD_SLOT_HANDLER;

	if (port >= PF_MAX_PORTS || !d->ports[port].in_use)
		return pf_err(err, -ENODEV, "resubmit: port %u is not bound", port);
	m = rte_pktmbuf_alloc(d->pool);
	if (!m)
		return pf_err(err, -ENOBUFS, "resubmit: mbuf pool empty");
	if (!rte_pktmbuf_append(m, (uint16_t)len)) {
		rte_pktmbuf_free(m);
		return pf_err(err, -EMSGSIZE, "resubmit: frame of %u bytes does not fit an mbuf", len);
	}
	rte_memcpy(rte_pktmbuf_mtod(m, void *), frame, len);
	/* counted from the pipe that missed on, as on the eBPF datapath; a resubmitted frame that
	 * misses again is never handed back to the handler (no loops) */
	out.n = 0;
	pfd_pipeline_resubmit(d, slot, port, pipe, m, &out, &v);
	for (uint32_t i = 0; i < out.n; i++)
		pfd_tx(d, slot, out.ports[i], &out.mbufs[i], 1);
	return 0;
}

/* A burst of resubmits: each frame's own mbuf (the handler's, taken from the miss ring; cookie
 * points at its slot there, set to NULL once the pipeline owns it) replays the pipeline, and the
 * outputs leave as one tx burst per port instead of one per frame. */
static uint32_t learn_resubmit_batch(void *backend, const struct pf_miss_frame *frames, uint32_t n, uint32_t *failed)
{
	struct pfd *d = backend;
	struct pf_learner *l = d->learner;
	uint32_t slot = pfd_thread_slot >= 0 ? (uint32_t)pfd_thread_slot : PFD_SLOT_HANDLER, done;
	struct tx_stage *st = resubmit_stage;
	uint64_t t = 0;

	*failed = 0;
	if (!st)
		return 0;
	for (done = 0; done < n; done++) {
		const struct pf_miss_frame *fr = &frames[done];
		struct rte_mbuf **ref = fr->cookie, *m = ref ? *ref : NULL;
		struct pfd_outputs out;
		struct pf_verdict v;

		/* only a frame still in its own mbuf, on a bound port; the rest go one by one */
		if (!m || fr->port >= PF_MAX_PORTS || !d->ports[fr->port].in_use ||
		    rte_pktmbuf_mtod(m, const void *) != fr->data || rte_pktmbuf_data_len(m) != fr->len)
			break;
		*ref = NULL;
		/* as the copy a single resubmit makes: the frame's bytes, none of the rx offload state */
		m->ol_flags = 0;
		m->packet_type = 0;
		m->vlan_tci = 0;
		out.n = 0;
		pfd_pipeline_resubmit(d, slot, fr->port, fr->pipe, m, &out, &v);
		for (uint32_t i = 0; i < out.n; i++)
			stage_add(d, slot, st, out.ports[i], out.mbufs[i]);
	}
	if (l && pf_learner_profiling(l))
		t = pf_now_ns();
	stage_flush(d, slot, st);
	if (t)
		pf_learner_stage_add(l, PF_STAGE_TX, pf_now_ns() - t);
	return done;
}

const struct pf_learn_ops pfd_learn_ops = {
	.install = learn_install,
	.remove = learn_remove,
	.last_seen = learn_last_seen,
	.installed = learn_installed,
	.resubmit = learn_resubmit,
	.resubmit_batch = learn_resubmit_batch,
};

/* Without a spare lcore the one worker takes its own misses between rx bursts: a control thread
 * on a shared core wakes from its sleep only when the scheduler lets it (measured: a miss then
 * waited ~7 ms at p50 on a loaded 2-core host), while the worker polls anyway. */
static bool misses_inline(const struct pfd *d)
{
	return d->handler_lcore == RTE_MAX_LCORE;
}

/* One burst off the miss ring through the learner: one lock, one install round, then the
 * resubmits (in the frames' own mbufs where they can). Returns the frames taken. */
static unsigned int handle_misses(struct pfd *d)
{
	struct rte_mbuf *ms[PFD_BURST];
	struct pf_miss_frame frames[PFD_BURST];
	unsigned int n = rte_ring_dequeue_burst(d->miss_ring, (void **)ms, PFD_BURST, NULL), nf = 0, nleft = 0;
	uint64_t rx_ns;

	if (!n)
		return 0;
	rx_ns = pf_now_ns();
	for (unsigned int i = 0; i < n && d->learner; i++) {
		const struct pfd_mbuf_meta *meta = pfd_meta(ms[i]);

		if (rte_pktmbuf_is_contiguous(ms[i]))
			frames[nf++] = (struct pf_miss_frame){ .data = rte_pktmbuf_mtod(ms[i], void *),
							       .len = rte_pktmbuf_data_len(ms[i]),
							       .port = meta->port, .pipe = meta->pipe,
							       .packet_path = meta->packet_path,
							       .rx_ns = rx_ns, .cookie = &ms[i] };
	}
	if (nf) {
		if (pf_learner_profiling(d->learner)) {
			pf_learner_stage_batch(d->learner, nf);
			pf_learner_stage_add(d->learner, PF_STAGE_RX, pf_now_ns() - rx_ns);
		}
		pf_learner_handle_batch(d->learner, frames, nf);
	}
	/* the frames the pipeline did not take over (shed, refused, resubmitted by copy) */
	for (unsigned int i = 0; i < n; i++)
		if (ms[i])
			ms[nleft++] = ms[i];
	rte_pktmbuf_free_bulk(ms, nleft);
	return n;
}

static int handler_main(void *arg)
{
	struct pfd *d = arg;
	uint64_t next_sweep = 0;
	bool on_lcore = rte_lcore_id() != LCORE_ID_ANY, sweep_only = !on_lcore && misses_inline(d);
	struct tx_stage *st = rte_zmalloc("pfd_resubmit_stage", sizeof(*st), RTE_CACHE_LINE_SIZE);

	resubmit_stage = st;
	/* a sleeping control thread wakes within a few us, not the default 50 us of timer slack */
	if (!on_lcore)
		prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	pfd_thread_slot = PFD_SLOT_HANDLER;
	pfd_rcu_reader_enter(d, PFD_SLOT_HANDLER);
	while (d->running) {
		unsigned int n = sweep_only ? 0 : handle_misses(d);

		rte_rcu_qsbr_quiescent(d->rcu, PFD_SLOT_HANDLER);
		if (n)
			continue;
		if (d->learner) {
			uint64_t now = pf_now_ns();

			pf_learner_stages_idle(d->learner, "dpdk", now);
			if (now >= next_sweep) {
				uint64_t every = pf_learner_sweep_interval_ns(d->learner);

				if (every) {
					pfd_rcu_reader_leave(d, PFD_SLOT_HANDLER);
					pf_learner_sweep(d->learner, now);
					pfd_rcu_reader_enter(d, PFD_SLOT_HANDLER);
				}
				next_sweep = now + (every ? every : PF_LEARN_SWEEP_RECHECK_NS);
			}
		}
		/* a control thread shares a core with others: do not spin it hot (sweeping only: 1 ms) */
		if (on_lcore)
			rte_pause();
		else
			usleep(sweep_only ? 1000 : 50);
	}
	pfd_rcu_reader_leave(d, PFD_SLOT_HANDLER);
	pfd_thread_slot = -1;
	resubmit_stage = NULL;
	if (d->learner)
		pf_learner_stages_dump(d->learner, "dpdk");
	rte_free(st);
	return 0;
}

static void *handler_thread_main(void *arg)
{
	handler_main(arg);
	return NULL;
}

int pfd_lcores_start(struct pfd *d, struct pf_error *err)
{
	unsigned int lcores[RTE_MAX_LCORE], nl = 0, lc;
	uint32_t next = 0;
	int ret;

	RTE_LCORE_FOREACH_WORKER(lc)
		lcores[nl++] = lc;
	if (nl == 0)
		return pf_err(err, -EINVAL, "backend dpdk: no worker lcore; give EAL at least two cores (e.g. -l 0-1): "
			      "the main lcore stays with the controller");
	/* a spare lcore runs the miss handler; with one worker it runs on a control thread */
	d->nworkers = nl >= 2 ? nl - 1 : 1;
	if (d->nworkers > PFD_MAX_WORKERS)
		d->nworkers = PFD_MAX_WORKERS;
	d->handler_lcore = nl >= 2 ? lcores[nl - 1] : RTE_MAX_LCORE;
	for (uint32_t i = 0; i < d->nworkers; i++) {
		d->workers[i] = (struct pfd_worker){ .lcore = lcores[i], .slot = i, .inst_state = d };
	}
	ret = pfd_ports_start(d, err);
	if (ret)
		return ret;
	/* every rx queue of every port belongs to exactly one worker */
	for (uint32_t port = 0; port < PF_MAX_PORTS; port++) {
		struct pfd_port *p = &d->ports[port];

		if (!p->in_use)
			continue;
		for (uint16_t q = 0; q < p->nrxq; q++) {
			struct pfd_worker *w = &d->workers[next++ % d->nworkers];

			w->rx[w->nrx].port = p->dpdk_port;
			w->rx[w->nrx].queue = q;
			w->nrx++;
		}
	}
	d->running = true;
	rte_smp_wmb();
	for (uint32_t i = 0; i < d->nworkers; i++) {
		ret = rte_eal_remote_launch(worker_main, &d->workers[i], d->workers[i].lcore);
		if (ret) {
			pfd_lcores_stop(d);
			return pf_err(err, ret, "backend dpdk: cannot launch a worker on lcore %u: %s",
				      d->workers[i].lcore, rte_strerror(-ret));
		}
		pf_info("lcore %u: software pipes on %u rx queue(s)", d->workers[i].lcore, d->workers[i].nrx);
	}
	if (d->handler_lcore != RTE_MAX_LCORE) {
		ret = rte_eal_remote_launch(handler_main, d, d->handler_lcore);
		if (ret) {
			pfd_lcores_stop(d);
			return pf_err(err, ret, "backend dpdk: cannot launch the miss handler on lcore %u: %s",
				      d->handler_lcore, rte_strerror(-ret));
		}
		pf_info("lcore %u: miss handler", d->handler_lcore);
	} else {
		ret = rte_ctrl_thread_create(&d->handler_thread, "pfd-miss", NULL, handler_thread_main, d);
		if (ret) {
			pfd_lcores_stop(d);
			return pf_err(err, -ret, "backend dpdk: cannot start the miss handler thread: %s", strerror(ret));
		}
		d->handler_thread_running = true;
		pf_info("misses handled on the worker lcore between rx bursts (no spare lcore); sweeps on a control thread");
	}
	return 0;
}

void pfd_lcores_stop(struct pfd *d)
{
	d->running = false;
	rte_smp_wmb();
	rte_eal_mp_wait_lcore();
	if (d->handler_thread_running) {
		pthread_join(d->handler_thread, NULL);
		d->handler_thread_running = false;
	}
	for (uint32_t i = 0; i < d->nworkers; i++)
		d->workers[i].nrx = 0;
	pfd_ports_stop(d);
}
#endif
