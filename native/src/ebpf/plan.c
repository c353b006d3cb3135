// SPDX-License-Identifier: BSD-2-Clause
/*
 * What the ebpf backend installs, as JSON (pf_instance_describe): the BPF programs and where they
 * attach, the maps (name, type, key/value size, max_entries) and the entries of the tables.
 *
 * A loaded instance answers from the kernel: map info and contents are read back through bpf(),
 * attach points queried on each port. A dry instance (pyflow plan) is the loader run with nothing
 * loaded: both objects are opened and sized by libbpf as a run has them, pipes and entries go
 * through the same value and key encoding as pipe_set and entry_add (pf_ebpf_pipe_value,
 * pf_ebpf_entry_encode) and are kept in memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "ebpf/ebpf.h"
#include "ebpf/miss.h"
#include "jsonbuf.h"

#define DATAPATH_OBJ "datapath.bpf.o"
#define REPLICATE_OBJ "tc_replicate.bpf.o"

/* What a dry instance was given beyond the pipe cache and the entry slots. */
struct ebpf_plan {
	struct pf_session sessions[PF_MAX_SESSIONS];
	uint32_t root_pipe;
	uint32_t root_set;
};

static bool is_dry(const struct pf_ebpf *eb)
{
	return eb->flags & PF_INST_DRY;
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static void put_fwd(struct pf_jbuf *b, const struct pf_fwd *f)
{
	static const char *const kinds[] = { "default", "port", "pipe", "miss", "drop", "session", "kernel" };

	if (f->type == PF_FWD_PORT || f->type == PF_FWD_PIPE || f->type == PF_FWD_SESSION)
		pf_jb_put(b, "\"%s:%u\"", kinds[f->type], f->target);
	else
		pf_jb_put(b, "\"%s\"", f->type <= PF_FWD_KERNEL ? kinds[f->type] : "?");
}

/* ---- programs and attach points ---- */

static uint32_t fd_id(int fd)
{
	struct bpf_prog_info info = { 0 };
	uint32_t len = sizeof(info);

	return fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len) ? info.id : 0;
}

static const char *xdp_mode_text(uint32_t req)
{
	return req == PF_XDP_GENERIC ? "generic" : req == PF_XDP_HW ? "offload" : req == PF_XDP_DRIVER ? "native"
	       : "native, falling back to generic";
}

/* Where prog runs: every bound port (a dry instance: where start attaches it; a loaded one: where the
 * kernel says it is attached now, and in which mode). hook: "xdp", "tc ingress" or "tc egress". */
static void put_attach(struct pf_ebpf *eb, struct pf_jbuf *b, const char *hook, int prog_fd)
{
	uint32_t id = is_dry(eb) ? 0 : fd_id(prog_fd);
	bool first = true, xdp = !strcmp(hook, "xdp");

	for (uint32_t port = 0; port < PF_MAX_PORTS; port++) {
		struct pf_ebpf_port *p = &eb->ports[port];
		const char *mode = xdp ? xdp_mode_text(eb->xdp_mode_req) : NULL;

		if (!p->in_use)
			continue;
		if (!is_dry(eb)) {
			if (xdp) {
				LIBBPF_OPTS(bpf_xdp_query_opts, q);

				if (bpf_xdp_query((int)p->ifindex, 0, &q) ||
				    !(q.prog_id == id || q.drv_prog_id == id || q.skb_prog_id == id || q.hw_prog_id == id))
					continue;
				mode = q.skb_prog_id == id ? "generic" : q.hw_prog_id == id ? "offload" : "native";
			} else {
				LIBBPF_OPTS(bpf_tc_hook, h, .ifindex = (int)p->ifindex,
					    .attach_point = strcmp(hook, "tc ingress") ? BPF_TC_EGRESS : BPF_TC_INGRESS);
				LIBBPF_OPTS(bpf_tc_opts, o, .handle = PF_EBPF_TC_HANDLE, .priority = PF_EBPF_TC_PRIORITY);

				if (bpf_tc_query(&h, &o) || o.prog_id != id)
					continue;
			}
		}
		pf_jb_put(b, "%s{\"port\": %u, \"ifname\": ", first ? "" : ", ", port);
		pf_jb_str(b, p->ifname[0] ? p->ifname : NULL);
		pf_jb_put(b, ", \"hook\": \"%s\", \"mode\": ", hook);
		pf_jb_str(b, mode);
		pf_jb_put(b, "}");
		first = false;
	}
}

static void put_programs(struct pf_ebpf *eb, struct pf_jbuf *b)
{
	const struct { struct bpf_object *obj; const char *file; } objs[] = {
		{ eb->obj, DATAPATH_OBJ }, { eb->tc_obj, REPLICATE_OBJ },
	};
	struct bpf_program *prog;
	bool first = true;

	pf_jb_put(b, "\"programs\": [");
	for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++)
		bpf_object__for_each_program(prog, objs[i].obj) {
			enum bpf_prog_type type = bpf_program__type(prog);
			const char *name = bpf_program__name(prog);
			const char *hook = type == BPF_PROG_TYPE_XDP ? "xdp"
					   : strstr(name, "ingress") ? "tc ingress" : "tc egress";

			pf_jb_put(b, "%s{\"name\": \"%s\", \"object\": \"%s\", \"section\": \"%s\", \"type\": \"%s\", "
				  "\"attach\": [", first ? "" : ", ", name, objs[i].file, bpf_program__section_name(prog),
				  libbpf_bpf_prog_type_str(type));
			put_attach(eb, b, hook, is_dry(eb) ? -1 : bpf_program__fd(prog));
			pf_jb_put(b, "]}");
			first = false;
		}
	pf_jb_put(b, "]");
}

/* ---- maps ---- */

static void put_maps(struct pf_ebpf *eb, struct pf_jbuf *b)
{
	struct bpf_map *map;
	bool first = true;

	pf_jb_put(b, "\"maps\": [");
	bpf_object__for_each_map(map, eb->obj) {
		struct bpf_map_info info = { 0 };
		uint32_t len = sizeof(info);

		if (bpf_map__is_internal(map))
			continue;
		if (is_dry(eb)) {
			info.type = bpf_map__type(map);
			info.key_size = bpf_map__key_size(map);
			info.value_size = bpf_map__value_size(map);
			info.max_entries = bpf_map__max_entries(map);
			/* libbpf sizes a perf event array without max_entries by the possible CPUs when it creates it */
			if (info.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY && !info.max_entries)
				info.max_entries = (uint32_t)eb->ncpus;
		} else if (bpf_obj_get_info_by_fd(bpf_map__fd(map), &info, &len)) {
			continue;
		}
		pf_jb_put(b, "%s{\"name\": \"%s\", \"type\": \"%s\", \"key_size\": %u, \"value_size\": %u, "
			  "\"max_entries\": %u}", first ? "" : ", ", bpf_map__name(map),
			  libbpf_bpf_map_type_str((enum bpf_map_type)info.type), info.key_size, info.value_size,
			  info.max_entries);
		first = false;
	}
	pf_jb_put(b, "]");
}

/* ---- entries of the tables ---- */

struct kv {
	uint32_t order;         /* entry id, or the array key */
	uint32_t pipe;
	union {
		struct pf_flow_key fk;
		struct pf_lpm_key lk;
		uint32_t index;
	} key;
	union {
		struct pf_entry entry;
		struct pf_pipe pipe;
		struct pf_session session;
	} value;
};

static int kv_cmp(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;

	return x->order < y->order ? -1 : x->order > y->order;
}

static void put_entry_row(struct pf_jbuf *b, bool *first, const char *map, const void *key, size_t key_size,
			  const struct pf_entry *e)
{
	pf_jb_put(b, "%s{\"map\": \"%s\", \"id\": %u, \"fwd\": ", *first ? "" : ", ", map, e->id);
	put_fwd(b, &e->fwd);
	pf_jb_put(b, ", \"actions\": \"0x%x\", \"key\": ", e->act.flags);
	pf_jb_hex(b, key, key_size);
	pf_jb_put(b, ", \"value\": ");
	pf_jb_hex(b, e, sizeof(*e));
	*first = false;
}

/* The tables of exact/control entries by mask kind (ebpf.h: pf_ebpf_table_fd), then "lpm". */
static const struct {
	const char *name;
	uint8_t mkind;
} entry_tables[] = { { "port_entries", PF_MASK_PORT }, { "entries_c1", PF_MASK_PACKED1 },
		     { "entries_c", PF_MASK_PACKED }, { "entries", PF_MASK_WIDE } };

static bool slot_in_table(const struct pf_ebpf_slot *s, bool lpm, uint8_t mkind)
{
	if (lpm)
		return s->kind == PF_EBPF_SLOT_LPM;
	return s->kind == PF_EBPF_SLOT_HASH && s->mkind == mkind;
}

/* Rows of one entry table: the dry slots, or the kernel map's contents; by entry id. A
 * port_entries element in use carries PF_ENTRY_BUCKET, as entries.c writes it. */
static void put_table(struct pf_ebpf *eb, struct pf_jbuf *b, bool *first, bool lpm, uint8_t mkind, const char *name)
{
	size_t key_size = lpm ? sizeof(struct pf_lpm_key) : pf_ebpf_table_key_size(mkind);
	int fd = lpm ? eb->map_lpm : pf_ebpf_table_fd(eb, mkind);
	bool array = !lpm && mkind == PF_MASK_PORT;
	struct kv *rows = calloc(eb->max_entries ? eb->max_entries : 1, sizeof(*rows)), k;
	uint32_t n = 0, index = 0;
	void *prev = NULL;

	if (!rows) {
		b->oom = true;
		return;
	}
	if (is_dry(eb)) {
		for (uint32_t id = 0; id < eb->max_entries; id++)
			if (slot_in_table(&eb->slots[id], lpm, mkind)) {
				rows[n].order = id;
				memcpy(&rows[n].key, pf_ebpf_slot_key(&eb->slots[id]), key_size);
				rows[n].value.entry = eb->slots[id].entry;
				if (array)
					rows[n].value.entry.flags |= PF_ENTRY_BUCKET;
				n++;
			}
	} else if (array) {
		for (index = 0; index < PF_PORT_BLOCKS * PF_MAX_PORTS && n < eb->max_entries; index++) {
			if (bpf_map_lookup_elem(fd, &index, &rows[n].value.entry) ||
			    !(rows[n].value.entry.flags & PF_ENTRY_BUCKET))
				continue;
			rows[n].key.index = index;
			rows[n].order = rows[n].value.entry.id;
			n++;
		}
	} else {
		while (n < eb->max_entries && !bpf_map_get_next_key(fd, prev, &k.key)) {
			rows[n].key = k.key;
			prev = &rows[n].key;
			if (bpf_map_lookup_elem(fd, &rows[n].key, &rows[n].value.entry))
				continue;
			rows[n].order = rows[n].value.entry.id;
			n++;
		}
	}
	qsort(rows, n, sizeof(*rows), kv_cmp);
	for (uint32_t i = 0; i < n; i++) {
		const struct pf_ebpf_slot *s = rows[i].order < eb->max_entries ? &eb->slots[rows[i].order] : NULL;

		put_entry_row(b, first, name, &rows[i].key, key_size, &rows[i].value.entry);
		if (lpm) {
			pf_jb_put(b, ", \"pipe\": %u, \"prefixlen\": %u", __builtin_bswap32(rows[i].key.lk.pipe),
				  rows[i].key.lk.prefixlen - PF_LPM_PREFIX_BASE);
		} else if (s) {
			/* packed keys hold the mask slot, not the pipe: the slot table says which */
			pf_jb_put(b, ", \"pipe\": %u, \"mask_idx\": %u", s->flow_key.pipe, s->flow_key.mask_idx);
		}
		pf_jb_put(b, "}");
	}
	free(rows);
}

/* The pipe's definition as "pipes" holds it (0) or -ENOENT. */
static int pipe_row(struct pf_ebpf *eb, uint32_t pipe, struct pf_pipe *out)
{
	if (is_dry(eb))
		return pf_ebpf_pipe_get(eb, pipe, out);
	if (bpf_map_lookup_elem(eb->map_pipes, &pipe, out) || !(out->flags & PF_PIPE_IN_USE))
		return -ENOENT;
	return 0;
}

/* "hash_buckets": one row per run of buckets holding the same member */
static void put_buckets(struct pf_ebpf *eb, struct pf_jbuf *b, bool *first)
{
	for (uint32_t pipe = 0; pipe < PF_MAX_PIPES; pipe++) {
		struct pf_entry cur[PF_HASH_BUCKETS];
		struct pf_pipe pp;

		if (pipe_row(eb, pipe, &pp) || pp.type != PF_PIPE_HASH)
			continue;
		memset(cur, 0, sizeof(cur));
		for (uint32_t bk = 0; bk < PF_HASH_BUCKETS; bk++) {
			uint32_t key = pp.hash_slot * PF_HASH_BUCKETS + bk;

			if (!is_dry(eb) && bpf_map_lookup_elem(eb->map_buckets, &key, &cur[bk]))
				memset(&cur[bk], 0, sizeof(cur[bk]));
		}
		if (is_dry(eb))
			for (uint32_t id = 0; id < eb->max_entries; id++) {
				const struct pf_ebpf_slot *s = &eb->slots[id];

				if (s->kind != PF_EBPF_SLOT_BUCKET || s->pipe != pipe)
					continue;
				for (uint32_t bk = s->buckets.first; bk < s->buckets.first + s->buckets.count; bk++) {
					cur[bk] = s->entry;
					cur[bk].flags |= PF_ENTRY_BUCKET;
				}
			}
		for (uint32_t bk = 0, start = 0; bk < PF_HASH_BUCKETS; bk++) {
			uint32_t key = pp.hash_slot * PF_HASH_BUCKETS + start;

			if (bk + 1 < PF_HASH_BUCKETS && !memcmp(&cur[bk + 1], &cur[start], sizeof(cur[0])))
				continue;
			if (cur[start].flags & PF_ENTRY_BUCKET) {
				put_entry_row(b, first, "hash_buckets", &key, sizeof(key), &cur[start]);
				pf_jb_put(b, ", \"pipe\": %u, \"keys\": \"%u..%u\"}", pipe, key,
					  pp.hash_slot * PF_HASH_BUCKETS + bk);
			}
			start = bk + 1;
		}
	}
}

static void put_entries(struct pf_ebpf *eb, struct pf_jbuf *b)
{
	struct ebpf_plan *plan = eb->plan;
	bool first = true;

	pf_jb_put(b, "\"entries\": [");
	for (uint32_t pipe = 0; pipe < PF_MAX_PIPES; pipe++) {
		struct pf_pipe pp;

		if (pipe_row(eb, pipe, &pp))
			continue;
		pf_jb_put(b, "%s{\"map\": \"pipes\", \"pipe\": %u, \"type\": %u, \"key\": ", first ? "" : ", ", pipe,
			  pp.type);
		pf_jb_hex(b, &pipe, sizeof(pipe));
		pf_jb_put(b, ", \"value\": ");
		pf_jb_hex(b, &pp, sizeof(pp));
		pf_jb_put(b, "}");
		first = false;
	}
	for (size_t t = 0; t < sizeof(entry_tables) / sizeof(entry_tables[0]); t++)
		put_table(eb, b, &first, false, entry_tables[t].mkind, entry_tables[t].name);
	put_table(eb, b, &first, true, 0, "lpm");
	put_buckets(eb, b, &first);
	for (uint32_t id = 0; id < PF_MAX_SESSIONS; id++) {
		struct pf_session s = { 0 };

		if (plan)
			s = plan->sessions[id];
		else if (bpf_map_lookup_elem(eb->map_sessions, &id, &s))
			continue;
		if (all_zero(&s, sizeof(s)))
			continue;
		pf_jb_put(b, "%s{\"map\": \"sessions\", \"session\": %u, \"members\": %u, \"key\": ", first ? "" : ", ",
			  id, s.nmembers);
		pf_jb_hex(b, &id, sizeof(id));
		pf_jb_put(b, ", \"value\": ");
		pf_jb_hex(b, &s, sizeof(s));
		pf_jb_put(b, "}");
		first = false;
	}
	pf_jb_put(b, "]");
}

int pf_ebpf_describe(pf_instance *inst, char *buf, uint32_t len, uint32_t *needed, struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);
	struct pf_jbuf b = { 0 };

	pthread_mutex_lock(&eb->lock);
	pf_jb_put(&b, "{\"dry\": %s, \"pin_dir\": ", is_dry(eb) ? "true" : "false");
	pf_jb_str(&b, eb->flags & PF_INST_NO_PIN ? NULL : eb->pin_dir);
	pf_jb_put(&b, ", ");
	put_programs(eb, &b);
	pf_jb_put(&b, ", ");
	put_maps(eb, &b);
	pf_jb_put(&b, ", ");
	put_entries(eb, &b);
	pf_jb_put(&b, "}");
	pthread_mutex_unlock(&eb->lock);
	return pf_jb_finish(&b, buf, len, needed, err);
}

/* ---- a dry instance ---- */

static int dry_open(pf_instance *inst, const struct pf_instance_opts *opts, struct pf_error *err)
{
	struct pf_ebpf *eb;
	int ret = pf_backend_ebpf.open(inst, opts, err);

	if (ret)
		return ret;
	eb = pf_ebpf_of(inst);
	/* no map exists: a stray lookup must fail, never reach fd 0 */
	eb->map_config = eb->map_pipes = eb->map_pipe_masks = eb->map_entries = eb->map_lpm = eb->map_buckets = -1;
	eb->map_mask_keys = eb->map_port_entries = eb->map_entries_c = eb->map_entries_c1 = -1;
	eb->map_ports = eb->map_ifindex = eb->map_tx = eb->map_xsks = eb->map_entry_counters = -1;
	eb->map_entry_seen = eb->map_pipe_counters = eb->map_port_counters = eb->map_verdict = -1;
	eb->map_sessions = eb->map_miss_limits = eb->map_miss_buckets = eb->map_group_ports = -1;
	eb->tc_ingress_fd = eb->tc_egress_fd = -1;
	eb->plan = calloc(1, sizeof(struct ebpf_plan));
	if (!eb->plan) {
		pf_backend_ebpf.close(inst);
		return pf_err(err, -ENOMEM, "out of memory");
	}
	return 0;
}

static void dry_close(pf_instance *inst)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);

	if (eb) {
		free(eb->plan);
		eb->plan = NULL;
	}
	pf_backend_ebpf.close(inst);
}

static int dry_info(pf_instance *inst, struct pf_instance_info *info, struct pf_error *err)
{
	memset(info, 0, sizeof(*info));
	return 0;
}

static int dry_start(pf_instance *inst, struct pf_error *err)
{
	struct ebpf_plan *plan = pf_ebpf_of(inst)->plan;

	if (!plan->root_set)
		return pf_err(err, -EINVAL, "%s: no root pipe set", inst->name);
	return 0;
}

static int dry_stop(pf_instance *inst, struct pf_error *err)
{
	return 0;
}

/* An interface that does not exist (yet) is planned by name. */
static int dry_port_set(pf_instance *inst, uint32_t port_id, const char *binding, const struct pf_port *port,
			struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);
	struct pf_ebpf_port *p = &eb->ports[port_id];

	if (port && (port->flags & PF_PORT_EGRESS_PIPE) && port->egress_pipe >= PF_MAX_PIPES)
		return pf_err(err, -ERANGE, "port %u: egress pipe %u out of range", port_id, port->egress_pipe);
	for (uint32_t other = 0; binding && *binding && other < PF_MAX_PORTS; other++)
		if (other != port_id && eb->ports[other].in_use && !strcmp(eb->ports[other].ifname, binding))
			return pf_err(err, -EEXIST, "port %u: interface '%s' is already port %u", port_id, binding,
				      other);
	p->in_use = 1;
	p->ifindex = binding && *binding ? if_nametoindex(binding) : 0;
	snprintf(p->ifname, sizeof(p->ifname), "%s", binding ? binding : "");
	return 0;
}

static int dry_pipe_set(pf_instance *inst, uint32_t pipe_id, const struct pf_pipe *pipe, const struct pf_fields *masks,
			uint32_t nmasks, struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);
	struct pf_mask_key mkeys[PF_MAX_MASKS];
	struct pf_pipe val;
	int ret;

	if (!pipe)
		return pf_err(err, -EINVAL, "pipe %u: no definition given", pipe_id);
	ret = pf_ebpf_pipe_value(eb, pipe_id, pipe, nmasks, &val, err);
	if (ret)
		return ret;
	pf_ebpf_mask_keys_plan(eb, pipe_id, masks, nmasks, mkeys);
	pf_ebpf_pipe_cache_store(eb, pipe_id, &val, masks, mkeys, nmasks);
	return 0;
}

static int dry_root_set(pf_instance *inst, uint32_t pipe_id, struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);
	struct ebpf_plan *plan = eb->plan;
	struct pf_pipe pipe;

	if (pf_ebpf_pipe_get(eb, pipe_id, &pipe))
		return pf_err(err, -ENOENT, "root pipe %u is not defined", pipe_id);
	plan->root_pipe = pipe_id;
	plan->root_set = 1;
	return 0;
}

static int dry_session_set(pf_instance *inst, uint32_t session_id, const struct pf_session *s, struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);

	if (!s || s->nmembers > PF_MAX_SESSION_MEMBERS)
		return pf_err(err, -ERANGE, "session %u: %u members, at most %u", session_id, s ? s->nmembers : 0,
			      PF_MAX_SESSION_MEMBERS);
	for (uint32_t i = 0; i < s->nmembers; i++)
		if (s->members[i].port >= PF_MAX_PORTS || (s->members[i].in_use && !eb->ports[s->members[i].port].in_use))
			return pf_err(err, -ENODEV, "session %u: member %u: port %u is not bound", session_id, i,
				      s->members[i].port);
	((struct ebpf_plan *)eb->plan)->sessions[session_id] = *s;
	return 0;
}

/* The id an install gives: the existing entry's for a key already there, else the next free slot. */
static int dry_entry_add(pf_instance *inst, uint32_t pipe_id, uint32_t mask_idx, uint32_t prefixlen,
			 const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);
	struct pf_ebpf_slot slot;
	uint32_t id = UINT32_MAX;
	int ret = pf_ebpf_entry_encode(eb, pipe_id, mask_idx, prefixlen, match, entry, &slot, err);

	if (ret)
		return ret;
	for (uint32_t i = 0; i < eb->max_entries && slot.kind != PF_EBPF_SLOT_BUCKET && id == UINT32_MAX; i++) {
		const struct pf_ebpf_slot *s = &eb->slots[i];

		if (s->kind == slot.kind && (slot.kind == PF_EBPF_SLOT_HASH
					     ? !memcmp(&s->flow_key, &slot.flow_key, sizeof(slot.flow_key))
					     : !memcmp(&s->lpm_key, &slot.lpm_key, sizeof(slot.lpm_key))))
			id = i;
	}
	for (uint32_t n = 0; n < eb->max_entries && id == UINT32_MAX; n++) {
		uint32_t i = (eb->next_id + n) % eb->max_entries;

		if (eb->slots[i].kind == PF_EBPF_SLOT_FREE) {
			id = i;
			eb->next_id = (i + 1) % eb->max_entries;
		}
	}
	if (id == UINT32_MAX)
		return pf_err(err, -ENOSPC, "pipe %u: entry table full (%u entries)", pipe_id, eb->max_entries);
	entry->id = id;
	slot.entry = *entry;
	eb->slots[id] = slot;
	return 0;
}

static int dry_entry_del(pf_instance *inst, uint32_t entry_id, struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);

	if (entry_id >= eb->max_entries || eb->slots[entry_id].kind == PF_EBPF_SLOT_FREE)
		return pf_err(err, -ENOENT, "entry %u does not exist", entry_id);
	eb->slots[entry_id].kind = PF_EBPF_SLOT_FREE;
	return 0;
}

const struct pf_backend_ops pf_backend_ebpf_dry = {
	.name = "ebpf",
	.open = dry_open,
	.close = dry_close,
	.info = dry_info,
	.start = dry_start,
	.stop = dry_stop,
	.destroy = dry_stop,
	.port_set = dry_port_set,
	.pipe_set = dry_pipe_set,
	.root_set = dry_root_set,
	.session_set = dry_session_set,
	.entry_add = dry_entry_add,
	.entry_del = dry_entry_del,
	.describe = pf_ebpf_describe,
};
