/* SPDX-License-Identifier: BSD-2-Clause */
/* State of one ebpf-backend instance, shared by the loader and the miss path. */
#ifndef PYFLOW_EBPF_H
#define PYFLOW_EBPF_H

#include <bpf/libbpf.h>
#include "internal.h"

struct pf_ebpf_port {
	uint32_t in_use;
	uint32_t ifindex;
	char ifname[32];
};

struct pf_ebpf {
	pf_instance *inst;
	struct bpf_object *obj;
	int prog_fd;                    /* XDP root program (also the resubmit target) */
	int map_entries;                /* fds of the pinned maps */
	int map_xsks;
	int map_entry_seen;
	struct pf_ebpf_port ports[PF_MAX_PORTS];
	char pin_dir[256];
	void *miss;                     /* owned by miss/ebpf_miss.c */
};

/* install / remove an entry in a pipe (used by the control API and the miss handler) */
int pf_ebpf_entry_install(struct pf_ebpf *eb, uint32_t pipe, uint32_t mask_idx, uint32_t prefixlen,
			  const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err);
int pf_ebpf_entry_remove(struct pf_ebpf *eb, uint32_t entry_id, struct pf_error *err);
uint64_t pf_ebpf_entry_last_seen(struct pf_ebpf *eb, uint32_t entry_id);

#endif
