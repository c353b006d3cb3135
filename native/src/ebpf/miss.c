// SPDX-License-Identifier: BSD-2-Clause
/*
 * The ebpf backend's miss path. The XDP datapath redirects a missed frame into
 * the XSKMAP slot port*PF_MAX_QUEUES + rx_queue with a struct pf_xdp_meta in
 * its metadata area; one AF_XDP socket per bound port and queue receives it
 * (copy mode keeps the metadata in the umem headroom right before the frame:
 * verified on veth, native and generic XDP, kernel 6.18). Handler threads
 * (opts.miss_threads, default one) poll the sockets and hand frames to the
 * learner, which installs the entry and resubmits the frame through
 * BPF_PROG_RUN with live frames (the frames of a batch in one call, see
 * "batched resubmit"). The first thread also sweeps idle entries.
 */
#define _GNU_SOURCE             /* pthread_setname_np, unshare */
#include <fcntl.h>
#include <sched.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <xdp/xsk.h>
#include "ebpf/ebpf.h"
#include "ebpf/miss.h"
#include "miss/miss.h"

#ifndef SOL_XDP
#define SOL_XDP 283
#endif

/* umem frames (= rx and fill ring size) per socket. A burst of new flows lands in
 * the rx ring at line rate while one handler thread installs some tens of thousands
 * per second, so the ring has to hold the whole burst: with 1024 frames a burst of
 * 2000 lost 48% of its first packets (rx_ring_full). 8192 frames (16 MiB with 2 KiB
 * frames) absorb 8k new flows at once per queue; many sockets share a budget. */
#define MISS_FRAMES_MAX 8192
#define MISS_FRAMES_MIN 256
#define MISS_BYTES_BUDGET (64u << 20)
/* 2 KiB frames hold 1792 bytes after the kernel's 256 bytes of headroom: enough for
 * MTU 1500 plus two VLAN tags; ports with a larger MTU get 4 KiB frames */
#define MISS_FRAME_SMALL 2048
#define MISS_FRAME_LARGE 4096
#define MISS_FRAME_SMALL_MAX_MTU 1770
#define MISS_BATCH PF_LEARN_BATCH_MAX
#define MISS_POLL_MS 20
#define MISS_MAX_THREADS 16

struct miss_socket {
	uint32_t nframes;
	uint32_t frame_size;
	uint32_t port;
	uint32_t queue;
	uint32_t slot;                  /* XSKMAP key */
	int in_map;
	void *area;
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	struct xsk_ring_prod fill;
	struct xsk_ring_cons comp;
	struct xsk_ring_cons rx;
};

struct ebpf_miss {
	struct pf_ebpf *eb;
	struct pf_learner *learner;
	struct miss_socket *socks;
	uint32_t nsocks;
	uint32_t npolicies;
	uint32_t only_pipe;             /* the policy's pipe when there is exactly one */
	/* last-seen stamps read in one batch before each sweep (the sweeper's
	 * only reader), instead of one syscall per learned flow */
	uint64_t *seen;
	uint32_t nseen;
	int seen_valid;
	/* handler threads: thread t polls sockets t, t + nthreads, ...; thread 0 also sweeps */
	struct miss_worker {
		struct ebpf_miss *m;
		uint32_t index;
		pthread_t thread;
	} workers[MISS_MAX_THREADS];
	uint32_t nthreads;
	int running;
	int stop;                       /* set by pf_ebpf_miss_stop, read with atomics */
	uint64_t bad_meta;
	/* drop counters of sockets already closed, so a restart does not forget them */
	struct xdp_statistics closed_stats;
	/* pipes whose misses XDP rate-limits, and their XDP shed count when this process
	 * set the limit (pinned buckets outlive a restart; the learner's counts do not) */
	uint8_t limited[PF_MAX_PIPES];
	uint64_t shed_base[PF_MAX_PIPES];
	struct ebpf_feed *feed;         /* batched resubmit, NULL: one BPF_PROG_RUN per frame */
};

/* ---- learner ops on the ebpf tables ------------------------------------ */

static int op_install(void *backend, uint32_t pipe, const struct pf_fields *match, struct pf_entry *entry,
		      struct pf_error *err)
{
	return pf_ebpf_entry_install(backend, pipe, 0, 0, match, entry, err);
}

static int op_remove(void *backend, uint32_t entry_id, struct pf_error *err)
{
	return pf_ebpf_entry_remove(backend, entry_id, err);
}

static uint64_t op_last_seen(void *backend, uint32_t entry_id)
{
	struct pf_ebpf *eb = backend;
	struct ebpf_miss *m = eb->miss;

	if (m && m->seen_valid && entry_id < m->nseen)
		return m->seen[entry_id];
	return pf_ebpf_entry_last_seen(eb, entry_id);
}

static int op_installed(void *backend, uint32_t pipe, const struct pf_fields *match, uint32_t entry_id)
{
	return pf_ebpf_entry_installed(backend, pipe, match, entry_id);
}

/* One BPF_MAP_LOOKUP_BATCH over the whole entry_seen array. */
static void seen_refresh(struct ebpf_miss *m)
{
	struct pf_ebpf *eb = m->eb;
	uint32_t *keys, out_batch = 0, count, done = 0;
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	int ret;

	m->seen_valid = 0;
	if (!m->seen) {
		m->seen = calloc(eb->max_entries, sizeof(*m->seen));
		if (!m->seen)
			return;
		m->nseen = eb->max_entries;
	}
	keys = malloc((size_t)m->nseen * sizeof(*keys));
	if (!keys)
		return;
	while (done < m->nseen) {
		count = m->nseen - done;
		ret = bpf_map_lookup_batch(eb->map_entry_seen, done ? &out_batch : NULL, &out_batch, keys + done,
					   m->seen + done, &count, &opts);
		done += count;
		if (ret) {
			/* ENOENT: the whole array was read */
			if (errno == ENOENT)
				break;
			pf_debug("miss handler: batch read of entry_seen failed (%s): one lookup per flow",
				 strerror(errno));
			free(keys);
			return;
		}
	}
	free(keys);
	m->seen_valid = 1;
}

static int op_resubmit(void *backend, uint32_t port, uint32_t pipe, const void *frame, uint32_t len,
		       struct pf_error *err)
{
	return pf_ebpf_resubmit_from(backend, port, pipe, frame, len, err);
}

static int op_install_batch(void *backend, struct pf_entry_req *reqs, uint32_t n, uint32_t *added,
			    struct pf_error *err)
{
	/* a batch of one (a paced new flow) takes the single path: the batch path's setup costs more */
	if (n == 1) {
		reqs[0].result = pf_ebpf_entry_install(backend, reqs[0].pipe, reqs[0].mask_idx, reqs[0].prefixlen,
						       &reqs[0].match, &reqs[0].entry, err);
		*added = !reqs[0].result;
		return reqs[0].result;
	}
	return pf_ebpf_entry_install_batch(backend, reqs, n, added, err);
}

/* ---- batched resubmit ---------------------------------------------------- */

/* BPF_PROG_RUN with live frames runs one frame `repeat` times, and the kernel does not
 * restore a frame's bytes between runs. So a batch of different frames goes through a
 * small XDP loader: each run takes the next slot of a ring the handler filled (mmapped,
 * no syscall to fill it), writes the slot's metadata and bytes into its frame and
 * tail-calls the datapath's root program, which then sees exactly what a single
 * resubmit hands it. One syscall per run of frames from one port; the ring's cursor
 * says afterwards how many runs took place, so no frame is resubmitted twice. */
#define FEED_SLOTS PF_LEARN_BATCH_MAX           /* a power of two */
#define FEED_MAX_LEN 2048

struct feed_slot {
	struct pf_xdp_meta meta;
	uint32_t len;
	uint32_t _pad;
	uint8_t data[FEED_MAX_LEN];
};

struct feed_cursor {
	uint64_t next;          /* runs so far: slot = next % FEED_SLOTS */
	uint64_t failed;        /* runs that did not reach the datapath */
};

struct ebpf_feed {
	int cursor_fd, slots_fd, progs_fd, prog_fd, netns_fd, link_fd;
	struct feed_cursor *cursor;
	struct feed_slot *slots;
	size_t cursor_len, slots_len;
	pthread_mutex_t lock;
};

#define I_ALU_IMM(op, dst, k) ((struct bpf_insn){ .code = BPF_ALU64 | BPF_K | (op), .dst_reg = (dst), .imm = (k) })
#define I_ALU_REG(op, dst, src) ((struct bpf_insn){ .code = BPF_ALU64 | BPF_X | (op), .dst_reg = (dst), .src_reg = (src) })
#define I_LDX(sz, dst, src, o) ((struct bpf_insn){ .code = BPF_LDX | BPF_MEM | (sz), .dst_reg = (dst), .src_reg = (src), .off = (o) })
#define I_STX(sz, dst, src, o) ((struct bpf_insn){ .code = BPF_STX | BPF_MEM | (sz), .dst_reg = (dst), .src_reg = (src), .off = (o) })
#define I_ST(sz, dst, o, k) ((struct bpf_insn){ .code = BPF_ST | BPF_MEM | (sz), .dst_reg = (dst), .off = (o), .imm = (k) })
#define I_JMP_IMM(op, dst, k, o) ((struct bpf_insn){ .code = BPF_JMP | BPF_K | (op), .dst_reg = (dst), .off = (o), .imm = (k) })
#define I_JMP_REG(op, dst, src, o) ((struct bpf_insn){ .code = BPF_JMP | BPF_X | (op), .dst_reg = (dst), .src_reg = (src), .off = (o) })
#define I_CALL(fn) ((struct bpf_insn){ .code = BPF_JMP | BPF_CALL, .imm = (fn) })
#define I_EXIT() ((struct bpf_insn){ .code = BPF_JMP | BPF_EXIT })
#define I_LD_MAP(dst, fd) ((struct bpf_insn){ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = (dst), \
					     .src_reg = BPF_PSEUDO_MAP_FD, .imm = (fd) }), ((struct bpf_insn){ 0 })
/* jumps to the program's exits (fail, drop, pass), patched once their places are known */
#define TO_FAIL 0x7ff0
#define TO_DROP 0x7ff1
#define TO_PASS 0x7ff2
#define FEED_MAGIC 0x70667264           /* in the seed frame's metadata */

static int feed_prog_load(struct ebpf_feed *f)
{
	struct bpf_insn insns[] = {
		I_ALU_REG(BPF_MOV, BPF_REG_6, BPF_REG_1),
		/* only the handler's own runs carry FEED_MAGIC ahead of the frame: anything else passes */
		I_LDX(BPF_W, BPF_REG_2, BPF_REG_6, offsetof(struct xdp_md, data_meta)),
		I_LDX(BPF_W, BPF_REG_3, BPF_REG_6, offsetof(struct xdp_md, data)),
		I_ALU_REG(BPF_MOV, BPF_REG_4, BPF_REG_2),
		I_ALU_IMM(BPF_ADD, BPF_REG_4, 4),
		I_JMP_REG(BPF_JGT, BPF_REG_4, BPF_REG_3, TO_PASS),
		I_LDX(BPF_W, BPF_REG_4, BPF_REG_2, 0),
		I_JMP_IMM(BPF_JNE, BPF_REG_4, FEED_MAGIC, TO_PASS),
		/* r9 = the cursor; r7 = its slot; cursor.next++ */
		I_ST(BPF_W, BPF_REG_10, -4, 0),
		I_ALU_REG(BPF_MOV, BPF_REG_2, BPF_REG_10),
		I_ALU_IMM(BPF_ADD, BPF_REG_2, -4),
		I_LD_MAP(BPF_REG_1, f->cursor_fd),
		I_CALL(BPF_FUNC_map_lookup_elem),
		I_JMP_IMM(BPF_JEQ, BPF_REG_0, 0, TO_DROP),
		I_ALU_REG(BPF_MOV, BPF_REG_9, BPF_REG_0),
		I_LDX(BPF_DW, BPF_REG_7, BPF_REG_9, 0),
		I_ALU_REG(BPF_MOV, BPF_REG_8, BPF_REG_7),
		I_ALU_IMM(BPF_ADD, BPF_REG_8, 1),
		I_STX(BPF_DW, BPF_REG_9, BPF_REG_8, 0),
		I_ALU_IMM(BPF_AND, BPF_REG_7, FEED_SLOTS - 1),
		I_STX(BPF_W, BPF_REG_10, BPF_REG_7, -4),
		I_ALU_REG(BPF_MOV, BPF_REG_2, BPF_REG_10),
		I_ALU_IMM(BPF_ADD, BPF_REG_2, -4),
		I_LD_MAP(BPF_REG_1, f->slots_fd),
		I_CALL(BPF_FUNC_map_lookup_elem),
		I_JMP_IMM(BPF_JEQ, BPF_REG_0, 0, TO_FAIL),
		I_ALU_REG(BPF_MOV, BPF_REG_7, BPF_REG_0),
		/* r8 = slot.len in [1, FEED_MAX_LEN] */
		I_LDX(BPF_W, BPF_REG_8, BPF_REG_7, offsetof(struct feed_slot, len)),
		I_ALU_IMM(BPF_ADD, BPF_REG_8, -1),
		I_JMP_IMM(BPF_JGT, BPF_REG_8, FEED_MAX_LEN - 1, TO_FAIL),
		I_ALU_IMM(BPF_ADD, BPF_REG_8, 1),
		/* the frame to slot.len bytes, then its bytes */
		I_ALU_REG(BPF_MOV, BPF_REG_1, BPF_REG_6),
		I_CALL(BPF_FUNC_xdp_get_buff_len),
		I_ALU_REG(BPF_MOV, BPF_REG_2, BPF_REG_8),
		I_ALU_REG(BPF_SUB, BPF_REG_2, BPF_REG_0),
		I_ALU_REG(BPF_MOV, BPF_REG_1, BPF_REG_6),
		I_CALL(BPF_FUNC_xdp_adjust_tail),
		I_JMP_IMM(BPF_JNE, BPF_REG_0, 0, TO_FAIL),
		I_ALU_REG(BPF_MOV, BPF_REG_1, BPF_REG_6),
		I_ALU_IMM(BPF_MOV, BPF_REG_2, 0),
		I_ALU_REG(BPF_MOV, BPF_REG_3, BPF_REG_7),
		I_ALU_IMM(BPF_ADD, BPF_REG_3, offsetof(struct feed_slot, data)),
		I_ALU_REG(BPF_MOV, BPF_REG_4, BPF_REG_8),
		I_CALL(BPF_FUNC_xdp_store_bytes),
		I_JMP_IMM(BPF_JNE, BPF_REG_0, 0, TO_FAIL),
		/* the metadata, right before the frame */
		I_LDX(BPF_W, BPF_REG_2, BPF_REG_6, offsetof(struct xdp_md, data_meta)),
		I_LDX(BPF_W, BPF_REG_3, BPF_REG_6, offsetof(struct xdp_md, data)),
		I_ALU_REG(BPF_MOV, BPF_REG_4, BPF_REG_2),
		I_ALU_IMM(BPF_ADD, BPF_REG_4, sizeof(struct pf_xdp_meta)),
		I_JMP_REG(BPF_JGT, BPF_REG_4, BPF_REG_3, TO_FAIL),
		I_LDX(BPF_DW, BPF_REG_5, BPF_REG_7, 0),
		I_STX(BPF_DW, BPF_REG_2, BPF_REG_5, 0),
		I_LDX(BPF_DW, BPF_REG_5, BPF_REG_7, 8),
		I_STX(BPF_DW, BPF_REG_2, BPF_REG_5, 8),
		I_ALU_REG(BPF_MOV, BPF_REG_1, BPF_REG_6),
		I_LD_MAP(BPF_REG_2, f->progs_fd),
		I_ALU_IMM(BPF_MOV, BPF_REG_3, 0),
		I_CALL(BPF_FUNC_tail_call),
		/* fail: cursor.failed++ */
		I_ALU_IMM(BPF_MOV, BPF_REG_1, 1),
		((struct bpf_insn){ .code = BPF_STX | BPF_ATOMIC | BPF_DW, .dst_reg = BPF_REG_9, .src_reg = BPF_REG_1,
				    .off = offsetof(struct feed_cursor, failed), .imm = BPF_ADD }),
		/* drop */
		I_ALU_IMM(BPF_MOV, BPF_REG_0, XDP_DROP),
		I_EXIT(),
		/* pass */
		I_ALU_IMM(BPF_MOV, BPF_REG_0, XDP_PASS),
		I_EXIT(),
	};
	int n = (int)(sizeof(insns) / sizeof(insns[0])), fail = n - 6, drop = n - 4, pass = n - 2;
	/* a program array takes programs of its owner's (this program's) attach type only */
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_XDP);

	for (int i = 0; i < n; i++) {
		if (BPF_CLASS(insns[i].code) != BPF_JMP || BPF_OP(insns[i].code) == BPF_CALL)
			continue;
		if (insns[i].off == TO_FAIL)
			insns[i].off = (int16_t)(fail - i - 1);
		else if (insns[i].off == TO_DROP)
			insns[i].off = (int16_t)(drop - i - 1);
		else if (insns[i].off == TO_PASS)
			insns[i].off = (int16_t)(pass - i - 1);
	}
	return bpf_prog_load(BPF_PROG_TYPE_XDP, "pf_resubmit", "Dual BSD/GPL", insns, (size_t)n, &opts);
}

static void feed_free(struct ebpf_feed *f)
{
	if (!f)
		return;
	if (f->cursor)
		munmap(f->cursor, f->cursor_len);
	if (f->slots)
		munmap(f->slots, f->slots_len);
	for (int *fd = &f->cursor_fd; fd <= &f->link_fd; fd++)
		if (*fd >= 0)
			close(*fd);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static void *feed_map(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

static size_t page_round(size_t len)
{
	size_t pg = (size_t)getpagesize();

	return (len + pg - 1) / pg * pg;
}

/* A BPF_PROG_RUN of more than one frame enters its program into the kernel's XDP dispatcher
 * and takes it out again afterwards, and each change waits for an RCU grace period (ms on a
 * busy host: measured 15-50 ms per call). A program attached to a device stays in the
 * dispatcher, so the loader is attached to the loopback of a network namespace of its own,
 * where no frame ever flows (and FEED_MAGIC lets anything there pass untouched anyway). */
static void *anchor_thread(void *arg)
{
	struct ebpf_feed *f = arg;
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = XDP_FLAGS_SKB_MODE);

	if (unshare(CLONE_NEWNET))
		return NULL;
	f->netns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (f->netns_fd >= 0)
		f->link_fd = bpf_link_create(f->prog_fd, 1 /* lo */, BPF_XDP, &opts);
	return NULL;
}

static int feed_anchor(struct ebpf_feed *f)
{
	pthread_t t;

	if (pthread_create(&t, NULL, anchor_thread, f))
		return -1;
	pthread_join(t, NULL);
	return f->link_fd >= 0 ? 0 : -1;
}

/* NULL when the kernel cannot (then every frame takes one BPF_PROG_RUN of its own) */
static struct ebpf_feed *feed_new(struct pf_ebpf *eb)
{
	LIBBPF_OPTS(bpf_map_create_opts, mopts, .map_flags = BPF_F_MMAPABLE);
	struct ebpf_feed *f = calloc(1, sizeof(*f));
	uint32_t zero = 0;
	const char *why = "out of memory";

	if (!f)
		return NULL;
	f->cursor_fd = f->slots_fd = f->progs_fd = f->prog_fd = f->netns_fd = f->link_fd = -1;
	pthread_mutex_init(&f->lock, NULL);
	f->cursor_len = page_round(sizeof(struct feed_cursor));
	f->slots_len = page_round(sizeof(struct feed_slot) * FEED_SLOTS);
	f->cursor_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "pf_feed_cursor", 4, sizeof(struct feed_cursor), 1, &mopts);
	f->slots_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "pf_feed_slots", 4, sizeof(struct feed_slot), FEED_SLOTS,
				     &mopts);
	f->progs_fd = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "pf_feed_progs", 4, 4, 1, NULL);
	if (f->cursor_fd < 0 || f->slots_fd < 0 || f->progs_fd < 0) {
		why = "cannot create its maps";
		goto fail;
	}
	f->cursor = feed_map(f->cursor_fd, f->cursor_len);
	f->slots = feed_map(f->slots_fd, f->slots_len);
	if (!f->cursor || !f->slots) {
		why = "cannot map its ring";
		goto fail;
	}
	f->prog_fd = feed_prog_load(f);
	if (f->prog_fd < 0) {
		why = "cannot load its program";
		goto fail;
	}
	if (bpf_map_update_elem(f->progs_fd, &zero, &eb->prog_fd, BPF_ANY)) {
		why = "cannot chain it to the datapath program";
		goto fail;
	}
	if (feed_anchor(f)) {
		why = "cannot keep it in the XDP dispatcher";
		goto fail;
	}
	return f;
fail:
	pf_warn("miss handler: batched resubmit unavailable (%s: %s); one BPF_PROG_RUN per frame", why,
		 strerror(errno));
	feed_free(f);
	return NULL;
}

/* Frames [0, n) of one port through the ring with one BPF_PROG_RUN; returns how many ran. */
static uint32_t feed_run(struct pf_ebpf *eb, struct ebpf_feed *f, const struct pf_miss_frame *frames, uint32_t n,
			 uint32_t *failed)
{
	struct ebpf_miss *m = eb->miss;
	uint8_t seed[sizeof(struct pf_xdp_meta) + 64] = { 0 };
	uint32_t magic = FEED_MAGIC;
	struct xdp_md ctx = { .data = sizeof(struct pf_xdp_meta), .data_end = sizeof(seed),
			      .ingress_ifindex = eb->ports[frames[0].port].ifindex };
	uint64_t start = f->cursor->next, failed0 = f->cursor->failed, ran;
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = seed, .data_size_in = sizeof(seed), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .repeat = n);

	memcpy(seed, &magic, sizeof(magic));
	for (uint32_t i = 0; i < n; i++) {
		struct feed_slot *s = &f->slots[(start + i) % FEED_SLOTS];
		uint32_t pipe = frames[i].pipe;

		s->meta = (struct pf_xdp_meta){ .magic = PF_XDP_META_MAGIC, .packet_path = PF_PATH_RESUBMIT,
						.port = frames[i].port,
						.pipe = pipe < PF_MAX_PIPES ? (uint16_t)pipe : 0xffff };
		s->len = frames[i].len;
		memcpy(s->data, frames[i].data, frames[i].len);
	}
	if (bpf_prog_test_run_opts(f->prog_fd, &opts))
		pf_debug("miss handler: batched resubmit of %u frames: %s", n, strerror(errno));
	ran = __atomic_load_n(&f->cursor->next, __ATOMIC_ACQUIRE) - start;
	if (ran > n)
		ran = n;
	/* duration: the mean per run, truncated to whole ns */
	if (m && pf_learner_profiling(m->learner))
		pf_learner_stage_add(m->learner, PF_STAGE_DATAPATH, (uint64_t)opts.duration * ran);
	*failed += (uint32_t)(__atomic_load_n(&f->cursor->failed, __ATOMIC_RELAXED) - failed0);
	return (uint32_t)ran;
}

static uint32_t op_resubmit_batch(void *backend, const struct pf_miss_frame *frames, uint32_t n, uint32_t *failed)
{
	struct pf_ebpf *eb = backend;
	struct ebpf_miss *m = eb->miss;
	struct ebpf_feed *f = m ? m->feed : NULL;
	uint32_t done = 0;

	*failed = 0;
	if (!f)
		return 0;
	pthread_mutex_lock(&f->lock);
	while (done < n) {
		uint32_t k = 0, ran;

		/* one run: consecutive frames of one port (one ingress device per call) that fit a slot */
		while (done + k < n && k < FEED_SLOTS && frames[done + k].port == frames[done].port &&
		       frames[done + k].port < PF_MAX_PORTS && eb->ports[frames[done + k].port].in_use &&
		       frames[done + k].len >= 14 && frames[done + k].len <= FEED_MAX_LEN)
			k++;
		if (!k)
			break;
		ran = feed_run(eb, f, frames + done, k, failed);
		done += ran;
		if (ran < k)
			break;
	}
	pthread_mutex_unlock(&f->lock);
	return done;
}

static const struct pf_learn_ops ebpf_learn_ops = {
	.install = op_install,
	.remove = op_remove,
	.last_seen = op_last_seen,
	.installed = op_installed,
	.resubmit = op_resubmit,
	.install_batch = op_install_batch,
	.resubmit_batch = op_resubmit_batch,
};

static struct ebpf_miss *miss_state(struct pf_ebpf *eb, struct pf_error *err)
{
	struct ebpf_miss *m = eb->miss;

	if (m)
		return m;
	m = calloc(1, sizeof(*m));
	if (!m) {
		pf_err(err, -ENOMEM, "out of memory");
		return NULL;
	}
	m->eb = eb;
	m->learner = pf_learner_new(&ebpf_learn_ops, eb);
	if (!m->learner) {
		free(m);
		pf_err(err, -ENOMEM, "out of memory");
		return NULL;
	}
	eb->miss = m;
	return m;
}

/* XDP sheds the policy's excess misses before they reach a handler thread. */
static int miss_limit_set(struct pf_ebpf *eb, struct ebpf_miss *m, const struct pf_learn *p, struct pf_error *err)
{
	struct pf_miss_limit lim = { 0 };
	struct pf_miss_bucket b;
	uint32_t key = p->from_pipe, burst = p->burst ? p->burst : p->rate_limit_pps;

	if (p->rate_limit_pps) {
		lim.interval_ns = 1000000000ull / p->rate_limit_pps;
		if (!lim.interval_ns)
			lim.interval_ns = 1;
		lim.tau_ns = (uint64_t)(burst ? burst - 1 : 0) * lim.interval_ns;
	}
	if (!m->limited[key] && !pf_ebpf_percpu_sum(eb, eb->map_miss_buckets, key, &b, sizeof(b)))
		m->shed_base[key] = b.shed;
	m->limited[key] = 1;
	if (bpf_map_update_elem(eb->map_miss_limits, &key, &lim, BPF_ANY))
		return pf_err(err, -errno, "miss policy of pipe %u: cannot write its rate limit: %s", key,
			      strerror(errno));
	return 0;
}

int pf_ebpf_miss_set_policy(struct pf_ebpf *eb, const struct pf_learn *policy, struct pf_error *err)
{
	struct ebpf_miss *m;
	struct pf_pipe pipe;
	struct pf_fields mask;
	int ret;

	if (policy->to_pipe >= PF_MAX_PIPES || policy->from_pipe >= PF_MAX_PIPES)
		return pf_err(err, -ERANGE, "miss policy: pipe ids %u -> %u out of range (max %u)", policy->from_pipe,
			      policy->to_pipe, PF_MAX_PIPES - 1);
	if (pf_ebpf_pipe_get(eb, policy->to_pipe, &pipe))
		return pf_err(err, -EINVAL, "miss policy of pipe %u: install pipe %u is not defined "
			      "(define the pipe before its miss policy)", policy->from_pipe, policy->to_pipe);
	if (pipe.type != PF_PIPE_BASIC)
		return pf_err(err, -EINVAL, "miss policy of pipe %u: install pipe %u must be a basic (exact match) pipe",
			      policy->from_pipe, policy->to_pipe);
	ret = pf_ebpf_mask_get(eb, policy->to_pipe, 0, &mask);
	if (ret)
		return pf_err(err, ret, "miss policy of pipe %u: cannot read the mask of pipe %u: %s",
			      policy->from_pipe, policy->to_pipe, strerror(-ret));
	m = miss_state(eb, err);
	if (!m)
		return -ENOMEM;
	ret = pf_learner_set_mask(m->learner, policy->to_pipe, &mask, err);
	if (!ret)
		ret = pf_learner_set_policy(m->learner, policy, err);
	if (ret)
		return ret;
	ret = miss_limit_set(eb, m, policy, err);
	if (ret)
		return ret;
	if (!m->npolicies++)
		m->only_pipe = policy->from_pipe;
	else if (m->only_pipe != policy->from_pipe)
		m->only_pipe = UINT32_MAX;
	/* the first policy of a running instance brings the sockets up */
	if (eb->started && !m->running)
		return pf_ebpf_miss_start(eb, err);
	return 0;
}

/* ---- sockets ------------------------------------------------------------ */

/* The kernel's drop counters of one socket (zeros if it cannot say). */
static void socket_stats(const struct miss_socket *s, struct xdp_statistics *st)
{
	socklen_t len = sizeof(*st);

	memset(st, 0, sizeof(*st));
	if (s->xsk && getsockopt(xsk_socket__fd(s->xsk), SOL_XDP, XDP_STATISTICS, st, &len))
		memset(st, 0, sizeof(*st));
}

static void stats_add(struct xdp_statistics *sum, const struct xdp_statistics *st)
{
	sum->rx_dropped += st->rx_dropped;
	sum->rx_ring_full += st->rx_ring_full;
	sum->rx_fill_ring_empty_descs += st->rx_fill_ring_empty_descs;
}

static void socket_close(struct pf_ebpf *eb, struct miss_socket *s)
{
	struct ebpf_miss *m = eb->miss;
	struct xdp_statistics st;

	socket_stats(s, &st);
	if (m)
		stats_add(&m->closed_stats, &st);
	if (s->in_map) {
		bpf_map_delete_elem(eb->map_xsks, &s->slot);
		s->in_map = 0;
	}
	if (s->xsk)
		xsk_socket__delete(s->xsk);
	if (s->umem)
		xsk_umem__delete(s->umem);
	free(s->area);
	memset(s, 0, sizeof(*s));
}

static int socket_open(struct pf_ebpf *eb, struct miss_socket *s, uint32_t port, uint32_t queue, uint32_t nframes,
		       uint32_t frame_size, struct pf_error *err)
{
	struct xsk_umem_config ucfg = {
		.fill_size = nframes,
		.comp_size = 64,
		.frame_size = frame_size,
		.frame_headroom = 0,
	};
	struct xsk_socket_config scfg = {
		.rx_size = nframes,
		.tx_size = 0,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = XDP_COPY,
	};
	const char *ifname = eb->ports[port].ifname;
	uint32_t idx;
	int fd, ret;

	s->nframes = nframes;
	s->frame_size = frame_size;
	s->port = port;
	s->queue = queue;
	s->slot = port * PF_MAX_QUEUES + queue;
	if (posix_memalign(&s->area, getpagesize(), (size_t)nframes * frame_size))
		return pf_err(err, -ENOMEM, "miss handler: no memory for the umem of %s queue %u", ifname, queue);
	ret = xsk_umem__create(&s->umem, s->area, (uint64_t)nframes * frame_size, &s->fill, &s->comp, &ucfg);
	if (ret) {
		s->umem = NULL;
		return pf_err(err, ret, "miss handler: cannot create the AF_XDP umem for %s queue %u: %s", ifname,
			      queue, strerror(-ret));
	}
	/* copy mode works on every driver (veth has no zero-copy) and keeps the metadata */
	ret = xsk_socket__create(&s->xsk, ifname, queue, s->umem, &s->rx, NULL, &scfg);
	if (ret) {
		s->xsk = NULL;
		return pf_err(err, ret, "miss handler: cannot bind an AF_XDP socket to %s queue %u: %s", ifname,
			      queue, strerror(-ret));
	}
	if (xsk_ring_prod__reserve(&s->fill, nframes, &idx) != nframes)
		return pf_err(err, -ENOSPC, "miss handler: fill ring of %s queue %u is too small", ifname, queue);
	for (uint32_t i = 0; i < nframes; i++)
		*xsk_ring_prod__fill_addr(&s->fill, idx + i) = (uint64_t)i * frame_size;
	xsk_ring_prod__submit(&s->fill, nframes);
	fd = xsk_socket__fd(s->xsk);
	if (bpf_map_update_elem(eb->map_xsks, &s->slot, &fd, BPF_ANY))
		return pf_err(err, -errno, "miss handler: cannot insert the socket of %s queue %u into the XSKMAP "
			      "(slot %u): %s", ifname, queue, s->slot, strerror(errno));
	s->in_map = 1;
	return 0;
}

/* ---- the handler thread ------------------------------------------------- */

/* Where a frame came from: its metadata, else the socket's port and the only policy's pipe. */
static void frame_origin(struct ebpf_miss *m, struct miss_socket *s, const struct xdp_desc *d,
			 struct pf_miss_frame *fr)
{
	uint64_t addr = xsk_umem__add_offset_to_addr(d->addr);
	const uint8_t *pkt = xsk_umem__get_data(s->area, addr);
	struct pf_xdp_meta meta;

	fr->data = pkt;
	fr->len = d->len;
	fr->port = s->port;
	fr->pipe = m->only_pipe;
	fr->packet_path = PF_PATH_NORMAL;
	if (addr % s->frame_size < sizeof(meta))
		return;
	memcpy(&meta, pkt - sizeof(meta), sizeof(meta));
	if (meta.magic == PF_XDP_META_MAGIC) {
		fr->port = meta.port;
		fr->pipe = meta.pipe;
		fr->packet_path = meta.packet_path;
	} else if (!__atomic_fetch_add(&m->bad_meta, 1, __ATOMIC_RELAXED)) {
		pf_warn("miss handler: frames on %s queue %u carry no metadata; using the socket's port",
			m->eb->ports[s->port].ifname, s->queue);
	}
}

/* Take up to MISS_BATCH frames, hand them to the learner as one batch (one map
 * write for all their new flows), then give the umem frames back to the fill ring. */
static uint32_t drain_socket(struct ebpf_miss *m, struct miss_socket *s)
{
	struct pf_miss_frame frames[MISS_BATCH];
	uint32_t idx_rx, idx_fill, n;

	n = xsk_ring_cons__peek(&s->rx, MISS_BATCH, &idx_rx);
	if (!n)
		return 0;
	uint64_t rx_ns = pf_now_ns(), t;

	for (uint32_t i = 0; i < n; i++) {
		frame_origin(m, s, xsk_ring_cons__rx_desc(&s->rx, idx_rx + i), &frames[i]);
		frames[i].rx_ns = rx_ns;
	}
	if (pf_learner_profiling(m->learner))
		pf_learner_stage_add(m->learner, PF_STAGE_RX, pf_now_ns() - rx_ns);
	pf_learner_handle_batch(m->learner, frames, n);
	t = pf_learner_profiling(m->learner) ? pf_now_ns() : 0;
	/* give the frames back; the fill ring can always take what rx returned */
	while (xsk_ring_prod__reserve(&s->fill, n, &idx_fill) != n)
		;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t addr = xsk_umem__extract_addr(xsk_ring_cons__rx_desc(&s->rx, idx_rx + i)->addr);

		*xsk_ring_prod__fill_addr(&s->fill, idx_fill + i) = addr - addr % s->frame_size;
	}
	xsk_ring_prod__submit(&s->fill, n);
	xsk_ring_cons__release(&s->rx, n);
	if (t)
		pf_learner_stage_add(m->learner, PF_STAGE_TX, pf_now_ns() - t);
	return n;
}

static void *miss_thread(void *arg)
{
	struct miss_worker *w = arg;
	struct ebpf_miss *m = w->m;
	struct pollfd *pfds = calloc(m->nsocks, sizeof(*pfds));
	struct miss_socket **mine = calloc(m->nsocks, sizeof(*mine));
	uint64_t next_sweep = 0;
	uint32_t n = 0;

	if (!pfds || !mine)
		goto out;
	{
		char name[16];

		snprintf(name, sizeof(name), "pf-miss/%u", w->index);
		pthread_setname_np(pthread_self(), name);
	}
	for (uint32_t i = w->index; i < m->nsocks; i += m->nthreads) {
		mine[n] = &m->socks[i];
		pfds[n].fd = xsk_socket__fd(m->socks[i].xsk);
		pfds[n].events = POLLIN;
		n++;
	}
	while (!__atomic_load_n(&m->stop, __ATOMIC_ACQUIRE)) {
		uint32_t got = 0;
		uint64_t every, now;

		for (uint32_t i = 0; i < n; i++)
			got += drain_socket(m, mine[i]);
		if (got)
			pf_learner_stage_batch(m->learner, got);
		if (!got)
			poll(pfds, n, MISS_POLL_MS);
		if (w->index != 0)
			continue;
		now = pf_now_ns();
		if (!got)
			pf_learner_stages_idle(m->learner, "ebpf", now);
		if (now < next_sweep)
			continue;
		every = pf_learner_sweep_interval_ns(m->learner);
		if (every) {
			seen_refresh(m);
			pf_learner_sweep(m->learner, now);
			m->seen_valid = 0;
		}
		next_sweep = now + (every ? every : PF_LEARN_SWEEP_RECHECK_NS);
	}
out:
	free(mine);
	free(pfds);
	return NULL;
}

static uint32_t port_mtu(const char *ifname)
{
	char path[300];
	unsigned mtu = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/net/%s/mtu", ifname);
	f = fopen(path, "r");
	if (!f)
		return 1500;
	if (fscanf(f, "%u", &mtu) != 1)
		mtu = 1500;
	fclose(f);
	return mtu;
}

/* rx queues of a port that get a socket: the interface's, capped by the instance's nqueues */
static uint32_t port_queues(struct pf_ebpf *eb, uint32_t port)
{
	uint32_t nq = pf_ebpf_rx_queue_count(eb->ports[port].ifname);

	if (eb->nqueues && eb->nqueues < nq)
		nq = eb->nqueues;
	return nq > PF_MAX_QUEUES ? PF_MAX_QUEUES : nq;
}

/* Entries learned before a restart are pinned: count them and age them again. */
static void adopt_pinned(struct ebpf_miss *m)
{
	struct pf_ebpf *eb = m->eb;
	uint32_t n = 0;

	/* the slots were rebuilt from both exact tables at load */
	pthread_mutex_lock(&eb->lock);
	for (uint32_t id = 0; id < eb->max_entries; id++) {
		const struct pf_ebpf_slot *s = &eb->slots[id];

		if (s->kind != PF_EBPF_SLOT_HASH || !(s->entry.flags & PF_ENTRY_LEARNED))
			continue;
		pf_learner_adopt(m->learner, s->pipe, &s->flow_key.f, id);
		n++;
	}
	pthread_mutex_unlock(&eb->lock);
	if (n)
		pf_info("miss handler: adopted %u learned entries", n);
}

static void set_config_flag(struct pf_ebpf *eb, int on)
{
	struct pf_config cfg;
	uint32_t zero = 0;

	if (bpf_map_lookup_elem(eb->map_config, &zero, &cfg))
		return;
	if (on)
		cfg.flags |= PF_CFG_MISS_HANDLER;
	else
		cfg.flags &= ~PF_CFG_MISS_HANDLER;
	bpf_map_update_elem(eb->map_config, &zero, &cfg, BPF_ANY);
}

int pf_ebpf_miss_start(struct pf_ebpf *eb, struct pf_error *err)
{
	struct ebpf_miss *m = eb->miss;
	uint32_t nports = 0, n = 0, total = 0, nframes = MISS_FRAMES_MAX, frame_size = MISS_FRAME_SMALL;
	uint32_t nq[PF_MAX_PORTS] = { 0 };     /* sockets per port, 0: not bound */
	int ret;

	if (!m || !m->npolicies || m->running)
		return 0;
	for (uint32_t p = 0; p < PF_MAX_PORTS; p++)
		if (eb->ports[p].in_use && eb->ports[p].ifindex) {
			nq[p] = port_queues(eb, p);
			total += nq[p];
			nports++;
			if (port_mtu(eb->ports[p].ifname) > MISS_FRAME_SMALL_MAX_MTU)
				frame_size = MISS_FRAME_LARGE;
		}
	if (!nports)
		return pf_err(err, -EINVAL, "miss handler: no port is bound to an interface");
	m->socks = calloc(total, sizeof(*m->socks));
	if (!m->socks)
		return pf_err(err, -ENOMEM, "out of memory");
	/* ring sizes are powers of two */
	while (nframes > MISS_FRAMES_MIN && (uint64_t)nframes * frame_size * total > MISS_BYTES_BUDGET)
		nframes /= 2;
	for (uint32_t p = 0; p < PF_MAX_PORTS; p++) {
		for (uint32_t q = 0; q < nq[p]; q++) {
			ret = socket_open(eb, &m->socks[n], p, q, nframes, frame_size, err);
			n++;
			m->nsocks = n;
			if (ret)
				goto fail;
		}
	}
	adopt_pinned(m);
	if (!m->feed)
		m->feed = feed_new(eb);
	m->stop = 0;
	m->nthreads = eb->miss_threads ? eb->miss_threads : 1;
	if (m->nthreads > MISS_MAX_THREADS)
		m->nthreads = MISS_MAX_THREADS;
	if (m->nthreads > m->nsocks)
		m->nthreads = m->nsocks;
	for (uint32_t t = 0; t < m->nthreads; t++) {
		m->workers[t].m = m;
		m->workers[t].index = t;
		ret = pthread_create(&m->workers[t].thread, NULL, miss_thread, &m->workers[t]);
		if (ret) {
			ret = pf_err(err, -ret, "miss handler: cannot start thread %u: %s", t, strerror(ret));
			__atomic_store_n(&m->stop, 1, __ATOMIC_RELEASE);
			for (uint32_t j = 0; j < t; j++)
				pthread_join(m->workers[j].thread, NULL);
			goto fail;
		}
	}
	m->running = 1;
	set_config_flag(eb, 1);
	pf_debug("miss handler: %u threads, %u AF_XDP sockets on %u ports, rings of %u frames of %u bytes",
		 m->nthreads, m->nsocks, nports, nframes, frame_size);
	return 0;
fail:
	for (uint32_t i = 0; i < m->nsocks; i++)
		socket_close(eb, &m->socks[i]);
	free(m->socks);
	m->socks = NULL;
	m->nsocks = 0;
	return ret;
}

void pf_ebpf_miss_stop(struct pf_ebpf *eb)
{
	struct ebpf_miss *m = eb->miss;

	if (!m)
		return;
	if (m->running) {
		set_config_flag(eb, 0);
		__atomic_store_n(&m->stop, 1, __ATOMIC_RELEASE);
		for (uint32_t t = 0; t < m->nthreads; t++)
			pthread_join(m->workers[t].thread, NULL);
		m->running = 0;
		pf_learner_stages_dump(m->learner, "ebpf");
	}
	feed_free(m->feed);
	m->feed = NULL;
	for (uint32_t i = 0; i < m->nsocks; i++)
		socket_close(eb, &m->socks[i]);
	free(m->socks);
	m->socks = NULL;
	m->nsocks = 0;
}

void pf_ebpf_miss_free(struct pf_ebpf *eb)
{
	struct ebpf_miss *m = eb->miss;

	if (!m)
		return;
	pf_ebpf_miss_stop(eb);
	pf_learner_free(m->learner);
	free(m->seen);
	free(m);
	eb->miss = NULL;
}

void pf_ebpf_miss_stats(struct pf_ebpf *eb, struct pf_miss_stats *out)
{
	struct ebpf_miss *m = eb->miss;

	if (!m) {
		memset(out, 0, sizeof(*out));
		return;
	}
	pf_learner_stats(m->learner, out);
	/* the kernel's side: frames that never reached a handler thread */
	{
		struct xdp_statistics sum = m->closed_stats, st;

		for (uint32_t i = 0; i < m->nsocks; i++) {
			socket_stats(&m->socks[i], &st);
			stats_add(&sum, &st);
		}
		/* rx_dropped includes the fill-ring-empty case; rx_ring_full is counted apart */
		out->ring_drops = sum.rx_dropped + sum.rx_ring_full;
		out->rx_ring_full = sum.rx_ring_full;
		out->fill_ring_empty = sum.rx_fill_ring_empty_descs;
	}
	/* descriptors the kernel produced that a handler has not released yet */
	out->queue_depth = 0;
	for (uint32_t i = 0; i < m->nsocks; i++) {
		const struct xsk_ring_cons *rx = &m->socks[i].rx;

		if (m->socks[i].xsk && rx->producer)
			out->queue_depth += (uint32_t)(__atomic_load_n(rx->producer, __ATOMIC_ACQUIRE) -
						       __atomic_load_n(rx->consumer, __ATOMIC_RELAXED));
	}
	out->install_batches = __atomic_load_n(&eb->install_batches, __ATOMIC_RELAXED);
	/* shed in XDP: never received, but shed by the policy's rate limit all the same */
	for (uint32_t pipe = 0; pipe < PF_MAX_PIPES; pipe++) {
		struct pf_miss_bucket b;

		if (m->limited[pipe] && !pf_ebpf_percpu_sum(eb, eb->map_miss_buckets, pipe, &b, sizeof(b)))
			out->shed_in_datapath += b.shed - m->shed_base[pipe];
	}
	out->shed_rate_limit += out->shed_in_datapath;
}
