// SPDX-License-Identifier: BSD-2-Clause
/*
 * Will XDP_REDIRECT into this veth deliver? The veth driver drops redirected
 * frames unless the peer device runs an XDP program or has GRO enabled (either
 * gives the peer the NAPI context that receives them). The peer is found
 * through the veth's "peer_ifindex" ethtool statistic, in this namespace or
 * in one of the named namespaces under /run/netns.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <bpf/libbpf.h>
#include "ebpf/ebpf.h"

static int ethtool(int sock, const char *ifname, void *cmd)
{
	struct ifreq ifr = { 0 };

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = cmd;
	return ioctl(sock, SIOCETHTOOL, &ifr) ? -errno : 0;
}

static int is_veth(int sock, const char *ifname)
{
	struct ethtool_drvinfo info = { .cmd = ETHTOOL_GDRVINFO };

	return !ethtool(sock, ifname, &info) && !strcmp(info.driver, "veth");
}

/* The veth's "peer_ifindex" statistic, 0 if unknown. */
static uint32_t peer_ifindex(int sock, const char *ifname)
{
	struct ethtool_drvinfo info = { .cmd = ETHTOOL_GDRVINFO };
	struct ethtool_gstrings *names = NULL;
	struct ethtool_stats *stats = NULL;
	uint32_t n, found = 0;

	if (ethtool(sock, ifname, &info) || !info.n_stats)
		return 0;
	n = info.n_stats;
	names = calloc(1, sizeof(*names) + (size_t)n * ETH_GSTRING_LEN);
	stats = calloc(1, sizeof(*stats) + (size_t)n * sizeof(uint64_t));
	if (!names || !stats)
		goto out;
	names->cmd = ETHTOOL_GSTRINGS;
	names->string_set = ETH_SS_STATS;
	names->len = n;
	stats->cmd = ETHTOOL_GSTATS;
	stats->n_stats = n;
	if (ethtool(sock, ifname, names) || ethtool(sock, ifname, stats))
		goto out;
	for (uint32_t i = 0; i < n; i++)
		if (!strncmp((char *)names->data + i * ETH_GSTRING_LEN, "peer_ifindex", ETH_GSTRING_LEN)) {
			found = (uint32_t)stats->data[i];
			break;
		}
out:
	free(names);
	free(stats);
	return found;
}

struct peer_probe {
	const char *netns;      /* NULL: the caller's namespace */
	uint32_t peer;          /* ifindex of the peer in its namespace */
	uint32_t self;          /* our ifindex: the peer's own peer_ifindex must point back */
	int found;
	int has_xdp;
	int has_gro;
	char name[IF_NAMESIZE];
};

static void *probe_peer(void *arg)
{
	struct peer_probe *p = arg;
	struct ethtool_value gro = { .cmd = ETHTOOL_GGRO };
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	int sock;

	if (p->netns) {
		char path[PATH_MAX];
		int fd;

		snprintf(path, sizeof(path), "/run/netns/%s", p->netns);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		/* setns changes only this thread's namespace */
		if (fd < 0 || setns(fd, CLONE_NEWNET)) {
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		close(fd);
	}
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return NULL;
	if (if_indextoname(p->peer, p->name) && is_veth(sock, p->name) && peer_ifindex(sock, p->name) == p->self) {
		p->found = 1;
		p->has_gro = !ethtool(sock, p->name, &gro) && gro.data;
		p->has_xdp = !bpf_xdp_query(p->peer, 0, &q) && q.attach_mode != XDP_ATTACHED_NONE;
	}
	close(sock);
	return NULL;
}

static int probe_in(struct peer_probe *p)
{
	pthread_t t;

	if (pthread_create(&t, NULL, probe_peer, p))
		return -EAGAIN;
	pthread_join(t, NULL);
	return 0;
}

int pf_ebpf_veth_peer_check(const char *ifname, char *reason, size_t reason_len)
{
	struct peer_probe p = { 0 };
	int sock, ret = 0;
	DIR *d;

	if (reason && reason_len)
		reason[0] = 0;
	p.self = if_nametoindex(ifname);
	if (!p.self)
		return -ENODEV;
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	if (!is_veth(sock, ifname)) {
		close(sock);
		return 0;
	}
	p.peer = peer_ifindex(sock, ifname);
	close(sock);
	if (!p.peer)
		return -ENOENT;
	probe_in(&p);
	d = p.found ? NULL : opendir("/run/netns");
	while (d && !p.found) {
		struct dirent *de = readdir(d);

		if (!de)
			break;
		if (de->d_name[0] == '.')
			continue;
		p.netns = de->d_name;
		probe_in(&p);
	}
	if (p.found && !p.has_xdp && !p.has_gro) {
		if (reason && reason_len)
			snprintf(reason, reason_len,
				 "%s: its veth peer %s%s%s has no XDP program and GRO off, so frames redirected into "
				 "%s are dropped; attach one there (e.g. xdp_pass.bpf.o) or enable GRO",
				 ifname, p.name, p.netns ? " in netns " : "", p.netns ? p.netns : "", ifname);
		ret = 1;
	} else if (!p.found) {
		ret = -ENOENT;
	}
	if (d)
		closedir(d);
	return ret;
}
