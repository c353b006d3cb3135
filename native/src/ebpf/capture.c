// SPDX-License-Identifier: BSD-2-Clause
/*
 * pyflow capture on the ebpf backend.
 *
 * The datapath copies frames at the enabled capture points into the
 * capture_events perf buffer (bpf_perf_event_output with the frame appended
 * by the kernel, no copy in BPF), behind one global, pf_capture in .bss: zero
 * points = off. A capture writes that global, and a thread here reads the perf
 * buffer and writes pcap or pcapng (one record per frame, with the point, port,
 * pipe, entry and drop reason in the pcapng comment) until a frame count, a
 * duration or pf_capture_stop. One capture per instance at a time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/perf_event.h>

#include "ebpf.h"

struct pf_capture_state {
	struct pf_ebpf *eb;
	pthread_t thread;
	int thread_started;
	volatile int stop;
	FILE *out;
	uint32_t format;
	uint64_t max_frames;
	uint64_t deadline_ns;           /* CLOCK_MONOTONIC, 0 = none */
	int64_t mono_to_real_ns;
	struct perf_buffer *pb;
	pthread_mutex_t lock;
	struct pf_capture_stats stats;
};

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Where a global of the datapath's .bss lives, and the map holding it. */
static int bss_var(struct pf_ebpf *eb, const char *name, uint32_t len, int *fd, uint32_t *off, uint32_t *value_size,
		   struct pf_error *err)
{
	struct bpf_map *bss = bpf_object__find_map_by_name(eb->obj, ".bss");
	struct btf *btf = bpf_object__btf(eb->obj);
	const struct btf_type *sec;
	const struct btf_var_secinfo *vsi;
	int id;

	if (!bss || bpf_map__fd(bss) < 0 || !btf)
		return pf_err(err, -ENOENT, "%s: the datapath has no .bss (an older build?)", name);
	*fd = bpf_map__fd(bss);
	*value_size = bpf_map__value_size(bss);
	id = btf__find_by_name_kind(btf, ".bss", BTF_KIND_DATASEC);
	if (id < 0)
		return pf_err(err, -ENOENT, "%s: no .bss section in the datapath's BTF", name);
	sec = btf__type_by_id(btf, id);
	vsi = btf_var_secinfos(sec);
	for (int i = 0; i < btf_vlen(sec); i++, vsi++) {
		const struct btf_type *var = btf__type_by_id(btf, vsi->type);

		if (var && !strcmp(btf__name_by_offset(btf, var->name_off), name)) {
			*off = vsi->offset;
			if (*off + len > *value_size || vsi->size != len)
				break;
			return 0;
		}
	}
	return pf_err(err, -ENOENT, "%s missing from the datapath's .bss (or of another size)", name);
}

/* Write a global of the running program (read, patch, write back: the section is one map value). */
int pf_ebpf_bss_write(struct pf_ebpf *eb, const char *name, const void *data, uint32_t len, struct pf_error *err)
{
	uint32_t off = 0, size = 0, zero = 0;
	int fd, ret;
	char *val;

	ret = bss_var(eb, name, len, &fd, &off, &size, err);
	if (ret)
		return ret;
	val = calloc(1, size);
	if (!val)
		return pf_err(err, -ENOMEM, "out of memory");
	if (bpf_map_lookup_elem(fd, &zero, val) == 0) {
		memcpy(val + off, data, len);
		ret = bpf_map_update_elem(fd, &zero, val, BPF_ANY) ? -errno : 0;
	} else {
		ret = -errno;
	}
	free(val);
	if (ret)
		return pf_err(err, ret, "cannot write %s in the datapath: %s", name, strerror(-ret));
	return 0;
}

static int capture_cfg_write(struct pf_ebpf *eb, const struct pf_capture_cfg *cfg, struct pf_error *err)
{
	return pf_ebpf_bss_write(eb, "pf_capture", cfg, sizeof(*cfg), err);
}

/* DSCP -> MPLS TC: map[d] = 0..7, or 0xff for the class selector (d >> 3). */
int pf_ebpf_dscp_tc_set(pf_instance *inst, const uint8_t *map, struct pf_error *err)
{
	uint8_t table[64];

	for (int d = 0; d < 64; d++) {
		if (map[d] != 0xff && map[d] > 7)
			return pf_err(err, -EINVAL, "dscp %d: traffic class %u out of range 0..7", d, map[d]);
		table[d] = map[d] == 0xff ? 0 : map[d] + 1;
	}
	return pf_ebpf_bss_write(inst->priv, "pf_dscp_tc", table, sizeof(table), err);
}

static void put32(FILE *f, uint32_t v) { fwrite(&v, 4, 1, f); }
static void put16(FILE *f, uint16_t v) { fwrite(&v, 2, 1, f); }

static void write_file_header(struct pf_capture_state *st, uint32_t snaplen)
{
	FILE *f = st->out;

	if (st->format == PF_CAPTURE_PCAP) {
		put32(f, 0xa1b23c4d);   /* nanosecond timestamps */
		put16(f, 2);
		put16(f, 4);
		put32(f, 0);
		put32(f, 0);
		put32(f, snaplen);
		put32(f, 1);            /* LINKTYPE_ETHERNET */
		return;
	}
	/* section header block */
	put32(f, 0x0a0d0d0a);
	put32(f, 28);
	put32(f, 0x1a2b3c4d);
	put16(f, 1);
	put16(f, 0);
	put32(f, 0xffffffff);
	put32(f, 0xffffffff);
	put32(f, 28);
	/* interface description block: Ethernet, snaplen, if_tsresol = 9 (ns) */
	put32(f, 1);
	put32(f, 32);
	put16(f, 1);
	put16(f, 0);
	put32(f, snaplen);
	put16(f, 9);
	put16(f, 1);
	put32(f, 9);
	put32(f, 0);
	put32(f, 32);
}

static const char *const point_names[] = { "ingress", "hit", "miss", "egress", "drop" };
static const char *const drop_names[] = { "malformed", "action", "no_miss_handler", "depth", "tx_fail", "sampled",
					   "action_fail", "rate_limit" };

static void on_sample(void *ctx, int cpu, void *data, __u32 size)
{
	struct pf_capture_state *st = ctx;
	const struct pf_capture_hdr *h = data;
	const uint8_t *frame = (const uint8_t *)(h + 1);
	uint64_t ts;
	uint32_t cap;
	static const uint8_t pad[4];

	(void)cpu;
	if (size < sizeof(*h) || st->stop)
		return;
	cap = h->caplen;
	if (cap > size - sizeof(*h))
		cap = size - sizeof(*h);
	if (st->max_frames && st->stats.frames >= st->max_frames)
		return;
	ts = h->ts_ns + st->mono_to_real_ns;
	if (st->format == PF_CAPTURE_PCAP) {
		put32(st->out, (uint32_t)(ts / 1000000000ull));
		put32(st->out, (uint32_t)(ts % 1000000000ull));
		put32(st->out, cap);
		put32(st->out, h->len);
		fwrite(frame, 1, cap, st->out);
	} else {
		char comment[160];
		int n, point = __builtin_ctz(h->point ? h->point : 1);
		uint32_t cpad = (4 - cap % 4) % 4, clen, cpadc, blen;

		n = snprintf(comment, sizeof(comment), "pyflow %s port=%u pipe=%u", point < 5 ? point_names[point] : "?",
			     h->port, h->pipe);
		if (h->entry != UINT32_MAX)
			n += snprintf(comment + n, sizeof(comment) - n, " entry=%u", h->entry);
		if (h->point == PF_CAP_DROP)
			n += snprintf(comment + n, sizeof(comment) - n, " reason=%s",
				      h->reason < PF_DROP_MAX ? drop_names[h->reason] : "?");
		clen = (uint32_t)n;
		cpadc = (4 - clen % 4) % 4;
		blen = 28 + cap + cpad + 4 + clen + cpadc + 4 + 4;
		put32(st->out, 6);
		put32(st->out, blen);
		put32(st->out, 0);
		put32(st->out, (uint32_t)(ts >> 32));
		put32(st->out, (uint32_t)ts);
		put32(st->out, cap);
		put32(st->out, h->len);
		fwrite(frame, 1, cap, st->out);
		fwrite(pad, 1, cpad, st->out);
		put16(st->out, 1);      /* opt_comment */
		put16(st->out, (uint16_t)clen);
		fwrite(comment, 1, clen, st->out);
		fwrite(pad, 1, cpadc, st->out);
		put32(st->out, 0);      /* opt_endofopt */
		put32(st->out, blen);
	}
	pthread_mutex_lock(&st->lock);
	st->stats.frames++;
	st->stats.bytes += cap;
	pthread_mutex_unlock(&st->lock);
}

static void on_lost(void *ctx, int cpu, __u64 n)
{
	struct pf_capture_state *st = ctx;

	(void)cpu;
	pthread_mutex_lock(&st->lock);
	st->stats.lost += n;
	pthread_mutex_unlock(&st->lock);
}

/* Raw perf records: samples carry our header and the frame; a wakeup only every
 * PF_CAPTURE_WAKEUP samples (the poll timeout picks up the rest), so a busy
 * capture does not cost the datapath an irq_work per frame. */
#define PF_CAPTURE_WAKEUP 64

struct pf_perf_sample {
	struct perf_event_header header;
	uint32_t size;
	uint8_t data[];
};

struct pf_perf_lost {
	struct perf_event_header header;
	uint64_t id;
	uint64_t lost;
};

static enum bpf_perf_event_ret on_event(void *ctx, int cpu, struct perf_event_header *ev)
{
	if (ev->type == PERF_RECORD_SAMPLE) {
		struct pf_perf_sample *s = (void *)ev;

		on_sample(ctx, cpu, s->data, s->size);
	} else if (ev->type == PERF_RECORD_LOST) {
		on_lost(ctx, cpu, ((struct pf_perf_lost *)ev)->lost);
	}
	return LIBBPF_PERF_EVENT_CONT;
}

static void *capture_thread(void *arg)
{
	struct pf_capture_state *st = arg;
	struct pf_capture_cfg off = { .pipe = PF_CAPTURE_ANY, .entry = PF_CAPTURE_ANY };
	struct pf_error err;

	while (!st->stop) {
		if (st->max_frames && st->stats.frames >= st->max_frames)
			break;
		if (st->deadline_ns && now_ns(CLOCK_MONOTONIC) >= st->deadline_ns)
			break;
		int n = perf_buffer__poll(st->pb, 100);

		if (n < 0 && errno != EINTR)
			break;
		/* fewer samples than a wakeup's worth never make epoll ready: read them on the timeout */
		if (n == 0)
			perf_buffer__consume(st->pb);
	}
	/* off first, then drain what is already in the buffers */
	capture_cfg_write(st->eb, &off, &err);
	perf_buffer__consume(st->pb);
	fflush(st->out);
	pthread_mutex_lock(&st->lock);
	st->stats.running = 0;
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

static void capture_free(struct pf_capture_state *st)
{
	if (!st)
		return;
	st->stop = 1;
	if (st->thread_started)
		pthread_join(st->thread, NULL);
	if (st->pb)
		perf_buffer__free(st->pb);
	if (st->out)
		fclose(st->out);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

void pf_ebpf_capture_release(struct pf_ebpf *eb)
{
	capture_free(eb->capture);
	eb->capture = NULL;
}

int pf_ebpf_capture_start(pf_instance *inst, const struct pf_capture_cfg *cfg, const char *path, uint32_t format,
			  uint64_t max_frames, uint64_t duration_ms, struct pf_error *err)
{
	struct pf_ebpf *eb = inst->priv;
	struct pf_capture_state *st = eb->capture;
	struct pf_capture_cfg on;
	struct bpf_map *map;
	int ret;

	if (st && st->stats.running)
		return pf_err(err, -EBUSY, "capture: one is already running on instance %s", inst->name);
	pf_ebpf_capture_release(eb);
	if (!cfg || !cfg->points || (cfg->points & ~(uint32_t)(PF_CAP_INGRESS | PF_CAP_HIT | PF_CAP_MISS |
								 PF_CAP_EGRESS | PF_CAP_DROP)))
		return pf_err(err, -EINVAL, "capture: points 0x%x: expected ingress, hit, miss, egress or drop",
			      cfg ? cfg->points : 0);
	if (format > PF_CAPTURE_PCAPNG)
		return pf_err(err, -EINVAL, "capture: format %u unknown (pcap or pcapng)", format);
	map = bpf_object__find_map_by_name(eb->obj, "capture_events");
	if (!map || bpf_map__fd(map) < 0)
		return pf_err(err, -ENOENT, "capture: capture_events missing from the datapath (an older build?)");
	st = calloc(1, sizeof(*st));
	if (!st)
		return pf_err(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&st->lock, NULL);
	st->eb = eb;
	st->format = format;
	st->max_frames = max_frames;
	st->mono_to_real_ns = (int64_t)(now_ns(CLOCK_REALTIME) - now_ns(CLOCK_MONOTONIC));
	if (duration_ms)
		st->deadline_ns = now_ns(CLOCK_MONOTONIC) + duration_ms * 1000000ull;
	st->out = fopen(path, "wb");
	if (!st->out) {
		ret = -errno;
		capture_free(st);
		return pf_err(err, ret, "capture: cannot write %s: %s", path, strerror(-ret));
	}
	{
		struct perf_event_attr attr = {
			.type = PERF_TYPE_SOFTWARE,
			.config = PERF_COUNT_SW_BPF_OUTPUT,
			.sample_type = PERF_SAMPLE_RAW,
			.sample_period = 1,
			.wakeup_events = PF_CAPTURE_WAKEUP,
			.size = sizeof(attr),
		};

		st->pb = perf_buffer__new_raw(bpf_map__fd(map), 256, &attr, on_event, st, NULL);
	}
	if (!st->pb) {
		ret = -errno;
		st->pb = NULL;
		capture_free(st);
		return pf_err(err, ret, "capture: cannot open the perf buffer: %s", strerror(-ret));
	}
	on = *cfg;
	if (!on.snaplen || on.snaplen > 0xffff)
		on.snaplen = 0xffff;
	write_file_header(st, on.snaplen);
	st->stats.running = 1;
	ret = capture_cfg_write(eb, &on, err);
	if (ret) {
		capture_free(st);
		return ret;
	}
	if (pthread_create(&st->thread, NULL, capture_thread, st)) {
		struct pf_capture_cfg off = { .pipe = PF_CAPTURE_ANY, .entry = PF_CAPTURE_ANY };

		capture_cfg_write(eb, &off, err);
		capture_free(st);
		return pf_err(err, -EAGAIN, "capture: cannot start the capture thread");
	}
	st->thread_started = 1;
	eb->capture = st;
	return 0;
}

int pf_ebpf_capture_stats(pf_instance *inst, struct pf_capture_stats *out, struct pf_error *err)
{
	struct pf_ebpf *eb = inst->priv;
	struct pf_capture_state *st = eb->capture;

	(void)err;
	memset(out, 0, sizeof(*out));
	if (!st)
		return 0;
	pthread_mutex_lock(&st->lock);
	*out = st->stats;
	pthread_mutex_unlock(&st->lock);
	return 0;
}

int pf_ebpf_capture_stop(pf_instance *inst, struct pf_capture_stats *out, struct pf_error *err)
{
	struct pf_ebpf *eb = inst->priv;
	struct pf_capture_state *st = eb->capture;

	(void)err;
	if (out)
		memset(out, 0, sizeof(*out));
	if (!st)
		return 0;
	st->stop = 1;
	if (st->thread_started) {
		pthread_join(st->thread, NULL);
		st->thread_started = 0;
	}
	if (out)
		*out = st->stats;
	pf_ebpf_capture_release(eb);
	return 0;
}
