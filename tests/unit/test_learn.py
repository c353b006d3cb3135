"""The miss policy engine (native/src/miss/learn.c) compiled on its own with gcc.

The learner is driven through its C interface with a table-recording backend:
what is checked here is the policy arithmetic and bookkeeping (match masking,
expressions with carry, coalescing, max_flows, rate limit, aging, adoption),
which every backend shares. The datapath side is covered by tests/netns/test_miss.py.
"""
from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

HARNESS = r"""
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "miss/miss.h"

static struct { uint32_t pipe, id; struct pf_fields match; struct pf_entry e; } installs[64];
static unsigned ninstalls, nremoves, nresubmits;
static uint64_t seen[64];
static int gone[64];    /* entries removed behind the learner's back */

static long install_delay_ns;   /* a slow backend, for the install latency */

static int t_install(void *b, uint32_t pipe, const struct pf_fields *m, struct pf_entry *e, struct pf_error *err)
{
	if (install_delay_ns) {
		struct timespec d = { 0, install_delay_ns };
		nanosleep(&d, NULL);
	}
	e->id = 100 + ninstalls;
	installs[ninstalls].pipe = pipe; installs[ninstalls].id = e->id;
	installs[ninstalls].match = *m; installs[ninstalls].e = *e;
	ninstalls++;
	return 0;
}
static int t_remove(void *b, uint32_t id, struct pf_error *err) { nremoves++; return 0; }
static uint64_t t_seen(void *b, uint32_t id) { return seen[id - 100]; }
static int t_resubmit(void *b, uint32_t port, uint32_t pipe, const void *f, uint32_t len, struct pf_error *err) { nresubmits++; return 0; }
static int t_installed(void *b, uint32_t pipe, const struct pf_fields *m, uint32_t id)
{
	return id >= 100 && id - 100 < ninstalls && !gone[id - 100] && installs[id - 100].pipe == pipe &&
	       !memcmp(&installs[id - 100].match, m, sizeof(*m));
}
static const struct pf_learn_ops ops = {
	.install = t_install, .remove = t_remove, .last_seen = t_seen, .installed = t_installed, .resubmit = t_resubmit,
};

static unsigned frame(uint8_t *buf, const char *src, const char *dst, uint16_t sport)
{
	static const uint8_t hdr[] = { 2,0,0,0,0,1, 2,0,0,0,0,2, 8,0,
		0x45,0,0,28, 0,0,0,0, 64,17,0,0, 0,0,0,0, 0,0,0,0, 0,0,0,53,0,8,0,0 };
	memcpy(buf, hdr, sizeof(hdr));
	inet_pton(AF_INET, src, buf + 26);
	inet_pton(AF_INET, dst, buf + 30);
	buf[34] = sport >> 8; buf[35] = sport & 0xff;
	return sizeof(hdr);
}

static void stats(const char *tag, struct pf_learner *l)
{
	struct pf_miss_stats s;
	pf_learner_stats(l, &s);
	printf("{\"tag\":\"%s\",\"received\":%lu,\"installed\":%lu,\"resubmitted\":%lu,\"coalesced\":%lu,"
	       "\"refused\":%lu,\"shed\":%lu,\"aged\":%lu,\"install_errors\":%lu,\"resubmit_errors\":%lu,"
	       "\"no_policy\":%lu,\"flows\":%u,\"removes\":%u}\n", tag,
	       s.received, s.installed, s.resubmitted, s.coalesced, s.refused_max_flows, s.shed_rate_limit,
	       s.aged_out, s.install_errors, s.resubmit_errors, s.no_policy, pf_learner_flow_count(l), nremoves);
}

static void dump_installs(void)
{
	char a[16], b[16], c[16];
	for (unsigned i = 0; i < ninstalls; i++) {
		inet_ntop(AF_INET, &installs[i].match.ipv4_src, a, sizeof(a));
		inet_ntop(AF_INET, &installs[i].e.act.ipv4_dst, b, sizeof(b));
		inet_ntop(AF_INET, &installs[i].e.act.ipv4_src, c, sizeof(c));
		printf("{\"install\":%u,\"pipe\":%u,\"match_src\":\"%s\",\"match_dst\":%u,\"match_sport\":%u,"
		       "\"set_dst\":\"%s\",\"set_src\":\"%s\",\"flags\":%u,\"fwd\":[%u,%u],\"eflags\":%u,\"vlan\":%u}\n",
		       i, installs[i].pipe, a, installs[i].match.ipv4_dst, installs[i].match.l4_sport, b, c,
		       installs[i].e.act.flags, installs[i].e.fwd.type, installs[i].e.fwd.target,
		       installs[i].e.flags, installs[i].e.act.vlan_id);
	}
}

int main(void)
{
	struct pf_learner *l = pf_learner_new(&ops, NULL);
	struct pf_error err = { 0 };
	struct pf_fields mask = { 0 };
	struct pf_learn p = { 0 };
	uint8_t buf[128];
	unsigned n;

	/* no policy yet */
	n = frame(buf, "192.168.99.101", "20.1.1.100", 1000);
	pf_learner_handle(l, 1, 1, buf, n);

	/* policy before its install pipe's mask is known */
	p.from_pipe = 1; p.to_pipe = 2; p.max_flows = 3; p.idle_timeout_ms = 100;
	p.fwd.type = PF_FWD_PORT; p.fwd.target = 0;
	p.nsets = 2;
	p.sets[0].action = PF_ACT_SET_IPV4_DST; p.sets[0].op = PF_EXPR_FIELD_ADD;
	p.sets[0].src_field = PF_FIELD_IPV4_SRC; memset(p.sets[0].value, 0, 16);
	p.sets[0].value[0] = p.sets[0].value[1] = p.sets[0].value[2] = p.sets[0].value[3] = 1;
	p.sets[1].action = PF_ACT_SET_VLAN; p.sets[1].op = PF_EXPR_CONST;
	{ uint32_t v = 42; memcpy(p.sets[1].value, &v, 4); }
	printf("{\"no_mask\":%d,\"msg\":\"%s\"}\n", pf_learner_set_policy(l, &p, &err), err.msg);
	mask.ipv4_src = 0xffffffff;
	pf_learner_set_mask(l, 2, &mask, &err);
	printf("{\"set\":%d}\n", pf_learner_set_policy(l, &p, &err));

	/* two flows, the first one twice (queued behind its own install) */
	n = frame(buf, "192.168.99.101", "20.1.1.100", 1000);
	pf_learner_handle(l, 1, 1, buf, n);
	n = frame(buf, "192.168.99.101", "20.1.1.100", 2000);  /* other port, same masked flow */
	pf_learner_handle(l, 1, 1, buf, n);
	n = frame(buf, "192.168.99.255", "20.1.1.100", 1000);  /* carry across bytes */
	pf_learner_handle(l, 1, 1, buf, n);
	n = frame(buf, "192.168.99.103", "20.1.1.100", 1000);
	pf_learner_handle(l, 1, 1, buf, n);
	n = frame(buf, "192.168.99.104", "20.1.1.100", 1000);  /* over max_flows */
	pf_learner_handle(l, 1, 1, buf, n);
	pf_learner_handle(l, 1, 1, buf, 20);                   /* truncated */
	stats("learned", l);

	/* a frame of a learned flow that missed again after its resubmit is not resubmitted again */
	n = frame(buf, "192.168.99.103", "20.1.1.100", 1000);
	pf_learner_handle_path(l, 1, 1, PF_PATH_RESUBMIT, buf, n);
	stats("stale", l);

	/* aging: entry 100 was hit recently, the others never */
	{
		struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
		seen[0] = now + 150000000ull;
		pf_learner_sweep(l, now + 50000000ull);
		stats("sweep_early", l);
		pf_learner_sweep(l, now + 200000000ull);
		stats("sweep_late", l);
		pf_learner_adopt(l, 2, &installs[0].match, 100);
		stats("adopted", l);
	}

	/* rate limit 10 pps, burst 2, and a NAT pool of 4 addresses; match on src + l4 sport */
	{
		struct pf_learn q = { 0 };
		struct pf_fields m2 = { 0 };
		m2.ipv4_src = 0xffffffff; m2.l4_sport = 0xffff;
		pf_learner_set_mask(l, 4, &m2, &err);
		q.from_pipe = 3; q.to_pipe = 4; q.rate_limit_pps = 10; q.burst = 2;
		q.fwd.type = PF_FWD_PORT; q.fwd.target = 1; q.nsets = 1;
		q.sets[0].action = PF_ACT_SET_IPV4_SRC; q.sets[0].op = PF_EXPR_POOL; q.sets[0].pool_size = 4;
		inet_pton(AF_INET, "10.9.0.0", q.sets[0].value);
		printf("{\"set2\":%d}\n", pf_learner_set_policy(l, &q, &err));
		for (unsigned i = 0; i < 5; i++) {
			n = frame(buf, "172.16.0.1", "20.1.1.100", 3000 + i);
			pf_learner_handle(l, 2, 3, buf, n);
		}
		stats("rate", l);
		q.sets[0].pool_size = 0;
		printf("{\"bad_pool\":%d,\"msg\":\"%s\"}\n", pf_learner_set_policy(l, &q, &err), err.msg);
	}
	dump_installs();

	/* a frame that queued behind its flow's install for longer than the settle time (a busy
	 * host): the entry is still there, so it is resubmitted, not installed a second time */
	{
		struct timespec pause = { 0, 60000000 };
		unsigned before = ninstalls;
		nanosleep(&pause, NULL);
		n = frame(buf, "192.168.99.101", "20.1.1.100", 1000);
		pf_learner_handle(l, 1, 1, buf, n);
		printf("{\"late_reinstalled\":%u}\n", ninstalls - before);
		stats("late", l);
	}

	/* a learned flow whose entry was removed behind the learner's back: installed again */
	{
		unsigned before = ninstalls;
		for (unsigned i = 0; i < ninstalls; i++)
			if (installs[i].match.ipv4_src == inet_addr("192.168.99.101"))
				gone[i] = 1;
		n = frame(buf, "192.168.99.101", "20.1.1.100", 1000);
		pf_learner_handle(l, 1, 1, buf, n);
		printf("{\"reinstalled\":%u,\"pipe\":%u}\n", ninstalls - before, installs[ninstalls - 1].pipe);
		stats("reinstall", l);
	}
	/* install latency: a backend that takes 3 ms per install; the second frame was received
	 * 10 ms before its batch began (it waited in the handler's queue) */
	{
		struct pf_miss_stats a, b;
		struct pf_miss_frame fr = { 0 };
		struct pf_learn q = { 0 };
		struct pf_fields m3 = { 0 };
		struct timespec ts;

		m3.ipv4_src = 0xffffffff;
		pf_learner_set_mask(l, 6, &m3, &err);
		q.from_pipe = 5; q.to_pipe = 6; q.fwd.type = PF_FWD_PORT; q.fwd.target = 0;
		pf_learner_set_policy(l, &q, &err);
		pf_learner_stats(l, &a);
		install_delay_ns = 3000000;
		n = frame(buf, "192.168.77.1", "20.1.1.100", 1000);
		pf_learner_handle(l, 1, 5, buf, n);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		fr.data = buf; fr.len = frame(buf, "192.168.77.2", "20.1.1.100", 1000); fr.port = 1; fr.pipe = 5;
		fr.rx_ns = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec - 10000000ull;
		pf_learner_handle_batch(l, &fr, 1);
		install_delay_ns = 0;
		pf_learner_stats(l, &b);
		printf("{\"lat_installed\":%lu,\"lat_sum_ns\":%lu,\"lat_buckets\":[", b.installed - a.installed,
		       b.install_latency_sum_ns - a.install_latency_sum_ns);
		for (int i = 0; i < PF_MISS_LATENCY_BUCKETS; i++)
			printf("%s%lu", i ? "," : "", b.install_latency_buckets[i] - a.install_latency_buckets[i]);
		printf("]}\n");
	}
	pf_learner_free(l);
	return 0;
}
"""


@pytest.fixture(scope="module")
def learner_run(tmp_path_factory):
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.skip("gcc is not installed")
    work = tmp_path_factory.mktemp("learn")
    (work / "harness.c").write_text(HARNESS)
    exe = work / "harness"
    cmd = [gcc, "-std=gnu11", "-O1", "-Wall", "-Werror", "-Wno-unused-parameter", "-Wno-missing-field-initializers",
           "-Wno-format", f"-I{ROOT}/native/include", f"-I{ROOT}/bpf/include", f"-I{ROOT}/native/src",
           str(work / "harness.c"), str(ROOT / "native/src/miss/learn.c"), str(ROOT / "native/src/core.c"),
           "-o", str(exe), "-lpthread"]
    # core.c refers to the backends; give the harness empty ones
    (work / "backends.c").write_text(
        '#include "internal.h"\n'
        'const struct pf_backend_ops pf_backend_ebpf = { .name = "ebpf" };\n'
        'const struct pf_backend_ops pf_backend_dpdk = { .name = "dpdk" };\n'
        'const struct pf_backend_ops pf_backend_doca = { .name = "doca" };\n')
    cmd.insert(-3, str(work / "backends.c"))
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    return lines, out.stderr


def _find(lines, key, value=None):
    for line in lines:
        if key in line and (value is None or line[key] == value):
            return line
    raise AssertionError(f"no line with {key}={value}: {lines}")


def test_policy_needs_install_pipe(learner_run):
    lines, _ = learner_run
    line = _find(lines, "no_mask")
    assert line["no_mask"] < 0 and "install pipe 2 is not defined" in line["msg"]
    assert _find(lines, "set")["set"] == 0


def test_learned_entries_and_expressions(learner_run):
    lines, log = learner_run
    installs = [x for x in lines if "install" in x and x.get("pipe") == 2]
    assert [x["match_src"] for x in installs] == ["192.168.99.101", "192.168.99.255", "192.168.99.103"]
    # ipv4.dst = ipv4.src + 1.1.1.1, bytewise with carry in network order
    assert [x["set_dst"] for x in installs] == ["193.169.100.102", "193.169.101.0", "193.169.100.104"]
    for x in installs:
        assert x["match_dst"] == 0 and x["match_sport"] == 0  # masked out
        assert x["vlan"] == 42 and x["fwd"] == [1, 0] and x["eflags"] & 1
    assert "Created flow for IP 192.168.99.101->20.1.1.100" in log
    assert "Created flow for IP 192.168.99.255->20.1.1.100" in log


def test_coalesce_max_flows_and_errors(learner_run):
    lines, _ = learner_run
    s = _find(lines, "tag", "learned")
    assert s["received"] == 7 and s["no_policy"] == 1
    assert s["installed"] == 3 and s["coalesced"] == 1 and s["resubmitted"] == 4
    assert s["refused"] == 1 and s["install_errors"] == 1 and s["flows"] == 3
    stale = _find(lines, "tag", "stale")
    assert stale["resubmitted"] == 4 and stale["resubmit_errors"] == 1 and stale["flows"] == 2


def test_aging_and_adoption(learner_run):
    lines, _ = learner_run
    assert _find(lines, "tag", "sweep_early")["aged"] == 0
    late = _find(lines, "tag", "sweep_late")
    # the never-hit entry (192.168.99.255) ages; the recently hit one stays
    assert late["aged"] == 1 and late["flows"] == 1 and late["removes"] == 1
    assert _find(lines, "tag", "adopted")["flows"] == 1  # already known: not counted twice


def test_rate_limit_and_pool(learner_run):
    lines, _ = learner_run
    assert _find(lines, "set2")["set2"] == 0
    r = _find(lines, "tag", "rate")
    assert r["shed"] == 3 and r["installed"] == 5
    pool = [x for x in lines if "install" in x and x.get("pipe") == 4]
    assert len(pool) == 2
    for x in pool:
        assert x["set_src"] in {"10.9.0.0", "10.9.0.1", "10.9.0.2", "10.9.0.3"}
        assert x["fwd"] == [1, 1]
    bad = _find(lines, "bad_pool")
    assert bad["bad_pool"] < 0 and "sets[0]: pool size must be at least 1" in bad["msg"]


def test_frame_queued_past_the_settle_time_is_resubmitted_not_reinstalled(learner_run):
    lines, _ = learner_run
    assert _find(lines, "late_reinstalled") == {"late_reinstalled": 0}
    before, after = _find(lines, "tag", "rate"), _find(lines, "tag", "late")
    assert after["coalesced"] == before["coalesced"] + 1 and after["resubmitted"] == before["resubmitted"] + 1
    assert after["flows"] == before["flows"]


def test_flow_whose_entry_vanished_is_installed_again(learner_run):
    lines, _ = learner_run
    assert _find(lines, "reinstalled") == {"reinstalled": 1, "pipe": 2}
    before, after = _find(lines, "tag", "late"), _find(lines, "tag", "reinstall")
    assert after["flows"] == before["flows"] and after["coalesced"] == before["coalesced"]


def test_install_latency_histogram_in_log2_buckets(learner_run):
    """Receipt to install: 3 ms of backend install time lands above the 2.048 ms bound; a frame that
    waited 10 ms before its batch (rx_ns) lands above 8.192 ms. Buckets are 1 us << i, then +Inf."""
    lines, _ = learner_run
    lat = _find(lines, "lat_installed")
    buckets = lat["lat_buckets"]
    assert lat["lat_installed"] == 2 and sum(buckets) == 2 and len(buckets) == 18
    first = [i for i, n in enumerate(buckets) for _ in range(n)]
    assert first[0] >= 12 and first[1] >= 14, buckets        # 1 us << 12 = 4.096 ms, << 14 = 16.384 ms
    assert 13_000_000 <= lat["lat_sum_ns"] < 2_000_000_000
