// SPDX-License-Identifier: BSD-2-Clause
/*
 * pfbtool: the benchmark's traffic generator, sink and XDP loader.
 *
 *   pfbtool attach  IFNAME OBJ PROG PIN_DIR [MAP=KEY:IFNAME ...]  load, fill devmaps, attach (native XDP), pin maps
 *   pfbtool detach  IFNAME
 *   pfbtool sink-cfg PIN_DIR ORIG_DST RECORD_FIRST        configure the sink; clears first-seen stamps
 *   pfbtool sink-read PIN_DIR                             counters as JSON
 *   pfbtool sink-first PIN_DIR                            "src_hex ns" per source seen
 *   pfbtool gen OBJ IFNAME FRAME_HEX [options]            send frames out of IFNAME, print JSON
 *     --duration S | --count N   --batch B  --cpu C  --nflows N  --src-base A.B.C.D
 *     --record-sent FILE (stamp first send per source, write "src_hex ns")  --interval-us U (one frame per call)
 *     JSON: sent, calls, elapsed_ns (wall clock of the loop) and run_ns (the kernel's own time for the
 *     frames, see cmd_gen)
 *
 * Everything per packet runs in the kernel; this process only starts runs and reads maps.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "../bpf/pfb_common.h"

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, args) : 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int die(const char *what, int err)
{
	fprintf(stderr, "pfbtool: %s: %s\n", what, strerror(err < 0 ? -err : err));
	return 1;
}

static int pinned_map(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return bpf_obj_get(path);
}

static int mkdir_p(const char *dir)
{
	char tmp[512];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			mkdir(tmp, 0700);
			*p = '/';
		}
	}
	return mkdir(tmp, 0700) && errno != EEXIST ? -errno : 0;
}

static int cmd_attach(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: attach IFNAME OBJ PROG PIN_DIR [MAP=KEY:IFNAME ...]\n");
		return 2;
	}
	unsigned ifindex = if_nametoindex(argv[1]);
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_map *map;
	int err;

	if (!ifindex)
		return die(argv[1], errno);
	obj = bpf_object__open_file(argv[2], NULL);
	if (!obj)
		return die(argv[2], errno);
	if ((err = bpf_object__load(obj)))
		return die("load", err);
	prog = bpf_object__find_program_by_name(obj, argv[3]);
	if (!prog)
		return die(argv[3], ENOENT);
	for (int i = 5; i < argc; i++) {
		char name[128], ifname[IF_NAMESIZE];
		unsigned key, target;

		if (sscanf(argv[i], "%127[^=]=%u:%15s", name, &key, ifname) != 3)
			return die(argv[i], EINVAL);
		target = if_nametoindex(ifname);
		map = bpf_object__find_map_by_name(obj, name);
		if (!map || !target)
			return die(argv[i], ENOENT);
		if ((err = bpf_map_update_elem(bpf_map__fd(map), &key, &target, 0)))
			return die("devmap update", errno);
	}
	if ((err = mkdir_p(argv[4])))
		return die(argv[4], err);
	bpf_object__for_each_map(map, obj) {
		char path[512];

		if (bpf_map__is_internal(map))
			continue;
		snprintf(path, sizeof(path), "%s/%s", argv[4], bpf_map__name(map));
		unlink(path);
		if ((err = bpf_map__pin(map, path)))
			return die(path, err);
	}
	err = bpf_xdp_attach(ifindex, bpf_program__fd(prog), XDP_FLAGS_DRV_MODE, NULL);
	if (err)
		return die("xdp attach", err);
	bpf_object__close(obj);
	return 0;
}

static int cmd_detach(int argc, char **argv)
{
	unsigned ifindex = argc > 1 ? if_nametoindex(argv[1]) : 0;

	if (!ifindex)
		return die("detach", ENODEV);
	return bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, NULL) ? die("xdp detach", errno) : 0;
}

static void clear_hash(int fd)
{
	uint32_t key, next;

	while (!bpf_map_get_next_key(fd, NULL, &next)) {
		key = next;
		if (bpf_map_delete_elem(fd, &key))
			break;
	}
}

static void dump_stamps(int fd, FILE *out)
{
	uint32_t key, next;
	uint64_t ns;
	int more = !bpf_map_get_next_key(fd, NULL, &next);

	while (more) {
		key = next;
		more = !bpf_map_get_next_key(fd, &key, &next);
		if (!bpf_map_lookup_elem(fd, &key, &ns))
			fprintf(out, "%08x %llu\n", ntohl(key), (unsigned long long)ns);
	}
}

static int cmd_sink_cfg(int argc, char **argv)
{
	struct pfb_sink_cfg cfg = {};
	uint32_t zero = 0;
	int cfg_fd, first_fd;

	if (argc < 4 || inet_pton(AF_INET, argv[2], &cfg.orig_dst) != 1)
		return die("usage: sink-cfg PIN_DIR ORIG_DST RECORD_FIRST", EINVAL);
	cfg.record_first = atoi(argv[3]);
	cfg_fd = pinned_map(argv[1], "sink_cfg");
	first_fd = pinned_map(argv[1], "first_seen");
	if (cfg_fd < 0 || first_fd < 0)
		return die(argv[1], errno);
	clear_hash(first_fd);
	return bpf_map_update_elem(cfg_fd, &zero, &cfg, 0) ? die("sink_cfg", errno) : 0;
}

static int cmd_sink_read(int argc, char **argv)
{
	int ncpu = libbpf_num_possible_cpus();
	struct pfb_sink_count *per_cpu, sum = {};
	uint32_t zero = 0;
	int fd;

	if (argc < 2)
		return die("usage: sink-read PIN_DIR", EINVAL);
	fd = pinned_map(argv[1], "sink_count");
	if (fd < 0)
		return die(argv[1], errno);
	per_cpu = calloc(ncpu, sizeof(*per_cpu));
	if (bpf_map_lookup_elem(fd, &zero, per_cpu))
		return die("sink_count", errno);
	for (int i = 0; i < ncpu; i++) {
		sum.packets += per_cpu[i].packets;
		sum.bytes += per_cpu[i].bytes;
		sum.rewritten += per_cpu[i].rewritten;
		sum.non_ipv4 += per_cpu[i].non_ipv4;
	}
	printf("{\"packets\": %llu, \"bytes\": %llu, \"rewritten\": %llu, \"non_ipv4\": %llu, \"at_ns\": %llu}\n",
	       (unsigned long long)sum.packets, (unsigned long long)sum.bytes,
	       (unsigned long long)sum.rewritten, (unsigned long long)sum.non_ipv4, (unsigned long long)now_ns());
	free(per_cpu);
	return 0;
}

static int cmd_sink_first(int argc, char **argv)
{
	int fd = argc > 1 ? pinned_map(argv[1], "first_seen") : -1;

	if (fd < 0)
		return die("sink-first", errno);
	dump_stamps(fd, stdout);
	return 0;
}

static int hex_decode(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;

	if (n > cap)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &out[i]) != 1)
			return -1;
	return (int)n;
}

static int cmd_gen(int argc, char **argv)
{
	static uint8_t frame[9000];
	double duration = 0;
	uint64_t count = 0;
	unsigned batch = 64, interval_us = 0;
	int cpu = -1;
	struct pfb_gen_cfg cfg = {};
	const char *record_path = NULL;
	struct bpf_object *obj;
	struct bpf_program *prog;
	uint32_t zero = 0;
	int len, err, prog_fd;

	if (argc < 4)
		return die("usage: gen OBJ IFNAME FRAME_HEX [options]", EINVAL);
	for (int i = 4; i + 1 < argc; i += 2) {
		const char *opt = argv[i], *val = argv[i + 1];

		if (!strcmp(opt, "--duration")) duration = atof(val);
		else if (!strcmp(opt, "--count")) count = strtoull(val, NULL, 0);
		else if (!strcmp(opt, "--batch")) batch = atoi(val);
		else if (!strcmp(opt, "--cpu")) cpu = atoi(val);
		else if (!strcmp(opt, "--nflows")) cfg.nflows = atoi(val);
		else if (!strcmp(opt, "--interval-us")) interval_us = atoi(val);
		else if (!strcmp(opt, "--record-sent")) { record_path = val; cfg.record_sent = 1; }
		else if (!strcmp(opt, "--src-base")) {
			struct in_addr a;

			if (inet_pton(AF_INET, val, &a) != 1)
				return die(val, EINVAL);
			cfg.src_base = ntohl(a.s_addr);
		} else
			return die(opt, EINVAL);
	}
	cfg.out_ifindex = if_nametoindex(argv[2]);
	if (!cfg.out_ifindex)
		return die(argv[2], errno);
	len = hex_decode(argv[3], frame, sizeof(frame));
	if (len < 60)
		return die("frame", EINVAL);
	memcpy(cfg.hdr, frame, PFB_HDR_LEN);
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			return die("sched_setaffinity", errno);
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj)
		return die(argv[1], errno);
	if ((err = bpf_object__load(obj)))
		return die("load", err);
	prog = bpf_object__find_program_by_name(obj, "pfb_gen");
	prog_fd = bpf_program__fd(prog);
	if (bpf_map_update_elem(bpf_map__fd(bpf_object__find_map_by_name(obj, "gen_cfg")), &zero, &cfg, 0))
		return die("gen_cfg", errno);

	struct xdp_md ctx = { .data_end = (uint32_t)len, .ingress_ifindex = cfg.out_ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = (uint32_t)len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
		    .batch_size = batch);
	/*
	 * Every BPF_PROG_RUN call with repeat > 1 adds the program to the kernel's XDP dispatcher and removes it
	 * again, and each change waits for an RCU grace period: 20-50 ms per call on this machine, with the CPU
	 * idle, whatever the system under test is. Two things keep that out of the figures:
	 *  - run_ns adds up the kernel's own timing of the frames (BPF_PROG_RUN's duration: the test-run timer
	 *    around the batches, which includes the softirq that carries each batch through the system under
	 *    test to the sink, and excludes the dispatcher changes and any time the task was scheduled out);
	 *  - after a first call, each call is sized from the measured frame rate to run ~CALL_TARGET_NS of
	 *    frames, so the idle gaps are few and wall-clock rates (systems on another core) are barely diluted.
	 */
	const uint64_t CALL_TARGET_NS = 400000000ull;
	uint64_t sent = 0, calls = 0, run_ns = 0, start = now_ns(), deadline = start + (uint64_t)(duration * 1e9);
	uint32_t chunk = 1 << 14;

	for (;;) {
		uint64_t t0 = now_ns(), want;

		if (count) {
			if (sent >= count)
				break;
			want = interval_us ? 1 : count - sent;
			if (want > chunk)
				want = chunk;
		} else {
			if (t0 >= deadline)
				break;
			want = chunk;
		}
		opts.repeat = (uint32_t)want;
		if (bpf_prog_test_run_opts(prog_fd, &opts))
			return die("BPF_PROG_RUN", errno);
		sent += want;
		calls++;
		/* duration is the mean per frame, truncated to whole ns: add half a ns back */
		uint64_t frames_ns = ((uint64_t)opts.duration * 2 + 1) * want / 2;
		run_ns += frames_ns;
		uint64_t took = now_ns() - t0;
		if (!interval_us && frames_ns) {
			/* the next call runs ~CALL_TARGET_NS of frames, or what is left before the deadline */
			uint64_t left = deadline > now_ns() ? deadline - now_ns() : 0, target = CALL_TARGET_NS;
			double per_frame = (double)frames_ns / (double)want;

			if (!count && left < target)
				target = left;
			double next = (double)target / per_frame;
			chunk = next < 1024 ? 1024 : next > (double)(1u << 26) ? (1u << 26) : (uint32_t)next;
		} else if (!interval_us && took > 100000000 && chunk > 1024) {
			chunk /= 2;
		}
		if (interval_us) {
			struct timespec ts = { .tv_sec = interval_us / 1000000, .tv_nsec = (interval_us % 1000000) * 1000L };

			nanosleep(&ts, NULL);
		}
	}
	uint64_t end = now_ns();

	printf("{\"sent\": %llu, \"calls\": %llu, \"start_ns\": %llu, \"end_ns\": %llu, \"elapsed_ns\": %llu, "
	       "\"run_ns\": %llu}\n",
	       (unsigned long long)sent, (unsigned long long)calls, (unsigned long long)start,
	       (unsigned long long)end, (unsigned long long)(end - start), (unsigned long long)run_ns);
	if (record_path) {
		FILE *out = fopen(record_path, "w");

		if (!out)
			return die(record_path, errno);
		dump_stamps(bpf_map__fd(bpf_object__find_map_by_name(obj, "sent_at")), out);
		fclose(out);
	}
	bpf_object__close(obj);
	return 0;
}

int main(int argc, char **argv)
{
	libbpf_set_print(libbpf_quiet);
	if (argc < 2) {
		fprintf(stderr, "usage: pfbtool attach|detach|sink-cfg|sink-read|sink-first|gen ...\n");
		return 2;
	}
	if (!strcmp(argv[1], "attach")) return cmd_attach(argc - 1, argv + 1);
	if (!strcmp(argv[1], "detach")) return cmd_detach(argc - 1, argv + 1);
	if (!strcmp(argv[1], "sink-cfg")) return cmd_sink_cfg(argc - 1, argv + 1);
	if (!strcmp(argv[1], "sink-read")) return cmd_sink_read(argc - 1, argv + 1);
	if (!strcmp(argv[1], "sink-first")) return cmd_sink_first(argc - 1, argv + 1);
	if (!strcmp(argv[1], "gen")) return cmd_gen(argc - 1, argv + 1);
	fprintf(stderr, "pfbtool: unknown command %s\n", argv[1]);
	return 2;
}
