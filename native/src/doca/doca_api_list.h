/* SPDX-License-Identifier: BSD-2-Clause */
/* X-macro: the DOCA Flow functions the backend calls (struct pfdoca_api and its loader). No include guard. */
PFDOCA_FN(const char *, doca_error_get_name, (doca_error_t))
PFDOCA_FN(doca_error_t, doca_flow_cfg_create, (struct doca_flow_cfg **))
PFDOCA_FN(doca_error_t, doca_flow_cfg_destroy, (struct doca_flow_cfg *))
PFDOCA_FN(doca_error_t, doca_flow_cfg_set_pipe_queues, (struct doca_flow_cfg *, uint16_t))
PFDOCA_FN(doca_error_t, doca_flow_cfg_set_nr_counters, (struct doca_flow_cfg *, uint32_t))
PFDOCA_FN(doca_error_t, doca_flow_cfg_set_mode_args, (struct doca_flow_cfg *, const char *))
PFDOCA_FN(doca_error_t, doca_flow_cfg_set_cb_entry_process, (struct doca_flow_cfg *, doca_flow_entry_process_cb))
PFDOCA_FN(doca_error_t, doca_flow_init, (const struct doca_flow_cfg *))
PFDOCA_FN(void, doca_flow_destroy, (void))
PFDOCA_FN(doca_error_t, doca_flow_port_cfg_create, (struct doca_flow_port_cfg **))
PFDOCA_FN(doca_error_t, doca_flow_port_cfg_destroy, (struct doca_flow_port_cfg *))
PFDOCA_FN(doca_error_t, doca_flow_port_cfg_set_devargs, (struct doca_flow_port_cfg *, const char *))
PFDOCA_FN(doca_error_t, doca_flow_port_start, (const struct doca_flow_port_cfg *, struct doca_flow_port **))
PFDOCA_FN(doca_error_t, doca_flow_port_stop, (struct doca_flow_port *))
PFDOCA_FN(struct doca_flow_port *, doca_flow_port_switch_get, (const struct doca_flow_port *))
PFDOCA_FN(doca_error_t, doca_flow_pipe_cfg_create, (struct doca_flow_pipe_cfg **, struct doca_flow_port *))
PFDOCA_FN(doca_error_t, doca_flow_pipe_cfg_destroy, (struct doca_flow_pipe_cfg *))
PFDOCA_FN(doca_error_t, doca_flow_pipe_cfg_set_name, (struct doca_flow_pipe_cfg *, const char *))
PFDOCA_FN(doca_error_t, doca_flow_pipe_cfg_set_type, (struct doca_flow_pipe_cfg *, enum doca_flow_pipe_type))
PFDOCA_FN(doca_error_t, doca_flow_pipe_cfg_set_domain, (struct doca_flow_pipe_cfg *, enum doca_flow_pipe_domain))
PFDOCA_FN(doca_error_t, doca_flow_pipe_cfg_set_is_root, (struct doca_flow_pipe_cfg *, bool))
PFDOCA_FN(doca_error_t, doca_flow_pipe_cfg_set_nr_entries, (struct doca_flow_pipe_cfg *, uint32_t))
PFDOCA_FN(doca_error_t, doca_flow_pipe_cfg_set_match, (struct doca_flow_pipe_cfg *, const struct doca_flow_match *,
						       const struct doca_flow_match *))
PFDOCA_FN(doca_error_t, doca_flow_pipe_cfg_set_actions, (struct doca_flow_pipe_cfg *, struct doca_flow_actions *const *,
							 struct doca_flow_actions *const *,
							 struct doca_flow_action_descs *const *, size_t))
PFDOCA_FN(doca_error_t, doca_flow_pipe_cfg_set_monitor, (struct doca_flow_pipe_cfg *, const struct doca_flow_monitor *))
PFDOCA_FN(doca_error_t, doca_flow_pipe_cfg_set_miss_counter, (struct doca_flow_pipe_cfg *, bool))
PFDOCA_FN(doca_error_t, doca_flow_pipe_create, (const struct doca_flow_pipe_cfg *, const struct doca_flow_fwd *,
						const struct doca_flow_fwd *, struct doca_flow_pipe **))
PFDOCA_FN(doca_error_t, doca_flow_pipe_destroy, (struct doca_flow_pipe *))
PFDOCA_FN(doca_error_t, doca_flow_pipe_add_entry, (uint16_t, struct doca_flow_pipe *, const struct doca_flow_match *,
						   const struct doca_flow_actions *, const struct doca_flow_monitor *,
						   const struct doca_flow_fwd *, uint32_t, void *,
						   struct doca_flow_pipe_entry **))
PFDOCA_FN(doca_error_t, doca_flow_pipe_control_add_entry, (uint16_t, uint32_t, struct doca_flow_pipe *,
							   const struct doca_flow_match *, const struct doca_flow_match *,
							   const void *, const struct doca_flow_actions *,
							   const struct doca_flow_actions *,
							   const struct doca_flow_action_descs *,
							   const struct doca_flow_monitor *, const struct doca_flow_fwd *,
							   void *, struct doca_flow_pipe_entry **))
PFDOCA_FN(doca_error_t, doca_flow_pipe_lpm_add_entry, (uint16_t, struct doca_flow_pipe *, const struct doca_flow_match *,
						       const struct doca_flow_match *, const struct doca_flow_actions *,
						       const struct doca_flow_monitor *, const struct doca_flow_fwd *,
						       enum doca_flow_flags_type, void *, struct doca_flow_pipe_entry **))
PFDOCA_FN(doca_error_t, doca_flow_pipe_hash_add_entry, (uint16_t, struct doca_flow_pipe *, uint32_t,
							const struct doca_flow_actions *,
							const struct doca_flow_monitor *, const struct doca_flow_fwd *,
							enum doca_flow_flags_type, void *, struct doca_flow_pipe_entry **))
PFDOCA_FN(doca_error_t, doca_flow_pipe_remove_entry, (uint16_t, uint32_t, struct doca_flow_pipe_entry *))
PFDOCA_FN(doca_error_t, doca_flow_entries_process, (struct doca_flow_port *, uint16_t, uint64_t, uint32_t))
PFDOCA_FN(enum doca_flow_entry_status, doca_flow_pipe_entry_get_status, (struct doca_flow_pipe_entry *))
PFDOCA_FN(doca_error_t, doca_flow_resource_query_entry, (struct doca_flow_pipe_entry *, struct doca_flow_resource_query *))
PFDOCA_FN(doca_error_t, doca_flow_resource_query_pipe_miss, (struct doca_flow_pipe *, struct doca_flow_resource_query *))
PFDOCA_FN(int, doca_flow_aging_handle, (struct doca_flow_port *, uint16_t, uint64_t, uint64_t))
PFDOCA_FN(doca_error_t, doca_flow_cfg_set_nr_shared_resource, (struct doca_flow_cfg *, uint32_t,
							       enum doca_flow_shared_resource_type))
PFDOCA_FN(doca_error_t, doca_flow_shared_resource_set_cfg, (enum doca_flow_shared_resource_type, uint32_t,
							    struct doca_flow_shared_resource_cfg *))
PFDOCA_FN(doca_error_t, doca_flow_shared_resources_bind, (enum doca_flow_shared_resource_type, uint32_t *, uint32_t,
							  void *))
