"""Test-only export tables for the OpenSIPS 1.6 modules sipserver does not ship.

The compiler resolves module functions against a `Registry`; most 1.6
modules (tm, rr, registrar, dialog, ...) are not implemented yet, but the
language side (names, argument counts, route types along the call graph,
PVs, formats, modparams) can already be checked on complete real-world
scripts.  `registry_for(script)` loads every `loadmodule` line: the real
module when sipserver has it, else the fake table below.

The tables hold facts read from the 1.6 sources (branch `1.6`, commit
0e561e10, i.e. 1.6.4): each module's script functions with every
argument-count overload and the route-type mask of its `cmd_export_t`
entry, its modparams with type and default, and the names of the
pseudo-variables it exports.  Left out: API-only entries (mask 0:
`load_tm`, `bind_auth`, ...), the obsolete names registered with a NULL
function only to fail at start-up (uri's `check_to` & co, group's
`is_user_in`/`get_user_group`), and the `DIAM_ACC` / `ENABLE_USER_CHECK`
parts, not compiled by default.  `xlog` is the 1.6.0-1.6.2 module (core
from 1.6.3 on).

The tables of modules sipserver ships (sl, maxfwd, textops, uri,
signaling, xlog) are only a fallback for while those are being written;
for `uri`, whose DB and AAA functions sipserver does not implement, the
1.6 functions and parameters the real module lacks go into an extra fake
module `uri_db` loaded next to it, and modparams the real `uri` rejects are
applied there.

Fake functions take no fixup and return 1; fake PVs read as null and accept
writes.
"""

from __future__ import annotations

import re
from typing import Any

from sipserver import script as script_loader
from sipserver.core.exports import (
    ALL_ROUTES,
    BRANCH_ROUTE,
    ERROR_ROUTE,
    FAILURE_ROUTE,
    LOCAL_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    STARTUP_ROUTE,
    TIMER_ROUTE,
    CmdExport,
    LoadedModule,
    ModuleExports,
    ParamExport,
    PVarExport,
    Registry,
)
from sipserver.core.modload import ModuleError, load_module, module_name, set_modparam
from sipserver.lang import ast
from sipserver.lang.errors import ErrorItem
from sipserver.lang.pv import PV, Value

__all__ = [
    "EXTRA_NAME",
    "PVARS",
    "SHIPPED",
    "TABLES",
    "apply_modparam",
    "fake_exports",
    "load_fake_or_real",
    "load_modules",
    "registry_for",
]

R, F, O, B, E, L, S, T = (REQUEST_ROUTE, FAILURE_ROUTE, ONREPLY_ROUTE, BRANCH_ROUTE,  # noqa: E741
                          ERROR_ROUTE, LOCAL_ROUTE, STARTUP_ROUTE, TIMER_ROUTE)
ALL = ALL_ROUTES

#: modules sipserver ships (their tables below are only a fallback)
SHIPPED = ("sl", "maxfwd", "textops", "uri", "signaling", "xlog")

#: shipped module -> name of the fake module holding what it leaves out
EXTRA_NAME = {"uri": "uri_db"}

# module -> ([(function, nargs, route mask)], [(param, int | str, default)])
TABLES: dict[str, tuple[list[tuple[str, int, int]], list[tuple[str, type, Any]]]] = {
    "sl": (
        [
            ("sl_send_reply", 2, R|E), ("sl_reply_error", 0, R),
        ],
        [
            ("enable_stats", int, 1),
        ],
    ),
    "maxfwd": (
        [
            ("mf_process_maxfwd_header", 1, R), ("is_maxfwd_lt", 1, R|F|B),
        ],
        [
            ("max_limit", int, 256),
        ],
    ),
    "textops": (
        [
            ("search", 1, R|F|O|B|L), ("search_body", 1, R|F|O|B|L),
            ("search_append", 2, R|F|O|B|L), ("search_append_body", 2, R|F|O|B|L),
            ("replace", 2, R|F|O|B|L), ("replace_body", 2, R|F|O|B|L),
            ("replace_all", 2, R|F|O|B|L), ("replace_body_all", 2, R|F|O|B|L),
            ("replace_body_atonce", 2, R|F|O|B|L), ("append_to_reply", 1, R|F|B|E),
            ("append_hf", 1, R|F|O|B|L), ("append_hf", 2, R|F|O|B|L),
            ("insert_hf", 1, R|F|O|B|L), ("insert_hf", 2, R|F|O|B|L), ("append_urihf", 2, R|F|B),
            ("remove_hf", 1, R|F|O|B|L), ("is_present_hf", 1, R|F|O|B|L),
            ("subst", 1, R|F|O|B|L), ("subst_uri", 1, R|F|O|B), ("subst_user", 1, R|F|O|B),
            ("subst_body", 1, R|F|O|B|L), ("filter_body", 1, R|F|O|B|L),
            ("append_time", 0, R|F|B|L), ("is_method", 1, R|F|O|B|L), ("has_body", 0, R|F|O|B|L),
            ("has_body", 1, R|F|O|B|L), ("is_privacy", 1, R|F|O|B|L),
            ("strip_body", 0, R|F|O|B|L), ("strip_body", 1, R|F|O|B|L),
            ("add_body", 1, R|F|O|B|L), ("add_body", 2, R|F|O|B|L),
            ("codec_exists", 1, R|F|O|B|L), ("codec_exists_re", 1, R|F|O|B|L),
            ("codec_exists", 2, R|F|O|B|L), ("codec_delete", 1, R|F|O|B|L),
            ("codec_delete_re", 1, R|F|O|B|L), ("codec_delete_except_re", 1, R|F|O|B|L),
            ("codec_delete", 2, R|F|O|B|L), ("codec_move_up", 1, R|F|O|B|L),
            ("codec_move_up_re", 1, R|F|O|B|L), ("codec_move_up", 2, R|F|O|B|L),
            ("codec_move_down", 1, R|F|O|B|L), ("codec_move_down_re", 1, R|F|O|B|L),
            ("codec_move_down", 2, R|F|O|B|L), ("is_audio_on_hold", 0, R|F|O|B|L),
        ],
        [],
    ),
    "uri": (
        [
            ("aaa_does_uri_exist", 0, R|L), ("aaa_does_uri_exist", 1, R|L),
            ("aaa_does_uri_user_exist", 0, R|L), ("aaa_does_uri_user_exist", 1, R|L),
            ("db_check_to", 0, R), ("db_check_from", 0, R), ("db_does_uri_exist", 0, R|L),
            ("db_get_auth_id", 3, R|L), ("is_user", 1, R|L), ("has_totag", 0, R|L),
            ("uri_param", 1, R|L), ("uri_param", 2, R|L), ("add_uri_param", 1, R),
            ("tel2sip", 0, R), ("is_uri_user_e164", 1, R|F|L),
        ],
        [
            ("aaa_url", str, None), ("db_url", str, None), ("db_table", str, None),
            ("user_column", str, 'username'), ("domain_column", str, 'domain'),
            ("uriuser_column", str, 'uri_user'), ("use_uri_table", int, 0),
            ("use_domain", int, 0), ("service_type", int, -1), ("use_sip_uri_host", int, 0),
        ],
    ),
    "signaling": (
        [
            ("send_reply", 2, R|F|E),
        ],
        [],
    ),
    "tm": (
        [
            ("t_newtran", 0, R), ("t_reply", 2, R|F), ("t_replicate", 1, R),
            ("t_replicate", 2, R), ("t_relay", 0, R|F), ("t_relay", 1, R|F), ("t_relay", 2, R|F),
            ("t_on_failure", 1, R|F|O|B), ("t_on_reply", 1, R|F|O|B),
            ("t_on_branch", 1, R|F|O|B), ("t_check_status", 1, R|F|O|B),
            ("t_write_req", 2, R|F|B), ("t_write_unix", 2, R|F|B), ("t_flush_flags", 0, R|B),
            ("t_local_replied", 1, R|F|O|B), ("t_check_trans", 0, R|B),
            ("t_was_cancelled", 0, F|O), ("t_cancel_branch", 0, O), ("t_cancel_branch", 1, O),
            ("t_add_hdrs", 1, R), ("t_reply_with_body", 3, R),
        ],
        [
            ("ruri_matching", int, 1), ("via1_matching", int, 1), ("fr_timer", int, 30),
            ("fr_inv_timer", int, 120), ("wt_timer", int, 5), ("delete_timer", int, 2),
            ("T1_timer", int, 500), ("T2_timer", int, 4000), ("unix_tx_timeout", int, 2),
            ("restart_fr_on_each_reply", int, 1), ("fr_timer_avp", str, None),
            ("fr_inv_timer_avp", str, None), ("tw_append", str, None), ("enable_stats", int, 1),
            ("pass_provisional_replies", int, 0), ("syn_branch", int, 1),
            ("onreply_avp_mode", int, 0), ("disable_6xx_block", int, 0),
            ("minor_branch_flag", int, -1),
        ],
    ),
    "rr": (
        [
            ("loose_route", 0, R), ("record_route", 0, R|F|B), ("record_route", 1, R|F|B),
            ("record_route_preset", 1, R|F|B), ("record_route_preset", 2, R|F|B),
            ("add_rr_param", 1, R|F|B), ("check_route_param", 1, R), ("is_direction", 1, R),
        ],
        [
            ("append_fromtag", int, 1), ("enable_double_rr", int, 1), ("enable_full_lr", int, 0),
            ("add_username", int, 0), ("enable_socket_mismatch_warning", int, 1),
        ],
    ),
    "usrloc": (
        [],
        [
            ("user_column", str, 'username'), ("domain_column", str, 'domain'),
            ("contact_column", str, 'contact'), ("expires_column", str, 'expires'),
            ("q_column", str, 'q'), ("callid_column", str, 'callid'),
            ("cseq_column", str, 'cseq'), ("flags_column", str, 'flags'),
            ("cflags_column", str, 'cflags'),
            ("db_url", str, 'mysql://opensips:opensipsrw@localhost/opensips'),
            ("timer_interval", int, 60), ("db_mode", int, 0), ("use_domain", int, 0),
            ("desc_time_order", int, 0), ("user_agent_column", str, 'user_agent'),
            ("received_column", str, 'received'), ("path_column", str, 'path'),
            ("socket_column", str, 'socket'), ("methods_column", str, 'methods'),
            ("matching_mode", int, 0), ("cseq_delay", int, 20), ("fetch_rows", int, 2000),
            ("hash_size", int, 9), ("nat_bflag", int, -1),
        ],
    ),
    "registrar": (
        [
            ("save", 1, R), ("save", 2, R), ("save", 3, R), ("lookup", 1, R|F),
            ("lookup", 2, R|F), ("lookup", 3, R|F), ("registered", 1, R|F|O|B|L),
            ("registered", 2, R|F|O|B|L), ("registered", 3, R|F|O|B|L), ("add_sock_hdr", 1, R),
        ],
        [
            ("default_expires", int, 3600), ("default_q", int, -1), ("case_sensitive", int, 1),
            ("tcp_persistent_flag", int, -1), ("realm_prefix", str, ''),
            ("min_expires", int, 60), ("max_expires", int, 0),
            ("received_param", str, 'received'), ("received_avp", str, None),
            ("max_contacts", int, 0), ("retry_after", int, 0), ("sock_hdr_name", str, None),
        ],
    ),
    "auth": (
        [
            ("www_challenge", 2, R), ("proxy_challenge", 2, R), ("pv_www_authorize", 1, R),
            ("pv_proxy_authorize", 1, R), ("consume_credentials", 0, R),
            ("is_rpid_user_e164", 0, R), ("append_rpid_hf", 0, R|F|B),
            ("append_rpid_hf", 2, R|F|B),
        ],
        [
            ("secret", str, None), ("nonce_expire", int, 30), ("rpid_prefix", str, ''),
            ("rpid_suffix", str, ';party=calling;id-type=subscriber;screen=yes'),
            ("realm_prefix", str, ''), ("rpid_avp", str, '$avp(s:rpid)'),
            ("username_spec", str, None), ("password_spec", str, None),
            ("calculate_ha1", int, 0), ("disable_nonce_check", int, 0),
        ],
    ),
    "auth_db": (
        [
            ("www_authorize", 2, R), ("proxy_authorize", 2, R),
        ],
        [
            ("db_url", str, 'mysql://opensipsro:opensipsro@localhost/opensips'),
            ("user_column", str, 'username'), ("domain_column", str, 'domain'),
            ("password_column", str, 'ha1'), ("password_column_2", str, 'ha1b'),
            ("calculate_ha1", int, 0), ("use_domain", int, 0), ("load_credentials", str, 'rpid'),
            ("skip_version_check", int, 0),
        ],
    ),
    "auth_aaa": (
        [
            ("aaa_www_authorize", 1, R), ("aaa_proxy_authorize", 1, R),
            ("aaa_proxy_authorize", 2, R),
        ],
        [
            ("aaa_url", str, None), ("service_type", int, -1), ("use_ruri_flag", int, -1),
        ],
    ),
    "aaa_radius": (
        [
            ("radius_send_auth", 2, ALL), ("radius_send_acct", 1, ALL),
        ],
        [
            ("sets", str, None), ("radius_config", str, None),
        ],
    ),
    "alias_db": (
        [
            ("alias_db_lookup", 1, R|F), ("alias_db_lookup", 2, R|F),
            ("alias_db_find", 3, R|F|O|B|L), ("alias_db_find", 4, R|F|O|B|L),
        ],
        [
            ("db_url", str, 'mysql://opensipsro:opensipsro@localhost/opensips'),
            ("user_column", str, 'username'), ("domain_column", str, 'domain'),
            ("alias_user_column", str, 'alias_username'),
            ("alias_domain_column", str, 'alias_domain'), ("domain_prefix", str, None),
            ("append_branches", int, 0),
        ],
    ),
    "group": (
        [
            ("aaa_is_user_in", 2, R|F|B|L), ("db_is_user_in", 2, R|F|B|L),
            ("db_get_user_group", 2, R|F|B|L),
        ],
        [
            ("aaa_url", str, None), ("db_url", str, None), ("table", str, 'grp'),
            ("user_column", str, 'username'), ("domain_column", str, 'domain'),
            ("group_column", str, 'grp'), ("use_domain", int, 0), ("re_table", str, None),
            ("re_exp_column", str, 'reg_exp'), ("re_gid_column", str, 'group_id'),
            ("multiple_gid", int, 1),
        ],
    ),
    "avpops": (
        [
            ("avp_print", 0, R|F|O|B|L|S|T), ("avp_db_load", 2, R|F|O|B|L|S|T),
            ("avp_db_load", 3, R|F|O|B|L|S|T), ("avp_db_delete", 2, R|F|O|B|L|S|T),
            ("avp_db_delete", 3, R|F|O|B|L|S|T), ("avp_db_store", 2, R|F|O|B|L|S|T),
            ("avp_db_store", 3, R|F|O|B|L|S|T), ("avp_db_query", 1, R|F|O|B|L|S|T),
            ("avp_db_query", 2, R|F|O|B|L|S|T), ("avp_db_query", 3, R|F|O|B|L|S|T),
            ("avp_delete", 1, R|F|O|B|L|S|T), ("avp_copy", 2, R|F|O|B|L|S|T),
            ("avp_pushto", 2, R|F|O|B|L|S|T), ("avp_check", 2, R|F|O|B|L|S|T),
            ("avp_op", 2, R|F|O|B|L|S|T), ("avp_subst", 2, R|F|O|B|L|S|T),
            ("is_avp_set", 1, R|F|O|B|L|S|T), ("avp_insert", 3, R|F|O|B|L|S|T),
        ],
        [
            ("db_url", str, None), ("avp_table", str, 'usr_preferences'), ("use_domain", int, 0),
            ("uuid_column", str, 'uuid'), ("attribute_column", str, 'attribute'),
            ("value_column", str, 'value'), ("type_column", str, 'type'),
            ("username_column", str, 'username'), ("domain_column", str, 'domain'),
            ("db_scheme", str, None), ("buf_size", int, 1024),
        ],
    ),
    "permissions": (
        [
            ("check_address", 4, R|F|L|S|T), ("check_address", 5, R|F|L|S|T),
            ("check_address", 6, R|F|L|S|T), ("check_source_address", 1, R|F|L),
            ("check_source_address", 2, R|F|L), ("check_source_address", 3, R|F|L),
            ("get_source_group", 1, R|F|L), ("allow_routing", 0, R|F|L),
            ("allow_routing", 1, R|F|L), ("allow_routing", 2, R|F|L), ("allow_register", 1, R|F),
            ("allow_register", 2, R|F), ("allow_uri", 2, R|F|L),
        ],
        [
            ("default_allow_file", str, 'permissions.allow'),
            ("default_deny_file", str, 'permissions.deny'), ("check_all_branches", int, 1),
            ("allow_suffix", str, '.allow'), ("deny_suffix", str, '.deny'),
            ("db_url", str, None), ("address_table", str, 'address'), ("ip_col", str, 'ip'),
            ("proto_col", str, 'proto'), ("from_col", str, 'pattern'),
            ("info_col", str, 'context_info'), ("grp_col", str, 'grp'),
            ("mask_col", str, 'mask'), ("port_col", str, 'port'),
        ],
    ),
    "mi_fifo": (
        [],
        [
            ("fifo_name", str, None), ("fifo_mode", int, 432), ("fifo_group", str, None),
            ("fifo_group", int, -1), ("fifo_user", str, None), ("fifo_user", int, -1),
            ("reply_dir", str, '/tmp/'), ("reply_indent", str, '\t'),
        ],
    ),
    "mi_datagram": (
        [],
        [
            ("children_count", int, 1), ("socket_name", str, None),
            ("socket_timeout", int, 2000), ("unix_socket_mode", int, 432),
            ("unix_socket_group", str, None), ("unix_socket_group", int, -1),
            ("unix_socket_user", str, None), ("unix_socket_user", int, -1),
            ("reply_indent", str, '\t'),
        ],
    ),
    "db_mysql": (
        [],
        [
            ("ping_interval", int, 300), ("timeout_interval", int, 2),
        ],
    ),
    "db_postgres": (
        [],
        [],
    ),
    "db_text": (
        [],
        [
            ("db_mode", int, 0),
        ],
    ),
    "db_http": (
        [],
        [
            ("SSL", int, 0), ("cap_raw_query", int, 0), ("cap_replace", int, 0),
            ("cap_last_inserted_id", int, 0), ("cap_insert_update", int, 0),
            ("field_delimiter", str, None), ("row_delimiter", str, None),
            ("quote_delimiter", str, None),
        ],
    ),
    "db_virtual": (
        [],
        [
            ("db_probe_time", int, 10), ("db_max_consec_retrys", int, 10),
            ("db_urls", str, None),
        ],
    ),
    "cfgutils": (
        [
            ("rand_set_prob", 1, R|F|O|B|L|S|T), ("rand_reset_prob", 0, R|F|O|B|L|S|T),
            ("rand_get_prob", 0, R|F|O|B|L|S|T), ("rand_event", 0, R|F|O|B|L|S|T),
            ("rand_event", 1, R|F|O|B|L|S|T), ("sleep", 1, R|F|O|B|L|S|T),
            ("usleep", 1, R|F|O|B|L|S|T), ("abort", 0, R|F|O|B|L|S|T),
            ("pkg_status", 0, R|F|O|B|L|S|T), ("shm_status", 0, R|F|O|B|L|S|T),
            ("set_count", 1, R|F|O|B|L|S|T), ("set_select_weight", 1, R|F|O|B|L|S|T),
        ],
        [
            ("initial_probability", int, 10), ("hash_file", str, None), ("shvset", str, None),
            ("varset", str, None),
        ],
    ),
    "benchmark": (
        [
            ("bm_start_timer", 1, R|F|O|B|L|S|T), ("bm_log_timer", 1, R|F|O|B|L|S|T),
        ],
        [
            ("enable", int, 0), ("granularity", int, 100), ("loglevel", int, 3),
        ],
    ),
    "acc": (
        [
            ("acc_log_request", 1, R|F|B|L), ("acc_db_request", 2, R|F|B|L),
            ("acc_aaa_request", 1, R|F|B|L),
        ],
        [
            ("early_media", int, 0), ("failed_transaction_flag", int, -1),
            ("report_ack", int, 0), ("report_cancels", int, 0), ("multi_leg_info", str, None),
            ("detect_direction", int, 0), ("cdr_flag", int, -1), ("log_flag", int, -1),
            ("log_missed_flag", int, -1), ("log_level", int, 2), ("log_facility", str, None),
            ("log_extra", str, 'accX_log'), ("aaa_url", str, None), ("aaa_flag", int, -1),
            ("aaa_missed_flag", int, -1), ("service_type", int, -1),
            ("aaa_extra", str, 'accX_aaa'), ("db_flag", int, -1), ("db_missed_flag", int, -1),
            ("db_extra", str, 'accX_db'), ("db_url", str, None), ("db_table_acc", str, 'acc'),
            ("db_table_missed_calls", str, 'missed_calls'), ("acc_method_column", str, 'method'),
            ("acc_from_tag_column", str, 'from_tag'), ("acc_to_tag_column", str, 'to_tag'),
            ("acc_callid_column", str, 'callid'), ("acc_sip_code_column", str, 'sip_code'),
            ("acc_sip_reason_column", str, 'sip_reason'), ("acc_time_column", str, 'time'),
        ],
    ),
    "domain": (
        [
            ("is_from_local", 0, R|F|B|L), ("is_uri_host_local", 0, R|F|B|L),
            ("is_domain_local", 1, R|F|B|L|S|T),
        ],
        [
            ("db_url", str, 'mysql://opensipsro:opensipsro@localhost/opensips'),
            ("db_mode", int, 0), ("domain_table", str, 'domain'), ("domain_col", str, 'domain'),
        ],
    ),
    "exec": (
        [
            ("exec_dset", 1, R|F), ("exec_msg", 1, R|F|L), ("exec_avp", 1, R|F|L),
            ("exec_avp", 2, R|F|L), ("exec_getenv", 2, R|F|L),
        ],
        [
            ("time_to_kill", int, 0), ("setvars", int, 1),
        ],
    ),
    "dialog": (
        [
            ("create_dialog", 0, R), ("set_dlg_profile", 1, R|F|O|B),
            ("set_dlg_profile", 2, R|F|O|B), ("unset_dlg_profile", 1, F|O|B),
            ("unset_dlg_profile", 2, F|O|B), ("is_in_profile", 1, R|F|O|B|L),
            ("is_in_profile", 2, R|F|O|B|L), ("get_profile_size", 2, R|F|O|B|L),
            ("get_profile_size", 3, R|F|O|B|L), ("set_dlg_flag", 1, R|F|O|B|L),
            ("test_and_set_dlg_flag", 2, R|F|O|B|L), ("reset_dlg_flag", 1, R|F|O|B|L),
            ("is_dlg_flag_set", 1, R|F|O|B|L), ("store_dlg_value", 2, R|F|O|B|L),
            ("fetch_dlg_value", 2, R|F|O|B|L), ("validate_dialog", 0, R),
            ("fix_route_dialog", 0, R), ("get_dialog_info", 4, R|F|O|B|L),
        ],
        [
            ("enable_stats", int, 1), ("hash_size", int, 4096),
            ("log_profile_hash_size", int, 4), ("rr_param", str, 'did'), ("dlg_flag", int, -1),
            ("bye_on_timeout_flag", int, -1), ("timeout_avp", str, None),
            ("default_timeout", int, 43200), ("dlg_extra_hdrs", str, None),
            ("dlg_match_mode", int, 0),
            ("db_url", str, 'mysql://opensips:opensipsrw@localhost/opensips'),
            ("db_mode", int, 0), ("table_name", str, 'dialog'),
            ("call_id_column", str, 'callid'), ("from_uri_column", str, 'from_uri'),
            ("from_tag_column", str, 'from_tag'), ("to_uri_column", str, 'to_uri'),
            ("to_tag_column", str, 'to_tag'), ("h_id_column", str, 'hash_id'),
            ("h_entry_column", str, 'hash_entry'), ("state_column", str, 'state'),
            ("start_time_column", str, 'start_time'), ("timeout_column", str, 'timeout'),
            ("to_cseq_column", str, 'callee_cseq'), ("from_cseq_column", str, 'caller_cseq'),
            ("to_route_column", str, 'callee_route_set'),
            ("from_route_column", str, 'caller_route_set'),
            ("to_contact_column", str, 'callee_contact'),
            ("from_contact_column", str, 'caller_contact'),
            ("to_sock_column", str, 'callee_sock'), ("from_sock_column", str, 'caller_sock'),
            ("db_update_period", int, 60), ("profiles_with_value", str, None),
            ("profiles_no_value", str, None),
        ],
    ),
    "call_control": (
        [
            ("call_control", 0, R),
        ],
        [
            ("init", str, None), ("start", str, None), ("stop", str, None), ("disable", int, 0),
            ("socket_name", str, '/var/run/callcontrol/socket'), ("socket_timeout", int, 500),
            ("diverter_avp_id", int, 805), ("canonical_uri_avp", str, '$avp(s:can_uri)'),
            ("signaling_ip_avp", str, '$avp(s:signaling_ip)'),
        ],
    ),
    "dispatcher": (
        [
            ("ds_select_dst", 2, R|F), ("ds_select_domain", 2, R|F), ("ds_next_dst", 0, R|F),
            ("ds_next_domain", 0, R|F), ("ds_mark_dst", 0, R|F), ("ds_mark_dst", 1, R|F),
            ("ds_is_in_list", 2, R|F|O|B), ("ds_is_in_list", 3, R|F|O|B),
            ("ds_is_in_list", 4, R|F|O|B),
        ],
        [
            ("list_file", str, '/usr/local/etc/opensips/dispatcher.list'), ("db_url", str, None),
            ("table_name", str, 'dispatcher'), ("setid_col", str, 'setid'),
            ("destination_col", str, 'destination'), ("flags_col", str, 'flags'),
            ("weight_col", str, 'weight'), ("attrs_col", str, 'attrs'), ("force_dst", int, 0),
            ("flags", int, 0), ("use_default", int, 0), ("dst_avp", str, None),
            ("grp_avp", str, None), ("cnt_avp", str, None), ("attrs_avp", str, None),
            ("hash_pvar", str, None), ("setid_pvar", str, None),
            ("ds_probing_threshhold", int, 3), ("ds_ping_method", str, 'OPTIONS'),
            ("ds_ping_from", str, 'sip:dispatcher@localhost'), ("ds_ping_interval", int, 0),
            ("ds_probing_mode", int, 0), ("options_reply_codes", str, None),
            ("ds_probing_sock", str, None),
        ],
    ),
    "drouting": (
        [
            ("do_routing", 0, R|F), ("do_routing", 1, R|F), ("do_routing", 2, R|F),
            ("use_next_gw", 0, R|F), ("next_routing", 0, F), ("is_from_gw", 0, R|F|O),
            ("is_from_gw", 1, R|F|O), ("is_from_gw", 2, R), ("goes_to_gw", 0, R|F|O),
            ("goes_to_gw", 1, R|F|O), ("goes_to_gw", 2, R|F|O), ("dr_disable", 0, R|F),
        ],
        [
            ("db_url", str, None), ("drd_table", str, 'dr_gateways'),
            ("drr_table", str, 'dr_rules'), ("drg_table", str, 'dr_groups'),
            ("drl_table", str, 'dr_gw_lists'), ("use_domain", int, 1),
            ("drg_user_col", str, 'username'), ("drg_domain_col", str, 'domain'),
            ("drg_grpid_col", str, 'groupid'), ("ruri_avp", str, None),
            ("gw_attrs_avp", str, None), ("rule_attrs_avp", str, None), ("gw_id_avp", str, None),
            ("rule_id_avp", str, None), ("fetch_rows", int, 1000), ("force_dns", int, 1),
            ("define_blacklist", str, None), ("probing_interval", int, 30),
            ("probing_method", str, 'OPTIONS'), ("probing_from", str, 'sip:prober@localhost'),
            ("probing_reply_codes", str, None),
        ],
    ),
    "load_balancer": (
        [
            ("load_balance", 2, R|F|B), ("load_balance", 3, R|F|B), ("lb_disable", 0, R|F),
        ],
        [
            ("db_url", str, 'mysql://opensips:opensipsrw@localhost/opensips'),
            ("db_table", str, None), ("probing_interval", int, 30),
            ("probing_method", str, 'OPTIONS'), ("probing_from", str, 'sip:prober@localhost'),
            ("probing_reply_codes", str, None),
        ],
    ),
    "pike": (
        [
            ("pike_check_req", 0, R),
        ],
        [
            ("sampling_time_unit", int, 2), ("reqs_density_per_unit", int, 30),
            ("remove_latency", int, 120), ("pike_log_level", int, 1), ("check_route", str, None),
        ],
    ),
    "nathelper": (
        [
            ("fix_nated_contact", 0, R|O|B|L), ("fix_nated_contact", 1, R|O|B|L),
            ("fix_nated_sdp", 1, R|F|O|B|L), ("fix_nated_sdp", 2, R|F|O|B|L),
            ("set_rtp_proxy_set", 1, R|F|O|B|L), ("unforce_rtp_proxy", 0, R|F|O|B|L),
            ("nat_uac_test", 1, R|F|O|B|L), ("fix_nated_register", 0, R),
            ("add_rcv_param", 0, R), ("add_rcv_param", 1, R), ("start_recording", 0, R|O),
            ("rtpproxy_offer", 0, R|F|O|B|L), ("rtpproxy_offer", 1, R|F|O|B|L),
            ("rtpproxy_offer", 2, R|F|O|B|L), ("rtpproxy_answer", 0, R|F|O|B|L),
            ("rtpproxy_answer", 1, R|F|O|B|L), ("rtpproxy_answer", 2, R|F|O|B|L),
            ("rtpproxy_stream2uac", 2, R|O), ("rtpproxy_stream2uas", 2, R|O),
            ("rtpproxy_stop_stream2uac", 0, R|O), ("rtpproxy_stop_stream2uas", 0, R|O),
        ],
        [
            ("natping_interval", int, 0), ("ping_nated_only", int, 0),
            ("nortpproxy_str", str, 'a=nortpproxy:yes'), ("rtpproxy_sock", str, None),
            ("rtpproxy_disable_tout", int, 60), ("rtpproxy_retr", int, 5),
            ("rtpproxy_tout", int, -1), ("rtpproxy_timeout", str, None),
            ("received_avp", str, None), ("force_socket", str, None),
            ("sipping_from", str, None), ("sipping_method", str, 'OPTIONS'),
            ("sipping_bflag", int, -1), ("natping_processes", int, 1),
            ("natping_socket", str, None), ("db_url", str, None),
            ("db_table", str, 'nh_sockets'), ("rtpp_socket_col", str, 'rtpproxy_sock'),
            ("set_id_col", str, 'set_id'), ("rtpp_notify_socket", str, None),
        ],
    ),
    "nat_traversal": (
        [
            ("nat_keepalive", 0, R), ("fix_contact", 0, R|O|B|L),
            ("client_nat_test", 1, R|F|O|B|L),
        ],
        [
            ("keepalive_interval", int, 60), ("keepalive_method", str, 'NOTIFY'),
            ("keepalive_from", str, None), ("keepalive_extra_headers", str, ''),
            ("keepalive_state_file", str, 'keepalive_state'),
        ],
    ),
    "uac": (
        [
            ("uac_replace_from", 2, R|F|B), ("uac_replace_from", 1, R|F|B),
            ("uac_restore_from", 0, R|F|B), ("uac_replace_to", 2, R|F|B),
            ("uac_replace_to", 1, R|F|B), ("uac_restore_to", 0, R|F|B), ("uac_auth", 0, F),
        ],
        [
            ("rr_from_store_param", str, 'vsf'), ("rr_to_store_param", str, 'vst'),
            ("restore_mode", str, None), ("restore_passwd", str, ''), ("credential", str, None),
            ("auth_username_avp", str, None), ("auth_realm_avp", str, None),
            ("auth_password_avp", str, None),
        ],
    ),
    "stun": (
        [],
        [
            ("primary_ip", str, '192.168.2.134'), ("primary_port", str, '5060'),
            ("alternate_ip", str, '192.168.2.143'), ("alternate_port", str, '3478'),
        ],
    ),
    "json": (
        [
            ("json_link", 2, R|F|O|B|L|S|T),
        ],
        [],
    ),
    "localcache": (
        [],
        [
            ("cache_table_size", int, 9), ("cache_clean_period", int, 600),
        ],
    ),
    "memcached": (
        [],
        [
            ("server", str, None),
        ],
    ),
    "b2b_entities": (
        [],
        [
            ("server_hsize", int, 9), ("client_hsize", int, 9), ("script_req_route", str, None),
            ("script_reply_route", str, None), ("replication_mode", int, 0),
            ("db_url", str, None), ("dbtable", str, 'b2b_entities'), ("update_period", int, 100),
            ("b2b_key_prefix", str, 'B2B'),
        ],
    ),
    "b2b_logic": (
        [
            ("b2b_init_request", 5, R), ("b2b_init_request", 4, R), ("b2b_init_request", 3, R),
            ("b2b_init_request", 2, R), ("b2b_init_request", 1, R), ("b2b_init_request", 0, R),
            ("b2b_bridge_request", 2, R),
        ],
        [
            ("hash_size", int, 10), ("cleanup_period", int, 100), ("update_period", int, 100),
            ("script_scenario", str, None), ("extern_scenario", str, None),
            ("custom_headers", str, None), ("use_init_sdp", int, 0), ("db_url", str, None),
            ("dbtable", str, 'b2b_logic'), ("max_duration", int, 43200),
            ("b2bl_key_avp", str, None), ("server_address", str, None),
            ("init_callid_hdr", str, None),
        ],
    ),
    "msilo": (
        [
            ("m_store", 0, R|F), ("m_store", 1, R|F), ("m_dump", 0, R), ("m_dump", 1, R),
        ],
        [
            ("db_url", str, 'mysql://opensips:opensipsrw@localhost/opensips'),
            ("db_table", str, 'silo'), ("from_address", str, None), ("contact_hdr", str, None),
            ("content_type_hdr", str, None), ("offline_message", str, None),
            ("reminder", str, None), ("outbound_proxy", str, None), ("expire_time", int, 259200),
            ("check_time", int, 60), ("send_time", int, 0), ("clean_period", int, 10),
            ("use_contact", int, 1), ("sc_mid", str, 'id'), ("sc_from", str, 'src_addr'),
            ("sc_to", str, 'dst_addr'), ("sc_uri_user", str, 'username'),
            ("sc_uri_host", str, 'domain'), ("sc_body", str, 'body'), ("sc_ctype", str, 'ctype'),
            ("sc_exp_time", str, 'exp_time'), ("sc_inc_time", str, 'inc_time'),
            ("sc_snd_time", str, 'snd_time'), ("snd_time_avp", str, None), ("add_date", int, 1),
            ("max_messages", int, 0),
        ],
    ),
    "presence": (
        [
            ("handle_publish", 0, R), ("handle_publish", 1, R), ("handle_subscribe", 0, R),
            ("handle_subscribe", 1, R),
        ],
        [
            ("db_url", str, None), ("presentity_table", str, 'presentity'),
            ("active_watchers_table", str, 'active_watchers'),
            ("watchers_table", str, 'watchers'), ("clean_period", int, 100),
            ("db_update_period", int, 100), ("expires_offset", int, 0),
            ("max_expires_subscribe", int, 3600), ("max_expires_publish", int, 3600),
            ("server_address", str, None), ("subs_htable_size", int, 9),
            ("pres_htable_size", int, 9), ("fallback2db", int, 0),
            ("enable_sphere_check", int, 0), ("waiting_subs_daysno", int, 0),
            ("mix_dialog_presence", int, 0), ("bla_presentity_spec", str, None),
            ("bla_fix_remote_target", int, 1), ("notify_offline_body", int, 0),
        ],
    ),
    "presence_xml": (
        [],
        [
            ("db_url", str, 'mysql://opensips:opensipsrw@localhost/opensips'),
            ("xcap_table", str, 'xcap'), ("force_active", int, 0), ("pidf_manipulation", int, 0),
            ("integrated_xcap_server", int, 0), ("xcap_server", str, None),
            ("pres_rules_auid", str, None), ("pres_rules_filename", str, None),
        ],
    ),
    "options": (
        [
            ("options_reply", 0, R),
        ],
        [
            ("accept", str, None), ("accept_encoding", str, None),
            ("accept_language", str, None), ("support", str, None),
        ],
    ),
    "path": (
        [
            ("add_path", 0, R), ("add_path", 1, R), ("add_path_received", 0, R),
            ("add_path_received", 1, R),
        ],
        [
            ("use_received", int, 0), ("enable_double_path", int, 1),
        ],
    ),
    "siptrace": (
        [
            ("sip_trace", 0, R|F|O|B|L), ("trace_dialog", 0, R),
        ],
        [
            ("db_url", str, 'mysql://opensipsro:opensipsro@localhost/opensips'),
            ("table", str, 'sip_trace'), ("date_column", str, 'time_stamp'),
            ("callid_column", str, 'callid'), ("traced_user_column", str, 'traced_user'),
            ("msg_column", str, 'msg'), ("method_column", str, 'method'),
            ("status_column", str, 'status'), ("fromip_column", str, 'fromip'),
            ("toip_column", str, 'toip'), ("fromtag_column", str, 'fromtag'),
            ("direction_column", str, 'direction'), ("trace_flag", int, -1),
            ("trace_on", int, 0), ("traced_user_avp", str, None), ("trace_table_avp", str, None),
            ("duplicate_uri", str, None), ("trace_local_ip", str, None),
            ("enable_ack_trace", int, 0),
        ],
    ),
    "dialplan": (
        [
            ("dp_translate", 2, R|F|B|L|S|T), ("dp_translate", 1, R|F|B|L|S|T),
        ],
        [
            ("db_url", str, 'mysql://opensipsro:opensipsro@localhost/opensips'),
            ("table_name", str, 'dialplan'), ("dpid_col", str, 'dpid'), ("pr_col", str, 'pr'),
            ("match_op_col", str, 'match_op'), ("match_exp_col", str, 'match_exp'),
            ("match_len_col", str, 'match_len'), ("subst_exp_col", str, 'subst_exp'),
            ("repl_exp_col", str, 'repl_exp'), ("attrs_col", str, 'attrs'),
            ("attrs_pvar", str, None), ("attribute_pvar", str, None), ("fetch_rows", int, 1000),
        ],
    ),
    "uac_redirect": (
        [
            ("set_deny_filter", 2, F), ("set_accept_filter", 2, F), ("get_redirects", 2, F),
            ("get_redirects", 1, F),
        ],
        [
            ("deny_filter", str, None), ("accept_filter", str, None),
            ("default_filter", str, None), ("acc_function", str, 'acc_log_request'),
            ("acc_db_table", str, 'acc'),
        ],
    ),
    "statistics": (
        [
            ("update_stat", 2, R|F|O|B|L|S|T), ("reset_stat", 1, R|F|O|B|L|S|T),
        ],
        [
            ("variable", str, None),
        ],
    ),
    "gflags": (
        [
            ("set_gflag", 1, R|F|O|B|L|S|T), ("reset_gflag", 1, R|F|O|B|L|S|T),
            ("is_gflag", 1, R|F|O|B|L|S|T),
        ],
        [
            ("initial", int, 0),
        ],
    ),
    "mediaproxy": (
        [
            ("engage_media_proxy", 0, R), ("use_media_proxy", 0, R|F|O|B|L),
            ("end_media_session", 0, R|F|O|B|L),
        ],
        [
            ("disable", int, 0),
            ("mediaproxy_socket", str, '/var/run/mediaproxy/dispatcher.sock'),
            ("mediaproxy_timeout", int, 500), ("signaling_ip_avp", str, '$avp(s:signaling_ip)'),
            ("media_relay_avp", str, '$avp(s:media_relay)'), ("ice_candidate", str, 'none'),
            ("ice_candidate_avp", str, '$avp(s:ice_candidate)'),
        ],
    ),
    "xlog": (
        [
            ("xlog", 1, ALL), ("xlog", 2, ALL), ("xdbg", 1, ALL),
        ],
        [
            ("buf_size", int, 4096), ("force_color", int, 0),
        ],
    ),
}

#: module -> names of the pseudo-variables it exports (`pv_export_t`)
PVARS: dict[str, list[str]] = {
    "tm": ["T_branch_idx", "T_reply_code", "T_ruri", "bavp"],
    "rr": ["rr_params"],
    "dialog": ["DLG_count", "DLG_lifetime", "DLG_status", "DLG_dir", "DLG_flags", "dlg_val"],
    "benchmark": ["BM_time_diff"],
    "cfgutils": ["RANDOM", "shv", "time", "env"],
    "json": ["json"],
    "nat_traversal": ["keepalive.socket", "source_uri"],
    "statistics": ["stat"],
    "xlog": ["C"],
}


# ======================================================================
# building export tables


def _fake_func(ctx: Any, *args: Any) -> int:
    return 1


class FakePV(PV):
    """A module PV that reads as null and ignores writes."""

    __slots__ = ()
    writable = True

    def get(self, ctx: Any) -> Value:
        return None

    def set(self, ctx: Any, value: Value, op: str = "=") -> None:
        return None


def _make_pv(spec: Any, module: LoadedModule) -> PV:
    return FakePV(spec.raw)


def fake_exports(name: str, skip_cmds: set[tuple[str, int]] | None = None,
                 skip_params: set[str] | None = None,
                 export_name: str | None = None) -> ModuleExports:
    """The fake ModuleExports of a 1.6 module (minus what is skipped)."""
    cmds, params = TABLES[name]
    skip_cmds = skip_cmds or set()
    skip_params = skip_params or set()
    return ModuleExports(
        name=export_name or name,
        cmds=[CmdExport(n, _fake_func, nargs, mask)
              for n, nargs, mask in cmds if (n, nargs) not in skip_cmds],
        params=[ParamExport(n, typ, default)
                for n, typ, default in params if n not in skip_params],
        pvars=[PVarExport(p, _make_pv) for p in PVARS.get(name, [])],
    )


def _add_extra(registry: Registry, real: LoadedModule) -> None:
    """Register the fake part of a shipped module that leaves some of 1.6 out."""
    name = real.name
    extra = EXTRA_NAME.get(name)
    if extra is None or name not in TABLES or extra in registry:
        return
    have_cmds = {(c.name, c.nargs) for c in real.exports.cmds}
    have_params = {p.name for p in real.exports.params}
    exports = fake_exports(name, have_cmds, have_params, export_name=extra)
    exports.pvars = []
    if exports.cmds or exports.params:
        registry.add(exports, f"<fake part of {name}>")


def load_fake_or_real(registry: Registry, spec: str) -> LoadedModule:
    """What `loadmodule spec` gives here: the real module, else the fake table."""
    name = module_name(spec)
    try:
        mod = load_module(registry, spec)
    except ModuleError as e:
        if "no such module" not in str(e) or name not in TABLES:
            raise
        return registry.add(fake_exports(name), f"<fake {spec}>")
    _add_extra(registry, mod)
    return mod


def apply_modparam(registry: Registry, mod_regex: str, param: str, value: Any) -> None:
    """`set_modparam`, sending what a shipped module rejects to its fake part."""
    extras = {v: k for k, v in EXTRA_NAME.items() if v in registry}
    try:
        rx = re.compile(f"^({mod_regex})$", re.IGNORECASE)
    except re.error:
        rx = None
    matched = [] if rx is None else [
        m for m in registry.modules.values() if m.name not in extras and rx.match(m.name)]
    if not matched:
        set_modparam(registry, mod_regex, param, value)  # raises the real loader's error
        return
    for mod in matched:
        extra = EXTRA_NAME.get(mod.name)
        if (extra in registry and not any(p.name == param for p in mod.exports.params)
                and any(p.name == param for p in registry.modules[extra].exports.params)):
            set_modparam(registry, re.escape(extra), param, value)
        else:
            set_modparam(registry, re.escape(mod.name), param, value)


def load_modules(script: ast.Script, registry: Registry) -> list[ErrorItem]:
    """`sipserver.script.load_modules` with the fake tables as fallback."""
    return script_loader.load_modules(script, registry, load=load_fake_or_real,
                                      modparam=apply_modparam)


def registry_for(script: ast.Script) -> tuple[Registry, list[ErrorItem]]:
    """A Registry for the script's loadmodule/modparam lines, and their errors."""
    registry = Registry()
    errors = load_modules(script, registry)
    return registry, errors
