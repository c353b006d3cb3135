// SPDX-License-Identifier: BSD-2-Clause
/* Miss policy engine: from a missed frame to an installed entry and a resubmit. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "pyflow/packet.h"
#include "miss/miss.h"

#define LEARN_BUCKETS (1u << 16)
/* Frames queued behind the one that installed their entry arrive within
 * microseconds; a known flow still missing after this long lost its entry
 * (deleted through the control API) and is installed again. */
#define LEARN_SETTLE_NS 50000000ull

struct learn_flow {
	struct learn_flow *next;
	struct pf_flow_key key;         /* install pipe + masked fields */
	uint32_t entry_id;
	uint32_t pending_req;           /* install request of the batch being handled, or LEARN_NOT_PENDING */
	uint64_t created_ns;
};

#define LEARN_NOT_PENDING UINT32_MAX

struct learn_policy {
	struct pf_learn p;
	double tokens;
	uint64_t refill_ns;
};

struct pf_learner {
	const struct pf_learn_ops *ops;
	void *backend;
	pthread_mutex_t lock;
	struct learn_policy *policies[PF_MAX_PIPES];    /* by the pipe that misses */
	struct pf_fields masks[PF_MAX_PIPES];           /* by install pipe */
	uint8_t mask_known[PF_MAX_PIPES];
	uint32_t flows_in_pipe[PF_MAX_PIPES];
	uint64_t idle_ns[PF_MAX_PIPES];                 /* by install pipe */
	struct learn_flow **buckets;
	uint32_t nflows;
	struct pf_miss_stats stats;                     /* updated with atomics */
	/* stage profile (PYFLOW_MISS_STAGES): summed with atomics, several handler threads add */
	int prof;
	uint64_t stage_ns[PF_STAGE_COUNT];
	uint64_t prof_batches, prof_frames;
	uint64_t prof_batched, prof_single;     /* frames resubmitted by resubmit_batch / one by one */
	uint64_t prof_last_ns;                  /* the last batch handled */
};

#define STAT_INC(l, field) __atomic_fetch_add(&(l)->stats.field, 1, __ATOMIC_RELAXED)

/* ---- parsing ----------------------------------------------------------- */

/* The datapath's own parser (bpf/include/pyflow/packet.h), so the learned
 * match is exactly what the datapath will look up. 0 or -EINVAL (meta fields left 0). */
static int learn_parse(const void *frame, uint32_t len, struct pf_fields *f)
{
	struct pf_pkt pkt;

	pf_pkt_clear(&pkt);
	if (pf_parse(frame, (const uint8_t *)frame + len, &pkt) < 0) {
		memset(f, 0, sizeof(*f));
		return -EINVAL;
	}
	*f = pkt.f;
	return 0;
}

/* ---- expressions ------------------------------------------------------ */

/* Values are handled as big-endian byte strings of the destination's width,
 * so "ipv4.src + 1.1.1.1" is a bytewise add with carry in network order. */
struct field_desc {
	uint16_t offset;
	uint8_t width;
	uint8_t numeric;        /* host-order integer in the struct */
};

#define FD(member, num) { offsetof(struct pf_fields, member), sizeof(((struct pf_fields *)0)->member), num }
static const struct field_desc field_descs[PF_FIELD_COUNT] = {
	[PF_FIELD_META_PORT] = FD(port, 1),
	[PF_FIELD_META_MARK] = FD(mark, 1),
	[PF_FIELD_META_PACKET_PATH] = FD(packet_path, 1),
	[PF_FIELD_MPEGTS_FRAME] = FD(mpegts_frame, 1),
	[PF_FIELD_IP_PROTO] = FD(ip_proto, 1),
	[PF_FIELD_IP_TTL] = FD(ip_ttl, 1),
	[PF_FIELD_IP_DSCP] = FD(ip_dscp, 1),
	[PF_FIELD_TCP_FLAGS] = FD(tcp_flags, 1),
	[PF_FIELD_ETH_TYPE] = FD(eth_type, 0),
	[PF_FIELD_ETH_DST] = FD(eth_dst, 0),
	[PF_FIELD_ETH_SRC] = FD(eth_src, 0),
	[PF_FIELD_VLAN_ID] = FD(vlan_id, 1),
	[PF_FIELD_VLAN_INNER] = FD(vlan_inner, 1),
	[PF_FIELD_MPLS_LABEL] = FD(mpls_label, 1),
	[PF_FIELD_IPV4_SRC] = FD(ipv4_src, 0),
	[PF_FIELD_IPV4_DST] = FD(ipv4_dst, 0),
	[PF_FIELD_IPV6_SRC] = FD(ipv6_src, 0),
	[PF_FIELD_IPV6_DST] = FD(ipv6_dst, 0),
	[PF_FIELD_L4_SPORT] = FD(l4_sport, 0),
	[PF_FIELD_L4_DPORT] = FD(l4_dport, 0),
};
#undef FD

struct action_desc {
	uint32_t flag;
	uint16_t offset;
	uint8_t width;
	uint8_t numeric;
};

#define AD(flag, member, num) { flag, offsetof(struct pf_actions, member), sizeof(((struct pf_actions *)0)->member), num }
static const struct action_desc action_descs[] = {
	AD(PF_ACT_SET_ETH_SRC, eth_src, 0),
	AD(PF_ACT_SET_ETH_DST, eth_dst, 0),
	AD(PF_ACT_SET_IPV4_SRC, ipv4_src, 0),
	AD(PF_ACT_SET_IPV4_DST, ipv4_dst, 0),
	AD(PF_ACT_SET_IPV6_SRC, ipv6_src, 0),
	AD(PF_ACT_SET_IPV6_DST, ipv6_dst, 0),
	AD(PF_ACT_SET_L4_SPORT, l4_sport, 0),
	AD(PF_ACT_SET_L4_DPORT, l4_dport, 0),
	AD(PF_ACT_SET_DSCP, dscp, 1),
	AD(PF_ACT_SET_VLAN, vlan_id, 1),
	AD(PF_ACT_PUSH_VLAN, vlan_id, 1),
	AD(PF_ACT_SET_MARK, mark, 1),
	AD(PF_ACT_PUSH_MPLS, mpls_labels[0], 1),
};
#undef AD

static const struct action_desc *action_desc_of(uint32_t flag)
{
	for (size_t i = 0; i < sizeof(action_descs) / sizeof(action_descs[0]); i++)
		if (action_descs[i].flag == flag)
			return &action_descs[i];
	return NULL;
}

static void store_uint(void *p, unsigned width, uint64_t v)
{
	uint8_t b = (uint8_t)v;
	uint16_t h = (uint16_t)v;
	uint32_t w = (uint32_t)v;

	switch (width) {
	case 1: memcpy(p, &b, 1); break;
	case 2: memcpy(p, &h, 2); break;
	default: memcpy(p, &w, 4); break;
	}
}

static void uint_to_be(uint64_t v, uint8_t *out, unsigned width)
{
	for (int i = (int)width - 1; i >= 0; i--, v >>= 8)
		out[i] = (uint8_t)v;
}

static uint64_t be_to_uint(const uint8_t *in, unsigned width)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < width; i++)
		v = v << 8 | in[i];
	return v;
}

/* out[0..width) = out + addend (both big-endian, carry from the last byte, wraps) */
static void be_add(uint8_t *out, const uint8_t *addend, unsigned width)
{
	unsigned carry = 0;

	for (int i = (int)width - 1; i >= 0; i--) {
		unsigned s = out[i] + addend[i] + carry;
		out[i] = (uint8_t)s;
		carry = s >> 8;
	}
}

static void be_add_uint(uint8_t *out, uint64_t v, unsigned width)
{
	uint8_t add[16] = { 0 };

	uint_to_be(v, add, width);
	be_add(out, add, width);
}

/* the constant of a set, as a big-endian string of the destination's width */
static void const_value(const struct pf_learn_set *s, const struct action_desc *ad, uint8_t *out)
{
	if (ad->numeric) {
		uint32_t v;

		memcpy(&v, s->value, 4);
		uint_to_be(v, out, ad->width);
	} else {
		memcpy(out, s->value, ad->width);
	}
}

/* a packet field right-aligned into a big-endian string of width bytes */
static void field_value(const struct pf_fields *pkt, uint16_t id, uint8_t *out, unsigned width)
{
	const struct field_desc *fd = &field_descs[id];
	const uint8_t *src = (const uint8_t *)pkt + fd->offset;
	uint8_t tmp[16] = { 0 };

	if (fd->numeric)
		uint_to_be(pf_load_uint(src, fd->width), tmp, fd->width);
	else
		memcpy(tmp, src, fd->width);
	memset(out, 0, width);
	if (fd->width >= width)
		memcpy(out, tmp + fd->width - width, width);
	else
		memcpy(out + width - fd->width, tmp, fd->width);
}

static int check_set(const struct pf_learn *p, uint32_t i, struct pf_error *err)
{
	const struct pf_learn_set *s = &p->sets[i];

	if (!action_desc_of(s->action))
		return pf_err(err, -EINVAL, "miss policy of pipe %u: sets[%u]: action 0x%x is not a settable field "
			      "(expected one PF_ACT_SET_*, PUSH_VLAN or PUSH_MPLS flag)", p->from_pipe, i, s->action);
	if (s->op > PF_EXPR_POOL)
		return pf_err(err, -EINVAL, "miss policy of pipe %u: sets[%u]: unknown expression op %u "
			      "(expected const, field, field_add or pool)", p->from_pipe, i, s->op);
	if ((s->op == PF_EXPR_FIELD || s->op == PF_EXPR_FIELD_ADD) && s->src_field >= PF_FIELD_COUNT)
		return pf_err(err, -EINVAL, "miss policy of pipe %u: sets[%u]: source field id %u out of range (max %u)",
			      p->from_pipe, i, s->src_field, PF_FIELD_COUNT - 1);
	if (s->op == PF_EXPR_POOL && s->pool_size == 0)
		return pf_err(err, -EINVAL, "miss policy of pipe %u: sets[%u]: pool size must be at least 1",
			      p->from_pipe, i);
	return 0;
}

static int check_policy(const struct pf_learn *p, struct pf_error *err)
{
	if (p->nsets > PF_LEARN_MAX_SETS)
		return pf_err(err, -EINVAL, "miss policy of pipe %u: %u sets, at most %u", p->from_pipe, p->nsets,
			      PF_LEARN_MAX_SETS);
	for (uint32_t i = 0; i < p->nsets; i++) {
		int ret = check_set(p, i, err);

		if (ret)
			return ret;
	}
	return 0;
}

/* The learned entry's actions for a packet; the policy passed check_policy when it was set. */
static void learn_eval(const struct pf_learn *p, const struct pf_fields *pkt, struct pf_actions *out)
{
	uint32_t hash = pf_flow_hash(pkt);

	*out = p->base_actions;
	for (uint32_t i = 0; i < p->nsets; i++) {
		const struct pf_learn_set *s = &p->sets[i];
		const struct action_desc *ad = action_desc_of(s->action);
		uint8_t val[16], add[16];

		switch (s->op) {
		case PF_EXPR_CONST:
			const_value(s, ad, val);
			break;
		case PF_EXPR_FIELD:
			field_value(pkt, s->src_field, val, ad->width);
			break;
		case PF_EXPR_FIELD_ADD:
			field_value(pkt, s->src_field, val, ad->width);
			const_value(s, ad, add);
			be_add(val, add, ad->width);
			break;
		case PF_EXPR_POOL:
			const_value(s, ad, val);
			be_add_uint(val, hash % s->pool_size, ad->width);
			break;
		}
		if (ad->numeric)
			store_uint((uint8_t *)out + ad->offset, ad->width, be_to_uint(val, ad->width));
		else
			memcpy((uint8_t *)out + ad->offset, val, ad->width);
		out->flags |= s->action;
		if (s->action == PF_ACT_PUSH_MPLS && out->mpls_count == 0)
			out->mpls_count = 1;
	}
}

/* ---- the flow table --------------------------------------------------- */

static uint32_t key_hash(const struct pf_flow_key *k)
{
	const uint8_t *p = (const uint8_t *)k;
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return (uint32_t)(h ^ (h >> 32)) & (LEARN_BUCKETS - 1);
}

/* the link that points at k's flow, or at the NULL ending its bucket */
static struct learn_flow **flow_link(struct pf_learner *l, const struct pf_flow_key *k)
{
	struct learn_flow **link = &l->buckets[key_hash(k)];

	while (*link && memcmp(&(*link)->key, k, sizeof(*k)))
		link = &(*link)->next;
	return link;
}

static struct learn_flow *flow_find(struct pf_learner *l, const struct pf_flow_key *k)
{
	return *flow_link(l, k);
}

static struct learn_flow *flow_add(struct pf_learner *l, const struct pf_flow_key *k, uint32_t entry_id, uint64_t now)
{
	uint32_t b = key_hash(k);
	struct learn_flow *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->key = *k;
	f->entry_id = entry_id;
	f->pending_req = LEARN_NOT_PENDING;
	f->created_ns = now;
	f->next = l->buckets[b];
	l->buckets[b] = f;
	l->nflows++;
	l->flows_in_pipe[k->pipe]++;
	return f;
}

static void flow_unlink(struct pf_learner *l, struct learn_flow **link)
{
	struct learn_flow *f = *link;

	*link = f->next;
	l->nflows--;
	l->flows_in_pipe[f->key.pipe]--;
	free(f);
}

static void flow_forget(struct pf_learner *l, const struct pf_flow_key *k)
{
	struct learn_flow **link = flow_link(l, k);

	if (*link)
		flow_unlink(l, link);
}

static void masked_key(const struct pf_learner *l, uint32_t pipe, const struct pf_fields *pkt, struct pf_flow_key *k)
{
	memset(k, 0, sizeof(*k));
	k->pipe = pipe;
	pf_fields_and(pkt, &l->masks[pipe], &k->f);
}

/* ---- public ----------------------------------------------------------- */

struct pf_learner *pf_learner_new(const struct pf_learn_ops *ops, void *backend)
{
	struct pf_learner *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->buckets = calloc(LEARN_BUCKETS, sizeof(*l->buckets));
	if (!l->buckets) {
		free(l);
		return NULL;
	}
	l->ops = ops;
	l->backend = backend;
	l->prof = getenv("PYFLOW_MISS_STAGES") != NULL;
	pthread_mutex_init(&l->lock, NULL);
	return l;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int pf_learner_profiling(const struct pf_learner *l)
{
	return l->prof;
}

void pf_learner_stage_add(struct pf_learner *l, enum pf_miss_stage stage, uint64_t ns)
{
	if (l->prof && stage < PF_STAGE_COUNT)
		__atomic_fetch_add(&l->stage_ns[stage], ns, __ATOMIC_RELAXED);
}

void pf_learner_stage_batch(struct pf_learner *l, uint32_t frames)
{
	if (!l->prof)
		return;
	__atomic_fetch_add(&l->prof_batches, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&l->prof_frames, frames, __ATOMIC_RELAXED);
	__atomic_store_n(&l->prof_last_ns, pf_now_ns(), __ATOMIC_RELAXED);
}

void pf_learner_stages_idle(struct pf_learner *l, const char *backend, uint64_t now_ns)
{
	uint64_t last;

	if (!l->prof || !__atomic_load_n(&l->prof_frames, __ATOMIC_RELAXED))
		return;
	last = __atomic_load_n(&l->prof_last_ns, __ATOMIC_RELAXED);
	if (now_ns > last && now_ns - last > PF_STAGES_IDLE_NS)
		pf_learner_stages_dump(l, backend);
}

void pf_learner_stages_dump(struct pf_learner *l, const char *backend)
{
	static const char *const names[PF_STAGE_COUNT] = { "rx", "decide", "install", "resubmit", "tx",
							    "resubmit_cpu", "datapath", "learn_cpu" };
	const char *path = getenv("PYFLOW_MISS_STAGES");
	FILE *f;

	if (!l->prof || !path || !l->prof_frames)
		return;
	f = fopen(path, "a");
	if (!f)
		return;
	fprintf(f, "{\"backend\": \"%s\", \"wakeups\": %llu, \"frames\": %llu, \"installed\": %llu", backend,
		(unsigned long long)l->prof_batches, (unsigned long long)l->prof_frames,
		(unsigned long long)l->stats.installed);
	for (int i = 0; i < PF_STAGE_COUNT; i++)
		fprintf(f, ", \"%s_ns\": %llu", names[i], (unsigned long long)l->stage_ns[i]);
	fprintf(f, ", \"resubmit_batched\": %llu, \"resubmit_single\": %llu}\n", (unsigned long long)l->prof_batched,
		(unsigned long long)l->prof_single);
	fclose(f);
	memset(l->stage_ns, 0, sizeof(l->stage_ns));
	l->prof_batches = l->prof_frames = l->prof_batched = l->prof_single = 0;
}

void pf_learner_free(struct pf_learner *l)
{
	if (!l)
		return;
	for (uint32_t b = 0; b < LEARN_BUCKETS; b++)
		while (l->buckets[b])
			flow_unlink(l, &l->buckets[b]);
	for (uint32_t i = 0; i < PF_MAX_PIPES; i++)
		free(l->policies[i]);
	pthread_mutex_destroy(&l->lock);
	free(l->buckets);
	free(l);
}

int pf_learner_set_mask(struct pf_learner *l, uint32_t pipe, const struct pf_fields *mask, struct pf_error *err)
{
	if (pipe >= PF_MAX_PIPES)
		return pf_err(err, -ERANGE, "pipe id %u out of range (max %u)", pipe, PF_MAX_PIPES - 1);
	pthread_mutex_lock(&l->lock);
	l->masks[pipe] = *mask;
	l->mask_known[pipe] = 1;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

int pf_learner_set_policy(struct pf_learner *l, const struct pf_learn *p, struct pf_error *err)
{
	struct learn_policy *lp;
	int ret;

	if (p->from_pipe >= PF_MAX_PIPES || p->to_pipe >= PF_MAX_PIPES)
		return pf_err(err, -ERANGE, "miss policy: pipe ids %u -> %u out of range (max %u)", p->from_pipe,
			      p->to_pipe, PF_MAX_PIPES - 1);
	if (p->fwd.type == PF_FWD_MISS)
		return pf_err(err, -EINVAL, "miss policy of pipe %u: learned entries cannot forward to the miss handler "
			      "(expected port, pipe, drop or kernel)", p->from_pipe);
	/* every set is checked here, before anything changes, and never again per frame */
	ret = check_policy(p, err);
	if (ret)
		return ret;
	lp = calloc(1, sizeof(*lp));
	if (!lp)
		return pf_err(err, -ENOMEM, "out of memory");
	lp->p = *p;
	lp->tokens = p->burst ? p->burst : (p->rate_limit_pps ? p->rate_limit_pps : 1);
	lp->refill_ns = pf_now_ns();
	pthread_mutex_lock(&l->lock);
	if (!l->mask_known[p->to_pipe]) {
		pthread_mutex_unlock(&l->lock);
		free(lp);
		return pf_err(err, -EINVAL, "miss policy of pipe %u: install pipe %u is not defined "
			      "(define the pipe before its miss policy)", p->from_pipe, p->to_pipe);
	}
	free(l->policies[p->from_pipe]);
	l->policies[p->from_pipe] = lp;
	l->idle_ns[p->to_pipe] = (uint64_t)p->idle_timeout_ms * 1000000ull;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

uint64_t pf_learner_sweep_interval_ns(struct pf_learner *l)
{
	uint64_t min = 0;

	pthread_mutex_lock(&l->lock);
	for (uint32_t i = 0; i < PF_MAX_PIPES; i++)
		if (l->idle_ns[i] && (!min || l->idle_ns[i] < min))
			min = l->idle_ns[i];
	pthread_mutex_unlock(&l->lock);
	if (!min)
		return 0;
	/* an entry outlives its timeout by at most a quarter of it */
	min /= 4;
	if (min < 10000000ull)
		min = 10000000ull;
	return min > 1000000000ull ? 1000000000ull : min;
}

/* token bucket: may one more new flow be installed now? */
static int take_token(struct learn_policy *lp, uint64_t now)
{
	double cap;

	if (!lp->p.rate_limit_pps)
		return 1;
	cap = lp->p.burst ? lp->p.burst : lp->p.rate_limit_pps;
	lp->tokens += (double)(now - lp->refill_ns) * lp->p.rate_limit_pps / 1e9;
	if (lp->tokens > cap)
		lp->tokens = cap;
	lp->refill_ns = now;
	if (lp->tokens < 1.0)
		return 0;
	lp->tokens -= 1.0;
	return 1;
}

static void log_created(const struct pf_fields *f)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];

	if (!pf_log_enabled(PF_LOG_INFO))
		return;
	if (f->eth_type == htons(0x0800)) {
		inet_ntop(AF_INET, &f->ipv4_src, src, sizeof(src));
		inet_ntop(AF_INET, &f->ipv4_dst, dst, sizeof(dst));
	} else if (f->eth_type == htons(0x86dd)) {
		inet_ntop(AF_INET6, f->ipv6_src, src, sizeof(src));
		inet_ntop(AF_INET6, f->ipv6_dst, dst, sizeof(dst));
	} else {
		pf_info("Created flow for MAC %02x:%02x:%02x:%02x:%02x:%02x->%02x:%02x:%02x:%02x:%02x:%02x",
			f->eth_src[0], f->eth_src[1], f->eth_src[2], f->eth_src[3], f->eth_src[4], f->eth_src[5],
			f->eth_dst[0], f->eth_dst[1], f->eth_dst[2], f->eth_dst[3], f->eth_dst[4], f->eth_dst[5]);
		return;
	}
	pf_info("Created flow for IP %s->%s", src, dst);
}

static int resubmit(struct pf_learner *l, uint32_t port, uint32_t pipe, const void *frame, uint32_t len)
{
	struct pf_error err = { 0 };
	int ret = l->ops->resubmit(l->backend, port, pipe, frame, len, &err);

	if (ret) {
		STAT_INC(l, resubmit_errors);
		pf_debug("resubmit on port %u failed: %s", port, err.msg);
		return ret;
	}
	STAT_INC(l, resubmitted);
	return 0;
}

/* What became of one frame of a batch, decided under the lock, carried out after. */
enum frame_fate {
	FATE_DONE = 0,          /* counted and dropped (no policy, malformed, shed, refused, looped) */
	FATE_INSTALL,           /* its flow is installed by this batch, then it is resubmitted */
	FATE_BEHIND,            /* its flow is being installed: resubmit after the install */
};

struct frame_plan {
	uint8_t fate;
	uint32_t req;           /* FATE_INSTALL / FATE_BEHIND: the install request it waits for */
	struct pf_fields pkt;
};

/* Install the batch's requests: one backend call for all of them when it can batch. */
static void install_requests(struct pf_learner *l, struct pf_entry_req *reqs, uint32_t n)
{
	struct pf_error err = { 0 };
	uint32_t added = 0;

	if (n && l->ops->install_batch)
		l->ops->install_batch(l->backend, reqs, n, &added, &err);
	/* without a batched write, or after its first failure: the rest one by one */
	for (uint32_t i = added; i < n; i++) {
		if (reqs[i].result == -ECANCELED)
			reqs[i].result = l->ops->install(l->backend, reqs[i].pipe, &reqs[i].match, &reqs[i].entry, &err);
		if (reqs[i].result)
			pf_warn("miss: cannot install into pipe %u: %s", reqs[i].pipe, err.msg);
	}
}

/* install latency of each frame that installed an entry: receipt to the install's return */
static void record_latency(struct pf_learner *l, const struct pf_miss_frame *frames,
			   const struct frame_plan *plan, const struct pf_entry_req *reqs, uint32_t n, uint64_t began)
{
	uint64_t done = pf_now_ns();

	for (uint32_t i = 0; i < n; i++) {
		uint64_t from = frames[i].rx_ns ? frames[i].rx_ns : began, ns;
		uint32_t b = 0;

		if (plan[i].fate != FATE_INSTALL || reqs[plan[i].req].result)
			continue;
		ns = done > from ? done - from : 0;
		while (b < PF_MISS_LATENCY_BUCKETS - 1 && ns > 1000ull << b)
			b++;
		__atomic_fetch_add(&l->stats.install_latency_buckets[b], 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&l->stats.install_latency_sum_ns, ns, __ATOMIC_RELAXED);
	}
}

/* Resubmit the frames whose install went through, in arrival order: one backend call for
 * all of them when it can batch, the rest (or all, without resubmit_batch) one by one. */
static int resubmit_planned(struct pf_learner *l, const struct pf_miss_frame *frames, const struct frame_plan *plan,
			    const struct pf_entry_req *reqs, uint32_t n)
{
	struct pf_miss_frame go[PF_LEARN_BATCH_MAX];
	uint32_t ngo = 0, done = 0, failed = 0;
	int ret = 0;

	for (uint32_t i = 0; i < n; i++) {
		const struct frame_plan *pl = &plan[i];

		if (pl->fate == FATE_DONE)
			continue;
		if (pl->req != UINT32_MAX && reqs[pl->req].result) {
			STAT_INC(l, install_errors);
			ret = ret ? ret : reqs[pl->req].result;
			continue;
		}
		if (pl->fate == FATE_INSTALL)
			STAT_INC(l, installed);
		go[ngo++] = frames[i];
	}
	if (ngo > 1 && l->ops->resubmit_batch) {
		done = l->ops->resubmit_batch(l->backend, go, ngo, &failed);
		if (done > ngo)
			done = ngo;
		if (failed > done)
			failed = done;
		__atomic_fetch_add(&l->stats.resubmitted, done - failed, __ATOMIC_RELAXED);
		if (l->prof)
			__atomic_fetch_add(&l->prof_batched, done, __ATOMIC_RELAXED);
		if (failed) {
			__atomic_fetch_add(&l->stats.resubmit_errors, failed, __ATOMIC_RELAXED);
			ret = ret ? ret : -EIO;
		}
	}
	if (l->prof)
		__atomic_fetch_add(&l->prof_single, ngo - done, __ATOMIC_RELAXED);
	for (uint32_t i = done; i < ngo; i++) {
		int r = resubmit(l, go[i].port, go[i].pipe, go[i].data, go[i].len);

		if (r && !ret)
			ret = r;
	}
	return ret;
}

int pf_learner_handle_batch(struct pf_learner *l, const struct pf_miss_frame *frames, uint32_t n)
{
	struct frame_plan plan[PF_LEARN_BATCH_MAX];
	struct pf_entry_req reqs[PF_LEARN_BATCH_MAX];
	struct learn_flow *pending[PF_LEARN_BATCH_MAX];     /* flow of each request */
	uint32_t nreqs = 0;
	uint64_t now, t_install = 0, t_resubmit = 0, c_resubmit = 0, c_begin = 0;
	int ret = 0, r;

	if (n > PF_LEARN_BATCH_MAX) {
		/* larger batches are handled in slices of PF_LEARN_BATCH_MAX */
		for (uint32_t off = 0; off < n; off += PF_LEARN_BATCH_MAX) {
			int r = pf_learner_handle_batch(l, frames + off, n - off < PF_LEARN_BATCH_MAX ?
							n - off : PF_LEARN_BATCH_MAX);
			if (r && !ret)
				ret = r;
		}
		return ret;
	}
	if (l->prof)
		c_begin = thread_cpu_ns();
	pthread_mutex_lock(&l->lock);
	/* one clock read per batch (its frames arrived together), under the lock so that
	 * the token buckets and flow ages only ever see the clock move forward */
	now = pf_now_ns();
	for (uint32_t i = 0; i < n; i++) {
		const struct pf_miss_frame *fr = &frames[i];
		struct frame_plan *pl = &plan[i];
		struct learn_policy *lp;
		struct pf_flow_key key;
		struct learn_flow *flow;
		struct pf_entry_req *r;
		uint32_t to_pipe;

		pl->fate = FATE_DONE;
		STAT_INC(l, received);
		if (fr->pipe >= PF_MAX_PIPES) {
			STAT_INC(l, no_policy);
			ret = ret ? ret : -ENOENT;
			continue;
		}
		if (learn_parse(fr->data, fr->len, &pl->pkt)) {
			STAT_INC(l, install_errors);
			pf_debug("miss on pipe %u: malformed frame of %u bytes", fr->pipe, fr->len);
			ret = ret ? ret : -EINVAL;
			continue;
		}
		pl->pkt.port = fr->port;
		lp = l->policies[fr->pipe];
		if (!lp) {
			STAT_INC(l, no_policy);
			ret = ret ? ret : -ENOENT;
			continue;
		}
		to_pipe = lp->p.to_pipe;
		masked_key(l, to_pipe, &pl->pkt, &key);
		flow = flow_find(l, &key);
		if (flow && flow->pending_req != LEARN_NOT_PENDING) {
			/* its install is in this very batch: resubmit behind it */
			pl->fate = FATE_BEHIND;
			pl->req = flow->pending_req;
			STAT_INC(l, coalesced);
			continue;
		}
		if (flow && fr->packet_path == PF_PATH_RESUBMIT) {
			/* it missed even after a resubmit: the entry is gone; learn it afresh next time */
			flow_forget(l, &key);
			STAT_INC(l, resubmit_errors);
			ret = ret ? ret : -ENOENT;
			continue;
		}
		if (flow && (now - flow->created_ns < LEARN_SETTLE_NS ||
			     l->ops->installed(l->backend, to_pipe, &key.f, flow->entry_id))) {
			/* queued behind the frame that installed the entry (on a busy host possibly
			 * for longer than the settle time): it will hit the entry now */
			pl->fate = FATE_BEHIND;
			pl->req = UINT32_MAX;
			STAT_INC(l, coalesced);
			continue;
		}
		if (flow) {
			pf_debug("learned flow of entry %u lost its entry: installing it again", flow->entry_id);
			flow_forget(l, &key);
		}
		if (!take_token(lp, now)) {
			STAT_INC(l, shed_rate_limit);
			continue;
		}
		if (l->flows_in_pipe[to_pipe] >= (lp->p.max_flows ? lp->p.max_flows : PF_DEFAULT_MAX_ENTRIES)) {
			STAT_INC(l, refused_max_flows);
			continue;
		}
		r = &reqs[nreqs];
		memset(r, 0, sizeof(*r));
		r->pipe = to_pipe;
		r->result = -ECANCELED;
		r->match = key.f;
		r->entry.flags = lp->p.entry_flags | PF_ENTRY_LEARNED;
		r->entry.fwd = lp->p.fwd;
		learn_eval(&lp->p, &pl->pkt, &r->entry.act);
		/* in the table now, so later frames of this batch wait for this install */
		flow = flow_add(l, &key, UINT32_MAX, now);
		if (!flow) {
			STAT_INC(l, install_errors);
			ret = ret ? ret : -ENOMEM;
			continue;
		}
		flow->pending_req = nreqs;
		pending[nreqs] = flow;
		pl->fate = FATE_INSTALL;
		pl->req = nreqs++;
	}
	if (l->prof)
		t_install = pf_now_ns();
	install_requests(l, reqs, nreqs);
	if (nreqs)
		record_latency(l, frames, plan, reqs, n, now);
	if (l->prof) {
		t_resubmit = pf_now_ns();
		pf_learner_stage_add(l, PF_STAGE_DECIDE, t_install - now);
		pf_learner_stage_add(l, PF_STAGE_INSTALL, t_resubmit - t_install);
		c_resubmit = thread_cpu_ns();
	}
	for (uint32_t q = 0; q < nreqs; q++) {
		pending[q]->pending_req = LEARN_NOT_PENDING;
		if (reqs[q].result) {
			struct pf_flow_key key = pending[q]->key;

			flow_forget(l, &key);
		} else {
			pending[q]->entry_id = reqs[q].entry.id;
		}
	}
	pthread_mutex_unlock(&l->lock);

	/* resubmit in arrival order, each frame after the install it needs */
	r = resubmit_planned(l, frames, plan, reqs, n);
	if (r && !ret)
		ret = r;
	if (l->prof) {
		uint64_t c_end = thread_cpu_ns();

		pf_learner_stage_add(l, PF_STAGE_RESUBMIT, pf_now_ns() - t_resubmit);
		pf_learner_stage_add(l, PF_STAGE_RESUBMIT_CPU, c_end - c_resubmit);
		pf_learner_stage_add(l, PF_STAGE_LEARN_CPU, c_end - c_begin);
	}
	/* the log lines may wait for a slow log handler: the frames went first */
	for (uint32_t i = 0; i < n; i++)
		if (plan[i].fate == FATE_INSTALL && !reqs[plan[i].req].result)
			log_created(&plan[i].pkt);
	return ret;
}

int pf_learner_handle_path(struct pf_learner *l, uint32_t port, uint32_t pipe, uint32_t packet_path,
			   const void *frame, uint32_t len)
{
	struct pf_miss_frame fr = { .data = frame, .len = len, .port = port, .pipe = pipe, .packet_path = packet_path };

	return pf_learner_handle_batch(l, &fr, 1);
}

int pf_learner_handle(struct pf_learner *l, uint32_t port, uint32_t pipe, const void *frame, uint32_t len)
{
	return pf_learner_handle_path(l, port, pipe, PF_PATH_NORMAL, frame, len);
}

void pf_learner_sweep(struct pf_learner *l, uint64_t now)
{
	pthread_mutex_lock(&l->lock);
	for (uint32_t b = 0; b < LEARN_BUCKETS && l->nflows; b++) {
		struct learn_flow **link = &l->buckets[b];

		while (*link) {
			struct learn_flow *f = *link;
			uint64_t idle = l->idle_ns[f->key.pipe], seen;

			if (!idle) {
				link = &f->next;
				continue;
			}
			seen = l->ops->last_seen(l->backend, f->entry_id);
			if (seen < f->created_ns)
				seen = f->created_ns;
			if (now <= seen || now - seen <= idle) {
				link = &f->next;
				continue;
			}
			/* an entry already gone (deleted by the control API) is just forgotten */
			l->ops->remove(l->backend, f->entry_id, NULL);
			flow_unlink(l, link);
			STAT_INC(l, aged_out);
		}
	}
	pthread_mutex_unlock(&l->lock);
}

int pf_learner_expire(struct pf_learner *l, uint32_t pipe, const struct pf_fields *match, uint32_t entry_id)
{
	struct pf_flow_key key;
	struct learn_flow **link;
	int ret = 0;

	if (pipe >= PF_MAX_PIPES)
		return 0;
	memset(&key, 0, sizeof(key));
	key.pipe = pipe;
	key.f = *match;
	pthread_mutex_lock(&l->lock);
	link = flow_link(l, &key);
	if (*link && (*link)->entry_id == entry_id && (*link)->pending_req == LEARN_NOT_PENDING) {
		l->ops->remove(l->backend, entry_id, NULL);
		flow_unlink(l, link);
		STAT_INC(l, aged_out);
		ret = 1;
	}
	pthread_mutex_unlock(&l->lock);
	return ret;
}

void pf_learner_adopt(struct pf_learner *l, uint32_t pipe, const struct pf_fields *match, uint32_t entry_id)
{
	struct pf_flow_key key;
	uint64_t now = pf_now_ns(), seen;

	if (pipe >= PF_MAX_PIPES)
		return;
	memset(&key, 0, sizeof(key));
	key.pipe = pipe;
	key.f = *match;
	/* the entry's idle clock runs on from its last hit before the restart, not from the adoption */
	seen = l->ops->last_seen ? l->ops->last_seen(l->backend, entry_id) : 0;
	pthread_mutex_lock(&l->lock);
	if (!flow_find(l, &key))
		flow_add(l, &key, entry_id, seen && seen <= now ? seen : now);
	pthread_mutex_unlock(&l->lock);
}

uint32_t pf_learner_flow_count(struct pf_learner *l)
{
	uint32_t n;

	pthread_mutex_lock(&l->lock);
	n = l->nflows;
	pthread_mutex_unlock(&l->lock);
	return n;
}

void pf_learner_stats(struct pf_learner *l, struct pf_miss_stats *out)
{
	const uint64_t *src = (const uint64_t *)&l->stats;
	uint64_t *dst = (uint64_t *)out;

	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}
