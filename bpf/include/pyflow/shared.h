/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Structures shared by the BPF datapath, the C core and Python (cffi).
 *
 * This is the only place these layouts are defined. Every struct is written
 * without implicit padding so clang -target bpf, gcc and cffi agree; a test
 * (tests/unit/test_layouts.py) compares the BTF of the compiled objects with
 * what cffi computes. Preprocessor lines other than #define of integer
 * constants are stripped before cffi sees this file.
 *
 * Byte order: header fields (addresses, ports, eth_type) are kept in network
 * order exactly as on the wire; metadata and numeric labels (port, mark,
 * vlan_id, mpls_label) are host order.
 */
#ifndef PYFLOW_SHARED_H
#define PYFLOW_SHARED_H

#ifdef __bpf__
#include <linux/types.h>
typedef __u8 uint8_t;
typedef __u16 uint16_t;
typedef __u32 uint32_t;
typedef __u64 uint64_t;
#else
#include <stdint.h>
#endif

#define PF_MAX_PORTS 64
#define PF_MAX_QUEUES 16
#define PF_MAX_PIPES 256
#define PF_MAX_MASKS 8
#define PF_MAX_PIPE_DEPTH 8
#define PF_MPLS_MAX 4
#define PF_HASH_BUCKETS 128
#define PF_MAX_HASH_PIPES 16
#define PF_MAX_SESSIONS 64
#define PF_MAX_SESSION_MEMBERS 16
#define PF_DEFAULT_MAX_ENTRIES 65536
#define PF_XDP_META_MAGIC 0x70664d31

/* PSA packet_path values (as in the P4 PSA clone-E2E example). */
enum pf_packet_path {
	PF_PATH_NORMAL = 0,
	PF_PATH_NORMAL_UNICAST = 1,
	PF_PATH_NORMAL_MULTICAST = 2,
	PF_PATH_CLONE_I2E = 3,
	PF_PATH_CLONE_E2E = 4,
	PF_PATH_RESUBMIT = 5,
	PF_PATH_RECIRCULATE = 6,
};

enum pf_mpegts_frame {
	PF_MPEGTS_NONE = 0,
	PF_MPEGTS_REFERENCE = 1,
	PF_MPEGTS_NON_REFERENCE = 2,
	PF_MPEGTS_PSI = 3,      /* carries PAT/CAT/PMT: a receiver cannot decode without it */
};

/* Every matchable field. A pipe's mask is a pf_fields with 1-bits where it matches. */
struct pf_fields {
	uint32_t port;          /* meta.port: config port id of the ingress port */
	uint32_t mark;          /* meta.mark */
	uint8_t packet_path;    /* meta.packet_path (enum pf_packet_path) */
	uint8_t mpegts_frame;   /* mpegts.frame (enum pf_mpegts_frame) */
	uint8_t ip_proto;       /* ipv4.proto / ipv6.next */
	uint8_t ip_ttl;         /* ipv4.ttl / ipv6.hop */
	uint8_t ip_dscp;        /* 6-bit value */
	uint8_t tcp_flags;
	uint16_t eth_type;      /* network order; the type after VLAN tags (0x8847 for MPLS) */
	uint8_t eth_dst[6];
	uint8_t eth_src[6];
	uint16_t vlan_id;       /* host order, outer tag, 0 = untagged */
	uint16_t vlan_inner;    /* host order, inner tag */
	uint32_t mpls_label;    /* host order, top label (20 bits) */
	uint32_t ipv4_src;      /* network order */
	uint32_t ipv4_dst;
	uint8_t ipv6_src[16];
	uint8_t ipv6_dst[16];
	uint16_t l4_sport;      /* network order */
	uint16_t l4_dport;
	uint32_t _pad[2];
};

/* Key of the exact/control entries hash: masked fields of one pipe and mask slot. */
struct pf_flow_key {
	uint32_t pipe;
	uint32_t mask_idx;
	struct pf_fields f;
};

/* Compact key of a mask that touches at most PF_CKEY_WORDS 32-bit words of
 * pf_fields (most masks: a port, an address, a 5-tuple): the table hashes and
 * compares 20 bytes instead of a whole pf_flow_key, and an element of a large
 * table spans fewer cache lines. */
#define PF_CKEY_WORDS 4
#define PF_FIELD_WORDS 22      /* sizeof(struct pf_fields) / 4 */

struct pf_ckey {
	uint32_t slot;          /* pipe * PF_MAX_MASKS + mask slot */
	uint32_t w[PF_CKEY_WORDS];      /* pf_fields word word[i] & mask[i], in order */
};

enum pf_mask_kind {
	PF_MASK_WIDE = 0,       /* the full pf_flow_key in "entries" */
	PF_MASK_PACKED = 1,     /* a pf_ckey in "entries_c" */
	PF_MASK_PACKED1 = 3,    /* one word: the first 8 bytes of a pf_ckey (slot, w[0]) in "entries_c1" */
	PF_MASK_PORT = 2,       /* meta.port alone: element port_base + port of "port_entries", no hash */
};

/* Mask slots that match meta.port alone and get a block of PF_MAX_PORTS in "port_entries". */
#define PF_PORT_BLOCKS 16

/* How one mask slot builds its key. All zero (a slot written before this
 * existed, or a mask too wide to pack): PF_MASK_WIDE. */
struct pf_mask_key {
	uint8_t kind;           /* enum pf_mask_kind */
	uint8_t mpegts;         /* the mask matches mpegts.frame */
	uint8_t nwords;
	uint8_t port_block;     /* block of "port_entries" this slot owns + 1 (0: none), kept across kinds */
	uint8_t word[PF_CKEY_WORDS];    /* word indexes into pf_fields (unused: 0, with mask 0) */
	uint32_t mask[PF_CKEY_WORDS];
};

/* Key of the LPM trie: prefixlen counts the 64 bits of pipe+pad, then address bits. */
struct pf_lpm_key {
	uint32_t prefixlen;
	uint32_t pipe;          /* big-endian so it is part of the prefix */
	uint32_t _pad;          /* always 0, covered by the prefix */
	uint8_t addr[16];
};
#define PF_LPM_PREFIX_BASE 64

enum pf_fwd_type {
	PF_FWD_DEFAULT = 0,     /* entry: use the pipe's fwd */
	PF_FWD_PORT = 1,        /* target = port id */
	PF_FWD_PIPE = 2,        /* target = pipe id */
	PF_FWD_MISS = 3,        /* to the miss handler */
	PF_FWD_DROP = 4,
	PF_FWD_SESSION = 5,     /* replicate to clone session / group id */
	PF_FWD_KERNEL = 6,      /* hand to the host stack (XDP_PASS) */
};

struct pf_fwd {
	uint16_t type;          /* enum pf_fwd_type */
	uint16_t _pad;
	uint32_t target;
};

enum pf_action_flag {
	PF_ACT_SET_ETH_SRC = 1u << 0,
	PF_ACT_SET_ETH_DST = 1u << 1,
	PF_ACT_SET_IPV4_SRC = 1u << 2,
	PF_ACT_SET_IPV4_DST = 1u << 3,
	PF_ACT_SET_IPV6_SRC = 1u << 4,
	PF_ACT_SET_IPV6_DST = 1u << 5,
	PF_ACT_SET_L4_SPORT = 1u << 6,
	PF_ACT_SET_L4_DPORT = 1u << 7,
	PF_ACT_SET_DSCP = 1u << 8,
	PF_ACT_DEC_TTL = 1u << 9,
	PF_ACT_POP_VLAN = 1u << 10,
	PF_ACT_PUSH_VLAN = 1u << 11,
	PF_ACT_SET_VLAN = 1u << 12,
	PF_ACT_POP_MPLS = 1u << 13,
	PF_ACT_PUSH_MPLS = 1u << 14,
	PF_ACT_SET_MARK = 1u << 15,
	PF_ACT_CLONE = 1u << 16,        /* clone to act.session (I2E / E2E by domain) */
	PF_ACT_DROP_PCT = 1u << 17,     /* drop act.drop_pct % of matching frames */
	PF_ACT_COUNT = 1u << 18,
	PF_ACT_MPLS_TC_DSCP = 1u << 19, /* pushed labels take their TC bits from the IP DSCP (the instance's map) */
};

/* Action values; applied in a fixed order: pop, set, dec ttl, push, mark, clone, sample. */
struct pf_actions {
	uint32_t flags;                 /* enum pf_action_flag */
	uint32_t mark;
	uint8_t eth_src[6];
	uint8_t eth_dst[6];
	uint32_t ipv4_src;              /* network order */
	uint32_t ipv4_dst;
	uint8_t ipv6_src[16];
	uint8_t ipv6_dst[16];
	uint16_t l4_sport;              /* network order */
	uint16_t l4_dport;
	uint16_t vlan_id;               /* host order */
	uint8_t dscp;
	uint8_t mpls_count;             /* labels to push, outermost first */
	uint32_t mpls_labels[PF_MPLS_MAX];  /* host order */
	uint8_t mpls_ttl;               /* 0 = copy from IP TTL */
	uint8_t mpls_pop_count;
	uint8_t drop_pct;               /* 0..100 */
	uint8_t _pad;
	uint32_t session;
};

/* Value of every entry, in whichever table holds it. */
struct pf_entry {
	uint32_t id;            /* index into the entry counter / last-seen arrays */
	uint32_t priority;      /* control pipes: lower value wins */
	uint32_t flags;         /* enum pf_entry_flag */
	uint32_t _pad;
	struct pf_fwd fwd;
	struct pf_actions act;
};

enum pf_entry_flag {
	PF_ENTRY_LEARNED = 1u << 0,
	PF_ENTRY_COUNTED = 1u << 1,
	PF_ENTRY_BUCKET = 1u << 2,      /* an array element in use (hash-pipe bucket, port_entries): an all-zero one selects nothing */
};

enum pf_pipe_type {
	PF_PIPE_BASIC = 0,      /* exact match on the masked fields */
	PF_PIPE_CONTROL = 1,    /* masked, priority ordered (one mask slot per distinct mask) */
	PF_PIPE_LPM = 2,        /* longest prefix on lpm_field, other fields ignored */
	PF_PIPE_HASH = 3,       /* select one of N buckets by flow hash (weighted ECMP) */
};

enum pf_domain {
	PF_DOMAIN_INGRESS = 0,
	PF_DOMAIN_EGRESS = 1,
};

enum pf_lpm_field {
	PF_LPM_IPV4_DST = 0,
	PF_LPM_IPV4_SRC = 1,
	PF_LPM_IPV6_DST = 2,
	PF_LPM_IPV6_SRC = 3,
};

struct pf_pipe {
	uint16_t type;          /* enum pf_pipe_type */
	uint8_t domain;         /* enum pf_domain */
	uint8_t nmasks;         /* mask slots in use (control pipes) */
	uint32_t flags;         /* enum pf_pipe_flag */
	struct pf_fwd fwd;      /* default for entries with PF_FWD_DEFAULT */
	struct pf_fwd fwd_miss;
	uint16_t lpm_field;     /* enum pf_lpm_field */
	uint16_t hash_slot;     /* hash pipes: which block of PF_HASH_BUCKETS */
	uint32_t nbuckets;      /* hash pipes: buckets in use */
};

enum pf_pipe_flag {
	PF_PIPE_IN_USE = 1u << 0,
	PF_PIPE_COUNTED = 1u << 1,
	PF_PIPE_ROOT = 1u << 2,
};

struct pf_port {
	uint32_t ifindex;
	uint32_t flags;         /* enum pf_port_flag */
	uint32_t egress_pipe;   /* run when a frame leaves here, if PF_PORT_EGRESS_PIPE */
	uint32_t _pad;
};

enum pf_port_flag {
	PF_PORT_IN_USE = 1u << 0,
	PF_PORT_EGRESS_PIPE = 1u << 1,
};

struct pf_config {
	uint32_t root_pipe;
	uint32_t flags;         /* enum pf_config_flag */
	uint32_t nqueues;       /* XSKMAP slots per port */
	uint32_t _pad;
};

enum pf_config_flag {
	PF_CFG_ROOT_SET = 1u << 0,
	PF_CFG_MISS_HANDLER = 1u << 1,  /* AF_XDP sockets are bound */
};

/* Metadata in front of a frame handed to the miss handler or resubmitted. */
struct pf_xdp_meta {
	uint32_t magic;         /* PF_XDP_META_MAGIC */
	uint16_t pipe;          /* pipe that missed */
	uint8_t packet_path;
	uint8_t flags;          /* enum pf_xdp_meta_flag */
	uint32_t port;          /* ingress port id */
	uint32_t _pad2;
};

enum pf_xdp_meta_flag {
	/* pyflow trace: walk the pipes as live traffic would, but count nothing,
	 * stamp nothing, hand nothing to the miss handler, keep a sampled frame,
	 * and record every hop in the per-CPU pf_trace */
	PF_META_TRACE = 1u << 0,
};

struct pf_counter {
	uint64_t packets;
	uint64_t bytes;
};

struct pf_pipe_counter {
	uint64_t hits;
	uint64_t misses;
};

enum pf_drop_reason {
	PF_DROP_MALFORMED = 0,  /* parser rejected the frame */
	PF_DROP_ACTION = 1,     /* fwd drop / drop action */
	PF_DROP_NO_MISS = 2,    /* miss with no handler bound */
	PF_DROP_DEPTH = 3,      /* pipe chain longer than PF_MAX_PIPE_DEPTH */
	PF_DROP_TX_FAIL = 4,    /* redirect / tx failed */
	PF_DROP_SAMPLED = 5,    /* drop_pct */
	PF_DROP_ACTION_FAIL = 6,/* an action could not be applied (no room, bad header) */
	PF_DROP_RATE_LIMIT = 7, /* miss storm shed */
	PF_DROP_MAX = 8,
};

/* A miss policy's rate limit in XDP (GCRA, the token bucket as a theoretical
 * arrival time), by the pipe that misses. The loader writes it when the policy
 * is set; interval_ns 0 = no limit. */
struct pf_miss_limit {
	uint64_t interval_ns;   /* 1e9 / rate_limit */
	uint64_t tau_ns;        /* (burst - 1) * interval_ns: how far ahead tat may run */
};

/* Per CPU: each CPU admits rate_limit/burst misses to the handler on its own,
 * so the handler gets at most ncpus times the rate; the learner's own bucket
 * keeps the exact limit on installs. */
struct pf_miss_bucket {
	uint64_t tat_ns;        /* bpf_ktime_get_ns at which the bucket is full again */
	uint64_t shed;          /* misses dropped here (PF_DROP_RATE_LIMIT) */
};

struct pf_port_counter {
	uint64_t rx_packets;
	uint64_t rx_bytes;
	uint64_t tx_packets;
	uint64_t tx_bytes;
	uint64_t drops[PF_DROP_MAX];
};

enum pf_verdict_kind {
	PF_VERDICT_TX = 0,      /* forwarded to out_port */
	PF_VERDICT_DROP = 1,
	PF_VERDICT_MISS = 2,    /* handed to the miss handler */
	PF_VERDICT_PASS = 3,    /* to the host stack */
	PF_VERDICT_REPLICATE = 4,
};

/* Last decision of the datapath on this CPU: lets tests and the differential
 * check see where a frame went without capturing it on a wire. */
struct pf_verdict {
	uint32_t kind;          /* enum pf_verdict_kind */
	uint32_t out_port;
	uint32_t drop_reason;   /* enum pf_drop_reason, when kind == DROP */
	uint32_t last_pipe;
	uint32_t entry_id;      /* last entry hit, 0xffffffff if none */
	uint32_t hops;
};

/* MPEG-TS deep inspection (seed 003), by frame class (enum pf_mpegts_frame):
 * frames classified, and frames a drop_pct action dropped. Counted where a
 * lookup first needed the class. */
struct pf_dpi_counter {
	uint64_t frames[4];
	uint64_t dropped[4];
};

/* One pipe of a traced walk. */
struct pf_trace_hop {
	uint32_t pipe;
	uint32_t entry_id;      /* the entry hit, 0xffffffff on a miss */
	uint32_t result;        /* 0 forward (fwd says where), 1 drop (drop_reason), 2 pipe not in use */
	uint32_t flags;         /* enum pf_trace_flag */
	struct pf_fwd fwd;
	uint32_t drop_reason;
	uint32_t _pad;
	struct pf_fields after; /* the parsed fields after this pipe's actions */
};

enum pf_trace_flag {
	PF_TRACE_HIT = 1u << 0,
	PF_TRACE_SAMPLED = 1u << 1,     /* drop_pct would have dropped this frame: the trace kept it */
	PF_TRACE_EGRESS = 1u << 2,      /* run as the chosen port's egress pipe */
};

/* Per-CPU record of the last traced walk (PF_META_TRACE). */
struct pf_trace {
	uint32_t nhops;
	uint32_t port;          /* ingress port id */
	uint32_t parse_result;  /* enum pf_parse_result as u32 (0 ok, -N error), 1 = never parsed */
	uint32_t _pad;
	struct pf_fields before;        /* as parsed */
	struct pf_trace_hop hops[PF_MAX_PIPE_DEPTH];
};

/* pyflow capture: where frames are copied to user space (enum pf_capture_point
 * bits; 0 = capture off, the only state the fast path pays for: one load). */
enum pf_capture_point {
	PF_CAP_INGRESS = 1u << 0,       /* as received, before the root pipe */
	PF_CAP_HIT = 1u << 1,           /* a lookup of pipe (or any pipe) found an entry, before its actions */
	PF_CAP_MISS = 1u << 2,          /* a lookup of pipe found none */
	PF_CAP_EGRESS = 1u << 3,        /* leaving by a port, after every action */
	PF_CAP_DROP = 1u << 4,          /* dropped, with the reason */
};
#define PF_CAPTURE_ANY 0xffffffffu

struct pf_capture_cfg {
	uint32_t points;        /* enum pf_capture_point bits, 0 = off */
	uint32_t pipe;          /* hit/miss points: only this pipe, PF_CAPTURE_ANY = every pipe */
	uint32_t entry;         /* only frames whose (last) entry is this id, PF_CAPTURE_ANY = any */
	uint32_t snaplen;       /* bytes copied of each frame */
};

/* In front of every captured frame in the capture_events perf buffer. */
struct pf_capture_hdr {
	uint64_t ts_ns;         /* bpf_ktime_get_ns */
	uint32_t point;         /* one enum pf_capture_point bit */
	uint32_t port;          /* ingress port (egress: the port it leaves by) */
	uint32_t pipe;
	uint32_t entry;         /* 0xffffffff none */
	uint32_t reason;        /* enum pf_drop_reason at PF_CAP_DROP */
	uint32_t len;           /* frame length */
	uint32_t caplen;        /* bytes that follow */
	uint32_t _pad;
};

/* Replication members of clone sessions / multicast groups. */
struct pf_session_member {
	uint32_t port;
	uint16_t instance;
	uint8_t class_of_service;
	uint8_t in_use;
	uint32_t truncate;      /* 0 = whole frame */
};

struct pf_session {
	uint32_t nmembers;
	uint32_t _pad;
	struct pf_session_member members[PF_MAX_SESSION_MEMBERS];
};

#endif
