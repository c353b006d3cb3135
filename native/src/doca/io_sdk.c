// SPDX-License-Identifier: BSD-2-Clause
/*
 * Packet I/O of the doca backend on hardware: the DOCA ports are DPDK ethdev
 * ports (started with -a PCI / -r representor devargs on the EAL line), so the
 * RSS queues are read with rte_eth_rx_burst and a resubmitted frame is sent
 * with rte_eth_tx_burst carrying its pkt_meta in the mbuf's metadata dynfield
 * (rte_flow_dynf_metadata), which DOCA Flow matches as meta.pkt_meta.
 * Compiled only with the SDK; never run on hardware by this project (docs/doca.md).
 */
#ifdef PF_HAVE_DOCA_SDK
#include <string.h>
#include <rte_ethdev.h>
#include <rte_flow.h>
#include <rte_mbuf.h>
#include "doca.h"

#include <rte_eal.h>
#include <rte_errno.h>

static struct rte_mempool *tx_pool;

/* The EAL of the DOCA ports: the arguments after -- (e.g. -a 0000:03:00.0,dv_flow_en=2 -a ...,representor=vf0). */
int pfdoca_sdk_eal_init(int argc, char **argv, struct pf_error *err)
{
	static int done;
	char *dflt[] = { "pyflow", NULL };

	if (done)
		return 0;
	if (argc <= 0 || !argv) {
		argc = 1;
		argv = dflt;
	}
	if (rte_eal_init(argc, argv) < 0)
		return pf_err(err, -rte_errno, "backend doca: rte_eal_init failed: %s (check the EAL arguments after --)",
			      rte_strerror(rte_errno));
	done = 1;
	return 0;
}

uint16_t pfdoca_sdk_rx_burst(uint16_t port_id, uint16_t queue, struct docasim_pkt *pkts, uint16_t n)
{
	struct rte_mbuf *m[64];
	uint16_t got, i;

	if (n > 64)
		n = 64;
	got = rte_eth_rx_burst(port_id, queue, m, n);
	for (i = 0; i < got; i++) {
		uint32_t len = rte_pktmbuf_pkt_len(m[i]) < pkts[i].cap ? rte_pktmbuf_pkt_len(m[i]) : pkts[i].cap;
		const void *p = rte_pktmbuf_read(m[i], 0, len, pkts[i].data);

		if (p && p != pkts[i].data)
			memcpy(pkts[i].data, p, len);
		pkts[i].len = len;
		pkts[i].port_id = m[i]->port;
		pkts[i].mark = (m[i]->ol_flags & RTE_MBUF_F_RX_FDIR_ID) ? m[i]->hash.fdir.hi : 0;
		rte_pktmbuf_free(m[i]);
	}
	return got;
}

uint16_t pfdoca_sdk_tx_burst(uint16_t port_id, uint16_t queue, const struct docasim_pkt *pkts, uint16_t n)
{
	struct rte_mbuf *m[64];
	uint16_t i, sent;

	if (!tx_pool) {
		if (rte_flow_dynf_metadata_register() < 0)
			return 0;
		tx_pool = rte_pktmbuf_pool_create("pfdoca_tx", 4095, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
		if (!tx_pool)
			return 0;
	}
	if (n > 64)
		n = 64;
	for (i = 0; i < n; i++) {
		m[i] = rte_pktmbuf_alloc(tx_pool);
		if (!m[i] || !rte_pktmbuf_append(m[i], (uint16_t)pkts[i].len))
			break;
		memcpy(rte_pktmbuf_mtod(m[i], void *), pkts[i].data, pkts[i].len);
		*RTE_FLOW_DYNF_METADATA(m[i]) = pkts[i].pkt_meta;
		m[i]->ol_flags |= RTE_MBUF_DYNFLAG_TX_METADATA;
	}
	sent = rte_eth_tx_burst(port_id, queue, m, i);
	for (uint16_t k = sent; k < i; k++)
		rte_pktmbuf_free(m[k]);
	return sent;
}

int pfdoca_sdk_port_stats(uint16_t port_id, struct docasim_port_stats *st)
{
	struct rte_eth_stats s;
	int ret = rte_eth_stats_get(port_id, &s);

	if (ret)
		return ret;
	st->ipackets = s.ipackets;
	st->ibytes = s.ibytes;
	st->opackets = s.opackets;
	st->obytes = s.obytes;
	st->imissed = s.imissed;
	return 0;
}
#endif
