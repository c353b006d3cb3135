// SPDX-License-Identifier: BSD-2-Clause
/*
 * Sanitizer driver: the C core's user-space packet code (bpf/include/pyflow/packet.h) and the miss
 * policy engine (native/src/miss/learn.c, #included) run over a corpus of fuzz frames, built with
 * -fsanitize=address,undefined. Any out-of-bounds access, overflow or misaligned read aborts.
 *
 * Corpus: records of a little-endian uint16 length and that many bytes.
 * Output (stdout, one line): frames=N parsed=N malformed=N acted=N act_failed=N learned=N stats...
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../native/src/miss/learn.c"

/* what learn.c needs from the core (native/src/core.c), without the rest of it */
int pf_err(struct pf_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (code > 0)
		code = -code;
	if (err) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

void pf_log(int level, const char *fmt, ...)
{
	(void)level;
	(void)fmt;
}

int pf_log_enabled(int level)
{
	(void)level;
	return 1;       /* format every message: the formatting is checked too */
}

/* ---- a backend that keeps entries in memory ---- */

#define MAX_ENTRIES 4096

struct mem_backend {
	struct pf_fields match[MAX_ENTRIES];
	uint32_t pipe[MAX_ENTRIES];
	uint8_t used[MAX_ENTRIES];
	uint64_t seen[MAX_ENTRIES];
	uint64_t installs, removes, resubmits, resubmit_bytes;
};

static int mem_install(void *backend, uint32_t pipe, const struct pf_fields *match, struct pf_entry *entry,
		       struct pf_error *err)
{
	struct mem_backend *b = backend;

	for (uint32_t i = 0; i < MAX_ENTRIES; i++) {
		if (b->used[i])
			continue;
		b->used[i] = 1;
		b->match[i] = *match;
		b->pipe[i] = pipe;
		b->seen[i] = 0;
		entry->id = i;
		b->installs++;
		return 0;
	}
	return pf_err(err, -ENOSPC, "memory backend full");
}

static int mem_remove(void *backend, uint32_t id, struct pf_error *err)
{
	struct mem_backend *b = backend;

	if (id >= MAX_ENTRIES || !b->used[id])
		return pf_err(err, -ENOENT, "entry %u: no such entry", id);
	b->used[id] = 0;
	b->removes++;
	return 0;
}

static uint64_t mem_last_seen(void *backend, uint32_t id)
{
	struct mem_backend *b = backend;

	return id < MAX_ENTRIES ? b->seen[id] : 0;
}

static int mem_installed(void *backend, uint32_t pipe, const struct pf_fields *match, uint32_t id)
{
	struct mem_backend *b = backend;

	return id < MAX_ENTRIES && b->used[id] && b->pipe[id] == pipe && !memcmp(&b->match[id], match, sizeof(*match));
}

static int mem_resubmit(void *backend, uint32_t port, uint32_t pipe, const void *frame, uint32_t len,
			struct pf_error *err)
{
	struct mem_backend *b = backend;
	const volatile uint8_t *p = frame;
	uint8_t x = 0;

	(void)port;
	(void)pipe;
	(void)err;
	for (uint32_t i = 0; i < len; i++)      /* the whole frame must still be readable */
		x ^= p[i];
	b->resubmits++;
	b->resubmit_bytes += len + (x & 0);
	return 0;
}

static const struct pf_learn_ops mem_ops = {
	.install = mem_install, .remove = mem_remove, .last_seen = mem_last_seen,
	.installed = mem_installed, .resubmit = mem_resubmit,
};

/* ---- actions on a copy of the frame, with headroom for pushes ---- */

static const uint32_t action_sets[] = {
	PF_ACT_DEC_TTL,
	PF_ACT_SET_IPV4_SRC | PF_ACT_SET_IPV4_DST | PF_ACT_SET_L4_DPORT,
	PF_ACT_SET_IPV6_DST | PF_ACT_SET_L4_SPORT | PF_ACT_SET_DSCP,
	PF_ACT_PUSH_VLAN,
	PF_ACT_POP_VLAN | PF_ACT_SET_ETH_DST,
	PF_ACT_SET_VLAN,
	PF_ACT_PUSH_MPLS,
	PF_ACT_POP_MPLS,
	PF_ACT_POP_MPLS | PF_ACT_PUSH_MPLS | PF_ACT_DEC_TTL,
	PF_ACT_POP_VLAN | PF_ACT_PUSH_VLAN | PF_ACT_SET_DSCP | PF_ACT_DROP_PCT,
};

static int act_on(const uint8_t *frame, uint32_t len, uint32_t flags)
{
	uint8_t *mem = malloc(len + 64);        /* exactly sized: ASan sees one byte past the end */
	struct pf_buf b = { .base = mem, .data = mem + 64, .len = len, .cap = len + 64 };
	struct pf_actions act;
	struct pf_pkt pkt;
	int ret;

	memcpy(b.data, frame, len);
	memset(&act, 0, sizeof(act));
	act.flags = flags;
	act.ipv4_src = 0x01020304;
	act.ipv4_dst = 0x05060708;
	memset(act.ipv6_dst, 0x20, 16);
	act.l4_sport = 0x1111;
	act.l4_dport = 0x2222;
	act.dscp = 46;
	act.vlan_id = 100;
	act.mpls_count = 3;
	act.mpls_labels[0] = 16;
	act.mpls_labels[1] = 17;
	act.mpls_labels[2] = 1048575;
	act.mpls_pop_count = 2;
	act.drop_pct = 50;
	pf_pkt_clear(&pkt);
	if (pf_parse(b.data, b.data + b.len, &pkt) < 0)
		ret = -100;
	else
		ret = pf_apply_actions(&b, &pkt, &act);
	if (ret >= 0) {         /* the frame after the actions parses within its new bounds */
		struct pf_pkt again;

		pf_pkt_clear(&again);
		(void)pf_parse(b.data, b.data + b.len, &again);
	}
	free(mem);
	return ret;
}

static void set_policy(struct pf_learner *l, uint32_t from, uint32_t to, const struct pf_fields *mask,
		       uint32_t max_flows, uint32_t rate)
{
	struct pf_learn p;
	struct pf_error err;

	memset(&p, 0, sizeof(p));
	p.from_pipe = from;
	p.to_pipe = to;
	p.max_flows = max_flows;
	p.idle_timeout_ms = 1;
	p.rate_limit_pps = rate;
	p.burst = rate ? 50 : 0;
	p.entry_flags = PF_ENTRY_LEARNED;
	p.fwd.type = PF_FWD_PORT;
	p.fwd.target = 1;
	p.nsets = 3;
	p.sets[0].action = PF_ACT_SET_IPV4_DST;
	p.sets[0].op = PF_EXPR_FIELD_ADD;
	p.sets[0].src_field = PF_FIELD_IPV4_SRC;
	memcpy(p.sets[0].value, "\x01\x01\x01\x01", 4);
	p.sets[1].action = PF_ACT_SET_IPV6_SRC;
	p.sets[1].op = PF_EXPR_POOL;
	memset(p.sets[1].value, 0xfd, 16);
	p.sets[1].pool_size = 1000;
	p.sets[2].action = PF_ACT_SET_L4_DPORT;
	p.sets[2].op = PF_EXPR_FIELD;
	p.sets[2].src_field = PF_FIELD_L4_SPORT;
	if (pf_learner_set_mask(l, to, mask, &err) || pf_learner_set_policy(l, &p, &err)) {
		fprintf(stderr, "policy: %s\n", err.msg);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	static struct mem_backend backend;
	struct pf_fields m4, m6;
	struct pf_miss_stats st;
	struct pf_learner *l;
	uint64_t frames = 0, parsed = 0, malformed = 0, acted = 0, act_failed = 0, batches = 0;
	static uint8_t buf[65536];
	struct pf_miss_frame batch[PF_LEARN_BATCH_MAX];
	uint8_t *held[PF_LEARN_BATCH_MAX];
	uint32_t nb = 0;
	FILE *f;

	if (argc != 2 || !(f = fopen(argv[1], "rb"))) {
		fprintf(stderr, "usage: %s CORPUS\n", argv[0]);
		return 2;
	}
	l = pf_learner_new(&mem_ops, &backend);
	if (!l)
		return 2;
	memset(&m4, 0, sizeof(m4));
	m4.ipv4_src = 0xffffffff;
	memset(&m6, 0, sizeof(m6));
	memset(m6.ipv6_src, 0xff, 16);
	m6.l4_dport = 0xffff;
	set_policy(l, 1, 1, &m4, 50, 0);        /* table fills: refusals */
	set_policy(l, 2, 3, &m6, 2000, 1000);   /* rate limited: shedding */

	for (;;) {
		uint8_t hdr[2];
		uint32_t len;
		struct pf_pkt pkt;

		if (fread(hdr, 1, 2, f) != 2)
			break;
		len = hdr[0] | (uint32_t)hdr[1] << 8;
		if (fread(buf, 1, len, f) != len)
			break;
		frames++;
		{
			/* an exactly sized copy, so a read past the frame is a heap overflow */
			uint8_t *frame = malloc(len ? len : 1);

			memcpy(frame, buf, len);
			pf_pkt_clear(&pkt);
			if (pf_parse(frame, frame + len, &pkt) < 0) {
				malformed++;
			} else {
				struct pf_pkt deferred;

				parsed++;
				pf_pkt_clear(&deferred);
				(void)pf_parse_ex(frame, frame + len, &deferred, PF_PARSE_DEFER_MPEGTS);
				pf_pkt_mpegts(frame, frame + len, &deferred);
				if (deferred.f.mpegts_frame != pkt.f.mpegts_frame) {
					fprintf(stderr, "frame %llu: deferred MPEG-TS class %u, parsed %u\n",
						(unsigned long long)frames, deferred.f.mpegts_frame, pkt.f.mpegts_frame);
					return 1;
				}
				(void)pf_flow_hash(&pkt.f);
			}
			int ret = act_on(frame, len, action_sets[frames % (sizeof(action_sets) / sizeof(action_sets[0]))]);
			if (ret == 0 || ret == PF_ACT_SAMPLED_DROP)
				acted++;
			else if (ret != -100)
				act_failed++;

			/* every frame is a miss of pipe 1 or 2; half go one at a time, half in batches */
			if (frames & 1) {
				(void)pf_learner_handle(l, (uint32_t)(frames % 3), 1 + (uint32_t)(frames & 2) / 2, frame, len);
				free(frame);
			} else {
				held[nb] = frame;
				batch[nb] = (struct pf_miss_frame){ .data = frame, .len = len, .port = 0,
								   .pipe = 1 + (uint32_t)(frames & 2) / 2,
								   .packet_path = (frames % 7) ? PF_PATH_NORMAL : PF_PATH_RESUBMIT };
				if (++nb == PF_LEARN_BATCH_MAX) {
					(void)pf_learner_handle_batch(l, batch, nb);
					for (uint32_t i = 0; i < nb; i++)
						free(held[i]);
					nb = 0;
					batches++;
				}
			}
		}
		if (frames % 20000 == 0)
			pf_learner_sweep(l, pf_now_ns() + 10000000ull);   /* everything idle: aged out */
	}
	if (nb) {
		(void)pf_learner_handle_batch(l, batch, nb);
		for (uint32_t i = 0; i < nb; i++)
			free(held[i]);
	}
	fclose(f);
	pf_learner_stats(l, &st);
	printf("frames=%llu parsed=%llu malformed=%llu acted=%llu act_failed=%llu batches=%llu flows=%u "
	       "received=%llu installed=%llu resubmitted=%llu refused_max_flows=%llu shed_rate_limit=%llu aged_out=%llu "
	       "backend_installs=%llu backend_removes=%llu\n",
	       (unsigned long long)frames, (unsigned long long)parsed, (unsigned long long)malformed,
	       (unsigned long long)acted, (unsigned long long)act_failed, (unsigned long long)batches,
	       pf_learner_flow_count(l), (unsigned long long)st.received, (unsigned long long)st.installed,
	       (unsigned long long)st.resubmitted, (unsigned long long)st.refused_max_flows,
	       (unsigned long long)st.shed_rate_limit, (unsigned long long)st.aged_out,
	       (unsigned long long)backend.installs, (unsigned long long)backend.removes);
	pf_learner_free(l);
	return 0;
}
