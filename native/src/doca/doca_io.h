/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What the doca backend needs beside DOCA Flow: packet I/O on the ports' queues
 * (on hardware DPDK's ethdev: rte_eth_rx_burst / rte_eth_tx_burst / rte_eth_stats_get
 * on the DOCA ports) and, on the simulator only, running one frame synchronously
 * (pf_test_run) and dumping the pipes it holds. A DOCA Flow stand-in loaded
 * with PYFLOW_DOCA_SIM exports these under the docasim_ names below.
 */
#ifndef PYFLOW_DOCA_IO_H
#define PYFLOW_DOCA_IO_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

/* One frame on a queue. rx: data points at the caller's buffer of cap bytes. */
struct docasim_pkt {
	uint8_t *data;
	uint32_t len;
	uint32_t cap;
	uint16_t port_id;       /* rx: the port the frame entered the switch on */
	uint16_t _pad;
	uint32_t mark;          /* rx: meta.mark set by the pipes (the mbuf's FDIR id on DPDK) */
	uint32_t pkt_meta;      /* tx: meta.pkt_meta the frame carries into the pipes (DPDK metadata dynfield) */
};

struct docasim_port_stats {
	uint64_t ipackets, ibytes, opackets, obytes, imissed;
};

enum docasim_verdict {
	DOCASIM_TX = 0,         /* left on port */
	DOCASIM_DROP = 1,
	DOCASIM_RSS = 2,        /* reached an RSS queue */
};

struct docasim_result {
	uint32_t verdict;       /* enum docasim_verdict */
	uint32_t port_id;       /* TX: out port; RSS: the queue's port */
	uint32_t queue;         /* RSS */
	uint32_t out_len;
	uint32_t mark;
	uint32_t hops;          /* pipes visited */
	void *last_entry_ctx;   /* usr_ctx of the last entry hit, NULL if none */
	uint32_t mirrored;      /* copies sent to mirror targets on the way */
};

#define DOCASIM_INJECT_NO_QUEUE 1u      /* RSS: report, do not enqueue */

uint16_t docasim_rx_burst(uint16_t port_id, uint16_t queue, struct docasim_pkt *pkts, uint16_t n);
uint16_t docasim_tx_burst(uint16_t port_id, uint16_t queue, const struct docasim_pkt *pkts, uint16_t n);
int docasim_port_stats(uint16_t port_id, struct docasim_port_stats *st);
/* a frame as received from the wire on port_id, through the pipes, now, in the caller's thread */
int docasim_inject(uint16_t port_id, const void *frame, uint32_t len, uint32_t flags, void *out, uint32_t out_cap,
		   struct docasim_result *res);
/* the pipes and entries the simulator holds, as JSON (same schema as the backend's graph) */
int docasim_dump_json(char *buf, size_t len);
/* calls made out of the documented order that return nothing to refuse with (doca_flow_destroy) */
uint64_t docasim_violations(void);
/* move the simulator's clock (which ages entries) on by ns, so tests need not sleep */
void docasim_clock_advance(uint64_t ns);
/* entry adds without DOCA_FLOW_WAIT_FOR_BATCH (each pushes its queue), and doca_flow_entries_process calls */
void docasim_queue_stats(uint64_t *pushes, uint64_t *process_calls);
/* while paused, docasim_rx_burst returns nothing: frames queue up and are read as one burst after */
void docasim_rx_pause(bool paused);
/* why the last call failed, in the simulator's words */
const char *docasim_last_error(void);

#endif
