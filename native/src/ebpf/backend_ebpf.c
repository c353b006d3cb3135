// SPDX-License-Identifier: BSD-2-Clause
/*
 * The ebpf backend: load datapath.bpf.o with libbpf, pin or re-adopt its maps
 * under <pin_root>/<name>/, keep the maps in step with the model, attach XDP
 * to the bound ports, read per-CPU counters, run frames with BPF_PROG_RUN.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "ebpf/ebpf.h"
#include "pyflow/packet.h"
#include "ebpf/miss.h"

#define DATAPATH_OBJ "datapath.bpf.o"
#define DATAPATH_PROG "pf_xdp_root"
#define REPLICATE_OBJ "tc_replicate.bpf.o"
#define TC_HANDLE PF_EBPF_TC_HANDLE
#define TC_PRIORITY PF_EBPF_TC_PRIORITY
#define DEFAULT_PIN_ROOT "/sys/fs/bpf/pyflow"

struct pf_ebpf *pf_ebpf_from_instance(pf_instance *inst)
{
	return inst && inst->ops == &pf_backend_ebpf ? inst->priv : NULL;
}

/* ---- libbpf's messages go to the one log path, under --sdk-log-level ---- */

static int libbpf_to_pf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	int pf_level = level == LIBBPF_WARN ? PF_LOG_WARNING : level == LIBBPF_INFO ? PF_LOG_INFO : PF_LOG_DEBUG;
	char buf[1024];
	size_t n;

	if (!pf_log_sdk_enabled(pf_level))
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = 0;
	if (n)
		pf_log_sdk(pf_level, "libbpf: %s", buf);
	return 0;
}

static pthread_once_t libbpf_print_once = PTHREAD_ONCE_INIT;

static void libbpf_print_setup(void)
{
	libbpf_set_print(libbpf_to_pf_log);
}

static int map_fd(struct pf_ebpf *eb, const char *name, struct pf_error *err)
{
	struct bpf_map *m = bpf_object__find_map_by_name(eb->obj, name);
	int fd = m ? bpf_map__fd(m) : -1;

	if (fd < 0)
		return pf_err(err, -ENOENT, "%s: map '%s' missing from " DATAPATH_OBJ, eb->inst->name, name);
	return fd;
}

static void ports_adopt(struct pf_ebpf *eb)
{
	for (uint32_t id = 0; id < PF_MAX_PORTS; id++) {
		struct pf_port port;

		if (bpf_map_lookup_elem(eb->map_ports, &id, &port) || !(port.flags & PF_PORT_IN_USE))
			continue;
		eb->ports[id].in_use = 1;
		eb->ports[id].ifindex = port.ifindex;
		if (!if_indextoname(port.ifindex, eb->ports[id].ifname))
			snprintf(eb->ports[id].ifname, sizeof(eb->ports[id].ifname), "ifindex %u", port.ifindex);
	}
}

/* ---- backend ops ---- */

static void ebpf_free(struct pf_ebpf *eb)
{
	if (!eb)
		return;
	pf_ebpf_capture_release(eb);    /* its thread reads the maps */
	pf_ebpf_miss_free(eb);          /* threads joined and XSKMAP slots cleared while the maps are open */
	bpf_object__close(eb->tc_obj);
	bpf_object__close(eb->obj);
	free(eb->slots);
	free(eb->id_dirty);
	free(eb->index_head);
	free(eb->index_next);
	pthread_mutex_destroy(&eb->lock);
	pthread_mutex_destroy(&eb->pipe_lock);
	free(eb);
}

static const char *const sized_maps[] = { "entries", "entries_c", "entries_c1", "lpm", "entry_counters", "entry_seen" };

/* The TC clone programs run on the XDP object's maps: hand every map fd over before loading. */
static int replicate_load(struct pf_ebpf *eb, const char *obj_dir, struct pf_error *err)
{
	struct bpf_program *in, *out;
	struct bpf_map *map;
	char path[PATH_MAX];
	int ret;

	snprintf(path, sizeof(path), "%s/%s", obj_dir, REPLICATE_OBJ);
	eb->tc_obj = bpf_object__open_file(path, NULL);
	if (!eb->tc_obj) {
		ret = -errno;
		return pf_err(err, ret, "cannot open %s: %s", path, strerror(-ret));
	}
	if (eb->flags & PF_INST_DRY)
		return 0;
	bpf_object__for_each_map(map, eb->tc_obj) {
		struct bpf_map *same;

		if (bpf_map__is_internal(map))
			continue;
		same = bpf_object__find_map_by_name(eb->obj, bpf_map__name(map));
		if (!same || bpf_map__fd(same) < 0 || bpf_map__reuse_fd(map, bpf_map__fd(same)))
			return pf_err(err, -ENOENT, "%s: map '%s' of " REPLICATE_OBJ " is not in " DATAPATH_OBJ,
				      eb->inst->name, bpf_map__name(map));
	}
	ret = bpf_object__load(eb->tc_obj);
	if (ret)
		return pf_err(err, ret, "%s: cannot load %s: %s; run with log level DEBUG for the verifier log",
			      eb->inst->name, REPLICATE_OBJ, strerror(-ret));
	in = bpf_object__find_program_by_name(eb->tc_obj, "pf_tc_ingress");
	out = bpf_object__find_program_by_name(eb->tc_obj, "pf_tc_egress");
	eb->tc_ingress_fd = in ? bpf_program__fd(in) : -1;
	eb->tc_egress_fd = out ? bpf_program__fd(out) : -1;
	if (eb->tc_ingress_fd < 0 || eb->tc_egress_fd < 0)
		return pf_err(err, -ENOENT, "%s: programs missing from " REPLICATE_OBJ, eb->inst->name);
	return 0;
}

static int ebpf_load(pf_instance *inst, const struct pf_instance_opts *opts, const char *pin_root,
		     struct pf_error *err)
{
	struct pf_ebpf *eb;
	struct bpf_map *map;
	char path[PATH_MAX];
	int ret;

	eb = calloc(1, sizeof(*eb));
	if (!eb)
		return pf_err(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&eb->lock, NULL);
	pthread_mutex_init(&eb->pipe_lock, NULL);
	eb->inst = inst;
	eb->prog_fd = -1;
	eb->flags = opts->flags;
	eb->miss_threads = opts->miss_threads;
	eb->xdp_mode_req = opts->xdp_mode;
	eb->max_entries = opts->max_entries ? opts->max_entries : PF_DEFAULT_MAX_ENTRIES;
	eb->nqueues = 1;
	snprintf(eb->pin_dir, sizeof(eb->pin_dir), "%s/%s", pin_root, inst->name);
	eb->ncpus = libbpf_num_possible_cpus();
	if (eb->ncpus <= 0) {
		ebpf_free(eb);
		return pf_err(err, -EIO, "cannot count possible CPUs");
	}
	eb->slots = calloc(eb->max_entries, sizeof(*eb->slots));
	eb->id_dirty = calloc(eb->max_entries, 1);
	if (!eb->slots || !eb->id_dirty || pf_ebpf_index_alloc(eb)) {
		ebpf_free(eb);
		return pf_err(err, -ENOMEM, "%s: out of memory for %u entries", inst->name, eb->max_entries);
	}

	snprintf(path, sizeof(path), "%s/%s", opts->obj_dir, DATAPATH_OBJ);
	eb->obj = bpf_object__open_file(path, NULL);
	if (!eb->obj) {
		ret = -errno;
		eb->obj = NULL;
		ebpf_free(eb);
		return pf_err(err, ret, "cannot open %s: %s", path, strerror(-ret));
	}
	for (size_t i = 0; i < sizeof(sized_maps) / sizeof(sized_maps[0]); i++) {
		map = bpf_object__find_map_by_name(eb->obj, sized_maps[i]);
		if (map)
			bpf_map__set_max_entries(map, eb->max_entries);
	}
	if (eb->flags & PF_INST_DRY) {
		/* the plan: both objects opened and sized as a run has them; nothing loaded or pinned */
		ret = replicate_load(eb, opts->obj_dir, err);
		if (ret) {
			ebpf_free(eb);
			return ret;
		}
		inst->priv = eb;
		return 0;
	}

	if (!(eb->flags & PF_INST_NO_PIN)) {
		snprintf(path, sizeof(path), "%s/config", eb->pin_dir);
		eb->adopted = access(path, F_OK) == 0;
		bpf_object__for_each_map(map, eb->obj) {
			if (bpf_map__is_internal(map))
				continue;
			snprintf(path, sizeof(path), "%s/%s", eb->pin_dir, bpf_map__name(map));
			bpf_map__set_pin_path(map, path);
			/* the kernel adds BPF_F_RDONLY_PROG to every DEVMAP, so libbpf 1.1's
			 * compatibility check refuses its pin: reuse it explicitly */
			if (eb->adopted && bpf_map__type(map) == BPF_MAP_TYPE_DEVMAP) {
				int pinned = bpf_obj_get(path);

				if (pinned >= 0) {
					bpf_map__reuse_fd(map, pinned);
					close(pinned);
				}
			}
		}
	}

	ret = bpf_object__load(eb->obj);
	if (ret) {
		ebpf_free(eb);
		if (ret == -EINVAL && !(opts->flags & (PF_INST_NO_PIN | PF_INST_FRESH)))
			return pf_err(err, ret, "%s: cannot load the datapath: pinned state in %s does not match "
				      "(changed max_entries or an older build?); start fresh to replace it",
				      inst->name, pin_root);
		return pf_err(err, ret, "%s: cannot load the datapath (%s): %s; run with log level DEBUG for the "
			      "verifier log", inst->name, DATAPATH_OBJ, strerror(-ret));
	}
	eb->prog = bpf_object__find_program_by_name(eb->obj, DATAPATH_PROG);
	eb->prog_fd = eb->prog ? bpf_program__fd(eb->prog) : -1;
	if (eb->prog_fd < 0) {
		ebpf_free(eb);
		return pf_err(err, -ENOENT, "%s: program " DATAPATH_PROG " missing from " DATAPATH_OBJ, inst->name);
	}

#define MAP_FD(field, name)                                  \
	do {                                                 \
		if ((eb->field = map_fd(eb, name, err)) < 0) { \
			ret = eb->field;                     \
			ebpf_free(eb);                       \
			return ret;                          \
		}                                            \
	} while (0)
	MAP_FD(map_config, "config");
	MAP_FD(map_pipes, "pipes");
	MAP_FD(map_pipe_masks, "pipe_masks");
	MAP_FD(map_entries, "entries");
	MAP_FD(map_entries_c, "entries_c");
	MAP_FD(map_entries_c1, "entries_c1");
	MAP_FD(map_mask_keys, "mask_keys");
	MAP_FD(map_port_entries, "port_entries");
	MAP_FD(map_lpm, "lpm");
	MAP_FD(map_buckets, "hash_buckets");
	MAP_FD(map_ports, "ports");
	MAP_FD(map_ifindex, "ifindex_port");
	MAP_FD(map_tx, "tx_ports");
	MAP_FD(map_xsks, "xsks");
	MAP_FD(map_entry_counters, "entry_counters");
	MAP_FD(map_entry_seen, "entry_seen");
	MAP_FD(map_pipe_counters, "pipe_counters");
	MAP_FD(map_port_counters, "port_counters");
	MAP_FD(map_verdict, "verdict");
	MAP_FD(map_sessions, "sessions");
	MAP_FD(map_group_ports, "group_ports");
	MAP_FD(map_miss_limits, "miss_limits");
	MAP_FD(map_miss_buckets, "miss_buckets");
#undef MAP_FD

	ret = replicate_load(eb, opts->obj_dir, err);
	if (ret) {
		ebpf_free(eb);
		return ret;
	}

	if (!(eb->flags & PF_INST_NO_PIN)) {
		/* the program too, so bpftool shows what runs on the ports */
		snprintf(path, sizeof(path), "%s/prog", eb->pin_dir);
		unlink(path);
		if (bpf_program__pin(eb->prog, path))
			pf_warn("%s: cannot pin the program at %s: %s", inst->name, path, strerror(errno));
	}

	if (eb->adopted) {
		struct pf_config cfg;
		uint32_t zero = 0;

		if (!bpf_map_lookup_elem(eb->map_config, &zero, &cfg) && cfg.nqueues)
			eb->nqueues = cfg.nqueues;
		/* pinned counters may hold values of entries deleted before the restart */
		memset(eb->id_dirty, 1, eb->max_entries);
		ports_adopt(eb);
		pf_ebpf_slots_adopt(eb);
	} else {
		struct pf_config cfg = { .nqueues = eb->nqueues };
		uint32_t zero = 0;

		bpf_map_update_elem(eb->map_config, &zero, &cfg, BPF_ANY);
	}
	inst->priv = eb;
	pf_debug("%s: datapath loaded (%u entries, pins %s)", inst->name, eb->max_entries,
		 eb->flags & PF_INST_NO_PIN ? "none" : eb->pin_dir);
	return 0;
}

static int ebpf_open(pf_instance *inst, const struct pf_instance_opts *opts, struct pf_error *err)
{
	const char *pin_root = opts->pin_root && *opts->pin_root ? opts->pin_root : DEFAULT_PIN_ROOT;
	char pin_dir[sizeof(((struct pf_ebpf *)0)->pin_dir)];
	int created = 0, ret;

	pthread_once(&libbpf_print_once, libbpf_print_setup);
	if (!opts->obj_dir || !*opts->obj_dir)
		return pf_err(err, -EINVAL, "%s: obj_dir (directory of " DATAPATH_OBJ ") is required", inst->name);
	if (opts->xdp_mode > PF_XDP_HW)
		return pf_err(err, -EINVAL, "%s: xdp mode %u unknown (expected auto, driver, generic or hw)",
			      inst->name, opts->xdp_mode);
	if (strchr(inst->name, '/') || !strcmp(inst->name, ".") || !strcmp(inst->name, ".."))
		return pf_err(err, -EINVAL, "instance name '%s': expected a plain name (no '/')", inst->name);
	if ((size_t)snprintf(pin_dir, sizeof(pin_dir), "%s/%s", pin_root, inst->name) >= sizeof(pin_dir))
		return pf_err(err, -ENAMETOOLONG, "pin root %s: path too long for instance %s", pin_root, inst->name);
	if (!(opts->flags & (PF_INST_NO_PIN | PF_INST_DRY))) {
		if (opts->flags & PF_INST_FRESH)
			pf_ebpf_pins_remove(pin_dir);
		ret = pf_ebpf_pins_prepare(pin_root, pin_dir, &created, err);
		if (ret)
			return ret;
	}
	ret = ebpf_load(inst, opts, pin_root, err);
	/* a failed first load leaves nothing behind; an adopted pin dir is left as it was */
	if (ret && created)
		pf_ebpf_pins_remove(pin_dir);
	return ret;
}

static void tc_attach_port(struct pf_ebpf *eb, uint32_t id);

static uint8_t xdp_mode_of_flags(uint32_t flags)
{
	return flags == XDP_FLAGS_SKB_MODE ? PF_XDP_GENERIC : flags == XDP_FLAGS_HW_MODE ? PF_XDP_HW
	       : flags == XDP_FLAGS_DRV_MODE ? PF_XDP_DRIVER : 0;
}

/* xdp-tools' names: native (driver), skb (generic), hw (offload) */
static const char *xdp_mode_name(uint8_t mode)
{
	return mode == PF_XDP_GENERIC ? "generic" : mode == PF_XDP_HW ? "offload" : "native";
}

static int attach_port(struct pf_ebpf *eb, uint32_t id, struct pf_error *err)
{
	struct pf_ebpf_port *p = &eb->ports[id];
	uint32_t mode = eb->xdp_mode_req, flags;
	int ret;

	if (mode == PF_XDP_GENERIC)
		flags = XDP_FLAGS_SKB_MODE;
	else if (mode == PF_XDP_HW)
		flags = XDP_FLAGS_HW_MODE;
	else
		flags = XDP_FLAGS_DRV_MODE;
	ret = bpf_xdp_attach(p->ifindex, eb->prog_fd, flags, NULL);
	if (ret && mode == PF_XDP_AUTO) {
		char why[128];

		snprintf(why, sizeof(why), "%s: native mode refused (%s), using generic", p->ifname, strerror(-ret));
		pf_warn("%s: port %u %s", eb->inst->name, id, why);
		if (!eb->mode_reason[0])
			snprintf(eb->mode_reason, sizeof(eb->mode_reason), "%s", why);
		flags = XDP_FLAGS_SKB_MODE;
		ret = bpf_xdp_attach(p->ifindex, eb->prog_fd, flags, NULL);
	}
	if (ret)
		return pf_err(err, ret, "port %u (%s): cannot attach XDP in %s mode: %s", id, p->ifname,
			      xdp_mode_name(xdp_mode_of_flags(flags)), strerror(-ret));
	eb->attach_flags[id] = flags;
	tc_attach_port(eb, id);
	/* the instance reports the weakest mode any port got */
	if (flags == XDP_FLAGS_SKB_MODE)
		eb->xdp_mode = PF_XDP_GENERIC;
	else if (eb->xdp_mode != PF_XDP_GENERIC)
		eb->xdp_mode = flags == XDP_FLAGS_HW_MODE ? PF_XDP_HW : PF_XDP_DRIVER;
	pf_info("%s: port %u (%s): XDP attached in %s mode", eb->inst->name, id, p->ifname,
		xdp_mode_name(xdp_mode_of_flags(flags)));
	return 0;
}

/* clsact ingress + egress filters for clone sessions. A port where they cannot
 * be added still forwards; only cloning through it is lost (said once). */
static void tc_attach_port(struct pf_ebpf *eb, uint32_t id)
{
	struct pf_ebpf_port *p = &eb->ports[id];
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = p->ifindex, .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE, .priority = TC_PRIORITY, .flags = BPF_TC_F_REPLACE);
	int ret;

	if (eb->tc_attached[id])
		return;
	ret = bpf_tc_hook_create(&hook);
	if (ret && ret != -EEXIST) {
		pf_warn("%s: port %u (%s): no clsact qdisc (%s): clone sessions cannot use this port", eb->inst->name,
			id, p->ifname, strerror(-ret));
		return;
	}
	eb->tc_hook_created[id] = ret == 0;
	hook.attach_point = BPF_TC_INGRESS;
	opts.prog_fd = eb->tc_ingress_fd;
	ret = bpf_tc_attach(&hook, &opts);
	if (!ret) {
		hook.attach_point = BPF_TC_EGRESS;
		opts.prog_fd = eb->tc_egress_fd;
		opts.prog_id = 0;
		ret = bpf_tc_attach(&hook, &opts);
	}
	if (ret)
		pf_warn("%s: port %u (%s): cannot attach the clone programs to clsact (%s)", eb->inst->name, id,
			p->ifname, strerror(-ret));
	eb->tc_attached[id] = 1;
}

static void tc_detach_port(struct pf_ebpf *eb, uint32_t id)
{
	struct pf_ebpf_port *p = &eb->ports[id];
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = p->ifindex);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE, .priority = TC_PRIORITY);

	if (!eb->tc_attached[id])
		return;
	if (eb->tc_hook_created[id]) {
		/* the qdisc is ours: removing it removes both filters */
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
	} else {
		hook.attach_point = BPF_TC_INGRESS;
		bpf_tc_detach(&hook, &opts);
		hook.attach_point = BPF_TC_EGRESS;
		bpf_tc_detach(&hook, &opts);
	}
	eb->tc_attached[id] = 0;
	eb->tc_hook_created[id] = 0;
}

static void detach_port(struct pf_ebpf *eb, uint32_t id)
{
	struct pf_ebpf_port *p = &eb->ports[id];
	LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = eb->prog_fd);
	int ret;

	tc_detach_port(eb, id);
	if (!eb->attach_flags[id])
		return;
	/* only our program: never take down something that replaced it */
	ret = bpf_xdp_detach(p->ifindex, eb->attach_flags[id] | XDP_FLAGS_REPLACE, &opts);
	if (ret && ret != -ENODEV)
		pf_warn("%s: port %u (%s): detach: %s", eb->inst->name, id, p->ifname, strerror(-ret));
	eb->attach_flags[id] = 0;
}

static int ebpf_stop(pf_instance *inst, struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);

	if (!eb->started)
		return 0;
	pf_ebpf_miss_stop(eb);
	if (eb->flags & PF_INST_KEEP_DATAPATH) {
		/* hand the attached programs over to the next run, which re-adopts the pins */
		memset(eb->attach_flags, 0, sizeof(eb->attach_flags));
		memset(eb->tc_attached, 0, sizeof(eb->tc_attached));
		pf_info("%s: datapath kept attached (pins in %s)", eb->inst->name, eb->pin_dir);
	} else {
		for (uint32_t id = 0; id < PF_MAX_PORTS; id++)
			detach_port(eb, id);
	}
	eb->started = 0;
	return 0;
}

static int ebpf_start(pf_instance *inst, struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);
	int ret;

	if (eb->started)
		return 0;
	eb->mode_reason[0] = 0;
	eb->xdp_mode = 0;
	for (uint32_t id = 0; id < PF_MAX_PORTS; id++) {
		if (!eb->ports[id].in_use)
			continue;
		ret = attach_port(eb, id, err);
		if (ret) {
			for (uint32_t j = 0; j < id; j++)
				detach_port(eb, j);
			return ret;
		}
	}
	eb->started = 1;
	for (uint32_t id = 0; id < PF_MAX_PORTS; id++) {
		char why[512];

		if (eb->ports[id].in_use && pf_ebpf_veth_peer_check(eb->ports[id].ifname, why, sizeof(why)) == 1)
			pf_warn("port %u: %s", id, why);
	}
	ret = pf_ebpf_miss_start(eb, err);
	if (ret) {
		ebpf_stop(inst, NULL);
		return ret;
	}
	return 0;
}

static void ebpf_close(pf_instance *inst)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);

	if (!eb)
		return;
	ebpf_stop(inst, NULL);
	ebpf_free(eb);
	inst->priv = NULL;
}

static int ebpf_destroy(pf_instance *inst, struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);

	eb->flags &= ~PF_INST_KEEP_DATAPATH;  /* destroy means gone: nothing stays attached */
	ebpf_stop(inst, err);
	if (!(eb->flags & PF_INST_NO_PIN))
		pf_ebpf_pins_remove(eb->pin_dir);
	return 0;
}

static int ebpf_info(pf_instance *inst, struct pf_instance_info *info, struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);

	memset(info, 0, sizeof(*info));
	info->adopted = eb->adopted;
	info->xdp_mode = eb->xdp_mode;
	snprintf(info->mode_reason, sizeof(info->mode_reason), "%s", eb->mode_reason);
	for (uint32_t id = 0; id < PF_MAX_PORTS; id++)
		info->port_xdp_mode[id] = xdp_mode_of_flags(eb->attach_flags[id]);
	return 0;
}

uint32_t pf_ebpf_rx_queue_count(const char *ifname)
{
	char path[PATH_MAX];
	struct dirent *de;
	uint32_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/sys/class/net/%s/queues", ifname);
	d = opendir(path);
	if (!d)
		return 1;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "rx-", 3))
			n++;
	closedir(d);
	return n ? n : 1;
}

static int ebpf_port_set(pf_instance *inst, uint32_t port_id, const char *binding, const struct pf_port *port,
			 struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);
	struct pf_ebpf_port *p = &eb->ports[port_id];
	struct bpf_devmap_val tx = { 0 };
	struct pf_port val = { 0 };
	uint32_t ifindex, nq, zero = 0;
	struct pf_config cfg;
	int ret;

	if (!binding || !*binding)
		return pf_err(err, -EINVAL, "port %u: no interface given (expected an interface name)", port_id);
	ifindex = if_nametoindex(binding);
	if (!ifindex)
		return pf_err(err, -ENODEV, "port %u: interface '%s' does not exist", port_id, binding);
	if (port && (port->flags & PF_PORT_EGRESS_PIPE) && port->egress_pipe >= PF_MAX_PIPES)
		return pf_err(err, -ERANGE, "port %u: egress pipe %u out of range", port_id, port->egress_pipe);
	for (uint32_t other = 0; other < PF_MAX_PORTS; other++)
		if (other != port_id && eb->ports[other].in_use && eb->ports[other].ifindex == ifindex)
			return pf_err(err, -EEXIST, "port %u: interface '%s' is already port %u", port_id, binding,
				      other);
	if (p->in_use && p->ifindex != ifindex) {
		if (eb->started)
			detach_port(eb, port_id);
		bpf_map_delete_elem(eb->map_ifindex, &p->ifindex);
	}
	val.ifindex = ifindex;
	val.flags = (port ? port->flags : 0) | PF_PORT_IN_USE;
	val.egress_pipe = port ? port->egress_pipe : 0;
	tx.ifindex = ifindex;
	if (bpf_map_update_elem(eb->map_tx, &port_id, &tx, BPF_ANY))
		/* e.g. lo: frames can still arrive and be counted, not be sent there */
		pf_warn("port %u (%s): XDP cannot transmit to this interface (%s); forwarding to it will drop",
			port_id, binding, strerror(errno));
	if (bpf_map_update_elem(eb->map_ports, &port_id, &val, BPF_ANY) ||
	    bpf_map_update_elem(eb->map_ifindex, &ifindex, &port_id, BPF_ANY))
		return pf_err(err, -errno, "port %u (%s): %s", port_id, binding, strerror(errno));
	p->in_use = 1;
	p->ifindex = ifindex;
	snprintf(p->ifname, sizeof(p->ifname), "%s", binding);

	nq = pf_ebpf_rx_queue_count(binding);
	if (nq > eb->nqueues)
		eb->nqueues = nq > PF_MAX_QUEUES ? PF_MAX_QUEUES : nq;
	if (!bpf_map_lookup_elem(eb->map_config, &zero, &cfg)) {
		cfg.nqueues = eb->nqueues;
		bpf_map_update_elem(eb->map_config, &zero, &cfg, BPF_ANY);
	}
	if (eb->started && !eb->attach_flags[port_id]) {
		ret = attach_port(eb, port_id, err);
		if (ret)
			return ret;
	}
	return 0;
}

int pf_ebpf_pipe_value(struct pf_ebpf *eb, uint32_t pipe_id, const struct pf_pipe *pipe, uint32_t nmasks,
		       struct pf_pipe *out, struct pf_error *err)
{
	struct pf_pipe val, old;
	struct pf_mask_key mkeys[PF_MAX_MASKS];
	int ret, had = !pf_ebpf_pipe_get(eb, pipe_id, &old);

	if (!pipe)
		return pf_err(err, -EINVAL, "pipe %u: no definition given", pipe_id);
	if (pipe->type > PF_PIPE_HASH)
		return pf_err(err, -EINVAL, "pipe %u: unknown type %u (expected basic, control, lpm or hash)", pipe_id,
			      pipe->type);
	if (pipe->type == PF_PIPE_LPM && pipe->lpm_field > PF_LPM_IPV6_SRC)
		return pf_err(err, -EINVAL, "pipe %u: unknown lpm field %u", pipe_id, pipe->lpm_field);
	if ((pipe->type == PF_PIPE_BASIC || pipe->type == PF_PIPE_CONTROL) && nmasks == 0)
		return pf_err(err, -EINVAL, "pipe %u: a %s pipe needs at least one mask", pipe_id,
			      pipe->type == PF_PIPE_BASIC ? "basic" : "control");
	if (pipe->type == PF_PIPE_BASIC && nmasks > 1)
		return pf_err(err, -EINVAL, "pipe %u: a basic pipe has one mask, got %u", pipe_id, nmasks);
	if ((ret = pf_ebpf_fwd_check(&pipe->fwd, "pipe forward", err)) || (ret = pf_ebpf_fwd_check(&pipe->fwd_miss, "pipe forward on miss", err)))
		return ret;
	val = *pipe;
	val.flags |= PF_PIPE_IN_USE;
	val.nmasks = nmasks;
	if (pipe->type == PF_PIPE_HASH) {
		/* keep the bucket block across redefinitions, else take the first free one */
		if (pipe->nbuckets > PF_HASH_BUCKETS)
			return pf_err(err, -ERANGE, "hash pipe %u: %u buckets, at most %u", pipe_id, pipe->nbuckets,
				      PF_HASH_BUCKETS);
		if (had && old.type == PF_PIPE_HASH) {
			val.hash_slot = old.hash_slot;
		} else {
			uint8_t used[PF_MAX_HASH_PIPES] = { 0 };
			uint32_t slot = PF_MAX_HASH_PIPES;

			for (uint32_t p = 0; p < PF_MAX_PIPES; p++) {
				struct pf_pipe other;

				if (p != pipe_id && !pf_ebpf_pipe_get(eb, p, &other) && other.type == PF_PIPE_HASH &&
				    other.hash_slot < PF_MAX_HASH_PIPES)
					used[other.hash_slot] = 1;
			}
			for (uint32_t s = 0; s < PF_MAX_HASH_PIPES; s++)
				if (!used[s]) {
					slot = s;
					break;
				}
			if (slot == PF_MAX_HASH_PIPES)
				return pf_err(err, -ENOSPC, "pipe %u: at most %u hash pipes", pipe_id,
					      PF_MAX_HASH_PIPES);
			val.hash_slot = slot;
		}
	} else {
		val.hash_slot = 0;
		val.nbuckets = 0;
	}
	*out = val;
	return 0;
}

static int ebpf_pipe_set(pf_instance *inst, uint32_t pipe_id, const struct pf_pipe *pipe,
			 const struct pf_fields *masks, uint32_t nmasks, struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);
	struct pf_mask_key mkeys[PF_MAX_MASKS];
	struct pf_pipe val;
	int ret = pf_ebpf_pipe_value(eb, pipe_id, pipe, nmasks, &val, err);

	if (ret)
		return ret;
	/* masks before the pipe, so a lookup never sees a pipe without them */
	pf_ebpf_mask_keys_plan(eb, pipe_id, masks, nmasks, mkeys);
	for (uint32_t i = 0; i < PF_MAX_MASKS; i++) {
		struct pf_fields zero = { 0 };
		uint32_t key = pipe_id * PF_MAX_MASKS + i;

		if (bpf_map_update_elem(eb->map_pipe_masks, &key, i < nmasks ? &masks[i] : &zero, BPF_ANY) ||
		    bpf_map_update_elem(eb->map_mask_keys, &key, &mkeys[i], BPF_ANY))
			return pf_err(err, -errno, "pipe %u: mask %u: %s", pipe_id, i, strerror(errno));
	}
	if (bpf_map_update_elem(eb->map_pipes, &pipe_id, &val, BPF_ANY))
		return pf_err(err, -errno, "pipe %u: %s", pipe_id, strerror(errno));
	pf_ebpf_pipe_cache_store(eb, pipe_id, &val, masks, mkeys, nmasks);
	return 0;
}

static int ebpf_root_set(pf_instance *inst, uint32_t pipe_id, struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);
	struct pf_config cfg;
	struct pf_pipe pipe;
	uint32_t zero = 0;

	if (pf_ebpf_pipe_get(eb, pipe_id, &pipe))
		return pf_err(err, -ENOENT, "root pipe %u is not defined", pipe_id);
	if (bpf_map_lookup_elem(eb->map_config, &zero, &cfg))
		memset(&cfg, 0, sizeof(cfg));
	cfg.root_pipe = pipe_id;
	cfg.flags |= PF_CFG_ROOT_SET;
	cfg.nqueues = eb->nqueues;
	if (bpf_map_update_elem(eb->map_config, &zero, &cfg, BPF_ANY))
		return pf_err(err, -errno, "root pipe %u: %s", pipe_id, strerror(errno));
	return 0;
}

/* The session's member ports as a fresh DEVMAP_HASH, swapped into group_ports
 * in one update so a flood never sees a half-built group. */
static int group_ports_set(struct pf_ebpf *eb, uint32_t session_id, const struct pf_session *s, struct pf_error *err)
{
	int inner, ret = 0;

	inner = bpf_map_create(BPF_MAP_TYPE_DEVMAP_HASH, "pf_group", sizeof(uint32_t), sizeof(struct bpf_devmap_val),
			       PF_MAX_SESSION_MEMBERS, NULL);
	if (inner < 0)
		return pf_err(err, -errno, "session %u: cannot create its port group: %s", session_id,
			      strerror(errno));
	for (uint32_t i = 0; i < s->nmembers; i++) {
		const struct pf_session_member *m = &s->members[i];
		struct bpf_devmap_val val = { 0 };

		if (!m->in_use)
			continue;
		if (!eb->ports[m->port].in_use) {
			ret = pf_err(err, -ENODEV, "session %u: member %u: port %u is not bound", session_id, i, m->port);
			break;
		}
		val.ifindex = eb->ports[m->port].ifindex;
		if (bpf_map_update_elem(inner, &m->port, &val, BPF_ANY)) {
			ret = pf_err(err, -errno, "session %u: member port %u: %s", session_id, m->port, strerror(errno));
			break;
		}
	}
	if (!ret && bpf_map_update_elem(eb->map_group_ports, &session_id, &inner, BPF_ANY))
		ret = pf_err(err, -errno, "session %u: %s", session_id, strerror(errno));
	close(inner);           /* the outer map holds it now */
	return ret;
}

static int ebpf_session_set(pf_instance *inst, uint32_t session_id, const struct pf_session *s,
			    struct pf_error *err)
{
	struct pf_ebpf *eb = pf_ebpf_of(inst);
	int ret;

	if (!s || s->nmembers > PF_MAX_SESSION_MEMBERS)
		return pf_err(err, -ERANGE, "session %u: %u members, at most %u", session_id, s ? s->nmembers : 0,
			      PF_MAX_SESSION_MEMBERS);
	for (uint32_t i = 0; i < s->nmembers; i++)
		if (s->members[i].port >= PF_MAX_PORTS)
			return pf_err(err, -ERANGE, "session %u: member %u: port %u out of range", session_id, i,
				      s->members[i].port);
	ret = group_ports_set(eb, session_id, s, err);
	if (ret)
		return ret;
	if (bpf_map_update_elem(eb->map_sessions, &session_id, s, BPF_ANY))
		return pf_err(err, -errno, "session %u: %s", session_id, strerror(errno));
	return 0;
}

static int ebpf_entry_add(pf_instance *inst, uint32_t pipe_id, uint32_t mask_idx, uint32_t prefixlen,
			  const struct pf_fields *match, struct pf_entry *entry, struct pf_error *err)
{
	return pf_ebpf_entry_install(pf_ebpf_of(inst), pipe_id, mask_idx, prefixlen, match, entry, err);
}

static int ebpf_entry_add_batch(pf_instance *inst, struct pf_entry_req *reqs, uint32_t n, uint32_t *added,
				struct pf_error *err)
{
	return pf_ebpf_entry_install_batch(pf_ebpf_of(inst), reqs, n, added, err);
}

static int ebpf_entry_del(pf_instance *inst, uint32_t entry_id, struct pf_error *err)
{
	return pf_ebpf_entry_remove(pf_ebpf_of(inst), entry_id, err);
}

/* pipe_id == UINT32_MAX lists every pipe. *count = entries written. */
static int ebpf_learn_set(pf_instance *inst, const struct pf_learn *policy, struct pf_error *err)
{
	return pf_ebpf_miss_set_policy(pf_ebpf_of(inst), policy, err);
}

static int ebpf_miss_stats(pf_instance *inst, struct pf_miss_stats *out, struct pf_error *err)
{
	pf_ebpf_miss_stats(pf_ebpf_of(inst), out);
	return 0;
}

const struct pf_backend_ops pf_backend_ebpf = {
	.name = "ebpf",
	.dry = &pf_backend_ebpf_dry,
	.open = ebpf_open,
	.close = ebpf_close,
	.info = ebpf_info,
	.start = ebpf_start,
	.stop = ebpf_stop,
	.destroy = ebpf_destroy,
	.port_set = ebpf_port_set,
	.pipe_set = ebpf_pipe_set,
	.root_set = ebpf_root_set,
	.session_set = ebpf_session_set,
	.entry_add = ebpf_entry_add,
	.entry_add_batch = ebpf_entry_add_batch,
	.entry_del = ebpf_entry_del,
	.entry_replace = pf_ebpf_entry_replace,
	.entry_list = pf_ebpf_entry_list,
	.learn_set = ebpf_learn_set,
	.counters_entries = pf_ebpf_counters_entries,
	.counters_pipe = pf_ebpf_counters_pipe,
	.counters_port = pf_ebpf_counters_port,
	.miss_stats = ebpf_miss_stats,
	.test_run = pf_ebpf_test_run,
	.trace_run = pf_ebpf_trace_run,
	.counters_dpi = pf_ebpf_counters_dpi,
	.capture_start = pf_ebpf_capture_start,
	.capture_stats = pf_ebpf_capture_stats,
	.capture_stop = pf_ebpf_capture_stop,
	.dscp_tc_set = pf_ebpf_dscp_tc_set,
	.describe = pf_ebpf_describe,
};
