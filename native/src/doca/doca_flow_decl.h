/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The subset of the DOCA Flow C API (DOCA 2.9) that the doca backend uses,
 * declared by this project from NVIDIA's public DOCA Flow documentation
 * (programming guide and API reference). It is not NVIDIA's header: only the
 * members the backend sets or reads are declared, with the documented names
 * and meaning. With the SDK (pkg-config doca-flow) the backend includes
 * <doca_flow.h> instead and this file is not used; without it, the backend is
 * compiled against these declarations and a DOCA Flow implementation is loaded
 * at run time (the project's simulator, tests/doca/sim).
 */
#ifndef PYFLOW_DOCA_FLOW_DECL_H
#define PYFLOW_DOCA_FLOW_DECL_H

#include <stdbool.h>
#include <stdint.h>

typedef uint16_t doca_be16_t;
typedef uint32_t doca_be32_t;

/* doca_error.h */
typedef enum doca_error {
	DOCA_SUCCESS = 0,
	DOCA_ERROR_UNKNOWN = 1,
	DOCA_ERROR_NOT_PERMITTED = 2,
	DOCA_ERROR_IN_USE = 3,
	DOCA_ERROR_NOT_SUPPORTED = 4,
	DOCA_ERROR_AGAIN = 5,
	DOCA_ERROR_INVALID_VALUE = 6,
	DOCA_ERROR_NO_MEMORY = 7,
	DOCA_ERROR_INITIALIZATION = 8,
	DOCA_ERROR_TIME_OUT = 9,
	DOCA_ERROR_SHUTDOWN = 10,
	DOCA_ERROR_NOT_FOUND = 16,
	DOCA_ERROR_BAD_STATE = 18,
	DOCA_ERROR_ALREADY_EXIST = 23,
	DOCA_ERROR_FULL = 24,
} doca_error_t;

const char *doca_error_get_name(doca_error_t error);
const char *doca_error_get_descr(doca_error_t error);

struct doca_flow_cfg;
struct doca_flow_port_cfg;
struct doca_flow_pipe_cfg;
struct doca_flow_port;
struct doca_flow_pipe;
struct doca_flow_pipe_entry;

#define DOCA_FLOW_VLAN_MAX 2
#define DOCA_FLOW_META_MAX 32

enum doca_flow_l3_type {
	DOCA_FLOW_L3_TYPE_NONE = 0,
	DOCA_FLOW_L3_TYPE_IP4,
	DOCA_FLOW_L3_TYPE_IP6,
};

enum doca_flow_l4_type_ext {
	DOCA_FLOW_L4_TYPE_EXT_NONE = 0,
	DOCA_FLOW_L4_TYPE_EXT_TCP,
	DOCA_FLOW_L4_TYPE_EXT_UDP,
	DOCA_FLOW_L4_TYPE_EXT_ICMP,
	DOCA_FLOW_L4_TYPE_EXT_ICMP6,
	DOCA_FLOW_L4_TYPE_EXT_TRANSPORT,
};

struct doca_flow_header_eth {
	uint8_t dst_mac[6];
	uint8_t src_mac[6];
	doca_be16_t type;
};

struct doca_flow_header_eth_vlan {
	doca_be16_t tci;
};

struct doca_flow_header_ip4 {
	doca_be32_t src_ip;
	doca_be32_t dst_ip;
	uint8_t version_ihl;
	uint8_t dscp_ecn;
	doca_be16_t total_len;
	doca_be16_t identification;
	doca_be16_t flags_fragment_offset;
	uint8_t next_proto;
	uint8_t ttl;
};

struct doca_flow_header_ip6 {
	doca_be32_t src_ip[4];
	doca_be32_t dst_ip[4];
	uint8_t traffic_class;
	doca_be32_t flow_label;
	doca_be16_t payload_len;
	uint8_t next_proto;
	uint8_t hop_limit;
};

struct doca_flow_header_l4_port {
	doca_be16_t src_port;
	doca_be16_t dst_port;
};

struct doca_flow_header_udp {
	struct doca_flow_header_l4_port l4_port;
};

struct doca_flow_header_tcp {
	struct doca_flow_header_l4_port l4_port;
	uint8_t data_offset;
	uint8_t flags;
};

struct doca_flow_header_format {
	struct doca_flow_header_eth eth;
	uint16_t l2_valid_headers;
	struct doca_flow_header_eth_vlan eth_vlan[DOCA_FLOW_VLAN_MAX];
	enum doca_flow_l3_type l3_type;
	union {
		struct doca_flow_header_ip4 ip4;
		struct doca_flow_header_ip6 ip6;
	};
	enum doca_flow_l4_type_ext l4_type_ext;
	union {
		struct doca_flow_header_udp udp;
		struct doca_flow_header_tcp tcp;
		struct doca_flow_header_l4_port transport;
	};
};

struct doca_flow_meta {
	uint32_t pkt_meta;              /* carried with the packet between the app and the pipes */
	uint32_t u32[DOCA_FLOW_META_MAX / 4 - 1];
	uint32_t mark;                  /* reported to the app with a packet sent to RSS queues */
};

enum doca_flow_l3_meta {
	DOCA_FLOW_L3_META_NONE = 0,
	DOCA_FLOW_L3_META_IPV4,
	DOCA_FLOW_L3_META_IPV6,
};

enum doca_flow_l4_meta {
	DOCA_FLOW_L4_META_NONE = 0,
	DOCA_FLOW_L4_META_TCP,
	DOCA_FLOW_L4_META_UDP,
	DOCA_FLOW_L4_META_ICMP,
	DOCA_FLOW_L4_META_ESP,
};

struct doca_flow_parser_meta {
	uint32_t port_id;               /* the port the packet came from (port_meta) */
	enum doca_flow_l3_meta outer_l3_type;
	enum doca_flow_l4_meta outer_l4_type;   /* what the parser found after IPv4 or IPv6 */
};

struct doca_flow_match {
	uint32_t flags;
	struct doca_flow_meta meta;
	struct doca_flow_parser_meta parser_meta;
	struct doca_flow_header_format outer;
};

enum doca_flow_push_action_type {
	DOCA_FLOW_PUSH_ACTION_VLAN,
};

struct doca_flow_push_vlan_action {
	doca_be16_t eth_type;           /* the pushed tag's TPID */
	struct doca_flow_header_eth_vlan vlan_hdr;
};

struct doca_flow_push_action {
	enum doca_flow_push_action_type type;
	union {
		struct doca_flow_push_vlan_action vlan;
	};
};

struct doca_flow_actions {
	uint8_t action_idx;             /* which of the pipe's action templates an entry uses */
	uint32_t flags;
	bool pop_vlan;                  /* pop the outermost VLAN tag */
	struct doca_flow_meta meta;
	struct doca_flow_header_format outer;
	bool has_push;
	struct doca_flow_push_action push;      /* a tag pushed as the new outermost */
};

enum doca_flow_action_type {
	DOCA_FLOW_ACTION_AUTO = 0,
	DOCA_FLOW_ACTION_ADD,
	DOCA_FLOW_ACTION_COPY,
};

struct doca_flow_action_field {
	const char *field_string;       /* e.g. "outer.ipv4.ttl" */
	uint32_t bit_offset;
};

struct doca_flow_action_desc {
	enum doca_flow_action_type type;
	union {
		struct {
			struct doca_flow_action_field src;
			struct doca_flow_action_field dst;
			uint32_t width;
		} field_op;
	};
};

struct doca_flow_action_descs {
	uint8_t nb_action_desc;
	struct doca_flow_action_desc *desc_array;
};

enum doca_flow_resource_type {
	DOCA_FLOW_RESOURCE_TYPE_NONE = 0,
	DOCA_FLOW_RESOURCE_TYPE_SHARED,
	DOCA_FLOW_RESOURCE_TYPE_NON_SHARED,
};

struct doca_flow_monitor {
	enum doca_flow_resource_type meter_type;
	enum doca_flow_resource_type counter_type;
	uint32_t shared_counter_id;
	uint32_t aging_sec;             /* 0: no aging */
	uint32_t shared_mirror_id;      /* 0: no mirror; else a shared mirror bound to the pipe's port */
};

#define DOCA_FLOW_RSS_IPV4 (1u << 0)
#define DOCA_FLOW_RSS_IPV6 (1u << 1)
#define DOCA_FLOW_RSS_UDP (1u << 2)
#define DOCA_FLOW_RSS_TCP (1u << 3)

struct doca_flow_resource_rss_cfg {
	uint32_t outer_flags;
	uint32_t inner_flags;
	uint16_t *queues_array;
	int nr_queues;
};

enum doca_flow_fwd_type {
	DOCA_FLOW_FWD_NONE = 0,
	DOCA_FLOW_FWD_RSS,
	DOCA_FLOW_FWD_PORT,
	DOCA_FLOW_FWD_PIPE,
	DOCA_FLOW_FWD_DROP,
	DOCA_FLOW_FWD_TARGET,
	DOCA_FLOW_FWD_ORDERED_LIST_PIPE,
	DOCA_FLOW_FWD_HASH_PIPE,
	DOCA_FLOW_FWD_CHANGEABLE,
};

struct doca_flow_fwd {
	enum doca_flow_fwd_type type;
	union {
		struct {
			enum doca_flow_resource_type rss_type;
			union {
				struct doca_flow_resource_rss_cfg rss;
				uint32_t shared_rss_id;
			};
		};
		struct {
			uint16_t port_id;
		};
		struct {
			struct doca_flow_pipe *next_pipe;
		};
	};
};

enum doca_flow_pipe_type {
	DOCA_FLOW_PIPE_BASIC = 0,
	DOCA_FLOW_PIPE_CONTROL,
	DOCA_FLOW_PIPE_LPM,
	DOCA_FLOW_PIPE_CT,
	DOCA_FLOW_PIPE_ACL,
	DOCA_FLOW_PIPE_ORDERED_LIST,
	DOCA_FLOW_PIPE_HASH,
};

enum doca_flow_pipe_domain {
	DOCA_FLOW_PIPE_DOMAIN_DEFAULT = 0,
	DOCA_FLOW_PIPE_DOMAIN_SECURE_INGRESS,
	DOCA_FLOW_PIPE_DOMAIN_EGRESS,
	DOCA_FLOW_PIPE_DOMAIN_SECURE_EGRESS,
};

/* shared resources: configured by id, bound to a port, referenced from an entry's monitor */
enum doca_flow_shared_resource_type {
	DOCA_FLOW_SHARED_RESOURCE_METER,
	DOCA_FLOW_SHARED_RESOURCE_COUNTER,
	DOCA_FLOW_SHARED_RESOURCE_RSS,
	DOCA_FLOW_SHARED_RESOURCE_CRYPTO,
	DOCA_FLOW_SHARED_RESOURCE_MIRROR,
	DOCA_FLOW_SHARED_RESOURCE_MAX,
};

/* one copy of a mirrored packet and where it goes */
struct doca_flow_mirror_target {
	bool has_encap;
	struct doca_flow_fwd fwd;
};

struct doca_flow_resource_mirror_cfg {
	int nr_targets;
	struct doca_flow_mirror_target *target;
};

struct doca_flow_shared_resource_cfg {
	enum doca_flow_pipe_domain domain;
	union {
		struct doca_flow_resource_mirror_cfg mirror_cfg;
	};
};

enum doca_flow_flags_type {
	DOCA_FLOW_NO_WAIT = 0,          /* the entry is pushed to the hardware now */
	DOCA_FLOW_WAIT_FOR_BATCH = 1,   /* buffered: pushed with a later entry without the flag */
};

enum doca_flow_entry_op {
	DOCA_FLOW_ENTRY_OP_ADD = 0,
	DOCA_FLOW_ENTRY_OP_DEL,
	DOCA_FLOW_ENTRY_OP_UPD,
	DOCA_FLOW_ENTRY_OP_AGED,
};

enum doca_flow_entry_status {
	DOCA_FLOW_ENTRY_STATUS_IN_PROCESS = 0,
	DOCA_FLOW_ENTRY_STATUS_SUCCESS,
	DOCA_FLOW_ENTRY_STATUS_ERROR,
};

struct doca_flow_resource_query {
	union {
		struct {
			uint64_t total_bytes;
			uint64_t total_pkts;
		} counter;
	};
};

typedef void (*doca_flow_entry_process_cb)(struct doca_flow_pipe_entry *entry, uint16_t pipe_queue,
					   enum doca_flow_entry_status status, enum doca_flow_entry_op op,
					   void *user_ctx);

/* library */
doca_error_t doca_flow_cfg_create(struct doca_flow_cfg **cfg);
doca_error_t doca_flow_cfg_destroy(struct doca_flow_cfg *cfg);
doca_error_t doca_flow_cfg_set_pipe_queues(struct doca_flow_cfg *cfg, uint16_t pipe_queues);
doca_error_t doca_flow_cfg_set_nr_counters(struct doca_flow_cfg *cfg, uint32_t nr_counters);
doca_error_t doca_flow_cfg_set_mode_args(struct doca_flow_cfg *cfg, const char *mode_args);
doca_error_t doca_flow_cfg_set_cb_entry_process(struct doca_flow_cfg *cfg, doca_flow_entry_process_cb cb);
doca_error_t doca_flow_init(const struct doca_flow_cfg *cfg);
void doca_flow_destroy(void);

/* ports */
doca_error_t doca_flow_port_cfg_create(struct doca_flow_port_cfg **cfg);
doca_error_t doca_flow_port_cfg_destroy(struct doca_flow_port_cfg *cfg);
doca_error_t doca_flow_port_cfg_set_devargs(struct doca_flow_port_cfg *cfg, const char *devargs);
doca_error_t doca_flow_port_start(const struct doca_flow_port_cfg *cfg, struct doca_flow_port **port);
doca_error_t doca_flow_port_stop(struct doca_flow_port *port);
struct doca_flow_port *doca_flow_port_switch_get(const struct doca_flow_port *port);

/* pipes */
doca_error_t doca_flow_pipe_cfg_create(struct doca_flow_pipe_cfg **cfg, struct doca_flow_port *port);
doca_error_t doca_flow_pipe_cfg_destroy(struct doca_flow_pipe_cfg *cfg);
doca_error_t doca_flow_pipe_cfg_set_name(struct doca_flow_pipe_cfg *cfg, const char *name);
doca_error_t doca_flow_pipe_cfg_set_type(struct doca_flow_pipe_cfg *cfg, enum doca_flow_pipe_type type);
doca_error_t doca_flow_pipe_cfg_set_domain(struct doca_flow_pipe_cfg *cfg, enum doca_flow_pipe_domain domain);
doca_error_t doca_flow_pipe_cfg_set_is_root(struct doca_flow_pipe_cfg *cfg, bool is_root);
doca_error_t doca_flow_pipe_cfg_set_nr_entries(struct doca_flow_pipe_cfg *cfg, uint32_t nr_entries);
doca_error_t doca_flow_pipe_cfg_set_match(struct doca_flow_pipe_cfg *cfg, const struct doca_flow_match *match,
					  const struct doca_flow_match *match_mask);
doca_error_t doca_flow_pipe_cfg_set_actions(struct doca_flow_pipe_cfg *cfg, struct doca_flow_actions *const *actions,
					    struct doca_flow_actions *const *actions_masks,
					    struct doca_flow_action_descs *const *action_descs, size_t nr_actions);
doca_error_t doca_flow_pipe_cfg_set_monitor(struct doca_flow_pipe_cfg *cfg, const struct doca_flow_monitor *monitor);
doca_error_t doca_flow_pipe_cfg_set_miss_counter(struct doca_flow_pipe_cfg *cfg, bool miss_counter);
doca_error_t doca_flow_pipe_create(const struct doca_flow_pipe_cfg *cfg, const struct doca_flow_fwd *fwd,
				   const struct doca_flow_fwd *fwd_miss, struct doca_flow_pipe **pipe);
doca_error_t doca_flow_pipe_destroy(struct doca_flow_pipe *pipe);

/* entries */
doca_error_t doca_flow_pipe_add_entry(uint16_t pipe_queue, struct doca_flow_pipe *pipe,
				      const struct doca_flow_match *match, const struct doca_flow_actions *actions,
				      const struct doca_flow_monitor *monitor, const struct doca_flow_fwd *fwd,
				      uint32_t flags, void *usr_ctx, struct doca_flow_pipe_entry **entry);
doca_error_t doca_flow_pipe_control_add_entry(uint16_t pipe_queue, uint32_t priority, struct doca_flow_pipe *pipe,
					      const struct doca_flow_match *match,
					      const struct doca_flow_match *match_mask, const void *condition,
					      const struct doca_flow_actions *actions,
					      const struct doca_flow_actions *actions_mask,
					      const struct doca_flow_action_descs *action_descs,
					      const struct doca_flow_monitor *monitor, const struct doca_flow_fwd *fwd,
					      void *usr_ctx, struct doca_flow_pipe_entry **entry);
doca_error_t doca_flow_pipe_lpm_add_entry(uint16_t pipe_queue, struct doca_flow_pipe *pipe,
					  const struct doca_flow_match *match, const struct doca_flow_match *match_mask,
					  const struct doca_flow_actions *actions, const struct doca_flow_monitor *monitor,
					  const struct doca_flow_fwd *fwd, enum doca_flow_flags_type flag, void *usr_ctx,
					  struct doca_flow_pipe_entry **entry);
/* hash pipes: entries by index; the pipe hashes its match-mask fields to pick one */
doca_error_t doca_flow_pipe_hash_add_entry(uint16_t pipe_queue, struct doca_flow_pipe *pipe, uint32_t entry_index,
					   const struct doca_flow_actions *actions, const struct doca_flow_monitor *monitor,
					   const struct doca_flow_fwd *fwd, enum doca_flow_flags_type flags, void *usr_ctx,
					   struct doca_flow_pipe_entry **entry);
doca_error_t doca_flow_pipe_remove_entry(uint16_t pipe_queue, uint32_t flags, struct doca_flow_pipe_entry *entry);
/* report entries idle longer than their monitor.aging_sec, through the entry process callback
 * (DOCA_FLOW_ENTRY_OP_AGED); quota: time budget in microseconds; returns how many, -1 on failure */
doca_error_t doca_flow_cfg_set_nr_shared_resource(struct doca_flow_cfg *cfg, uint32_t nr_shared_resource,
					       enum doca_flow_shared_resource_type type);
doca_error_t doca_flow_shared_resource_set_cfg(enum doca_flow_shared_resource_type type, uint32_t id,
					       struct doca_flow_shared_resource_cfg *cfg);
doca_error_t doca_flow_shared_resources_bind(enum doca_flow_shared_resource_type type, uint32_t *res_array,
					     uint32_t res_array_len, void *bindable_obj);
int doca_flow_aging_handle(struct doca_flow_port *port, uint16_t queue, uint64_t quota, uint64_t max_entries);
doca_error_t doca_flow_entries_process(struct doca_flow_port *port, uint16_t pipe_queue, uint64_t timeout,
				       uint32_t max_processed_entries);
enum doca_flow_entry_status doca_flow_pipe_entry_get_status(struct doca_flow_pipe_entry *entry);

/* counters */
doca_error_t doca_flow_resource_query_entry(struct doca_flow_pipe_entry *entry, struct doca_flow_resource_query *query);
doca_error_t doca_flow_resource_query_pipe_miss(struct doca_flow_pipe *pipe, struct doca_flow_resource_query *query);

#endif
