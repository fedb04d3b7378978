//! The `session` Redis module: registration only. Commands live in `commands/`, the native type's
//! callbacks in `datatype.rs`, configuration in `config.rs`; the domain is the `session-core` crate.

mod acl;
mod cluster;
mod command;
mod commands;
mod config;
mod datatype;
mod docs;
mod errors;
mod events;
mod ffi;
mod propagation;
mod registry;
mod stats;

use std::os::raw::c_int;

use redis_module::configuration::ConfigurationFlags;
use redis_module::{raw, redis_module, Context, RedisString, Status};
use session_core::limits;

use crate::datatype::SESSION_TYPE;

fn init(ctx: &Context, _args: &[RedisString]) -> Status {
    std::panic::set_hook(Box::new(|info| {
        redis_module::logging::log_warning(format!("session module: caught panic: {info}"));
    }));
    // Let rdb_load see read errors (a truncated RESTORE payload) instead of Redis aborting; and
    // take part in async loading (`repl-diskless-load swapdb`: the registry is staged and swapped
    // with the databases, see `events::on_async_load`), without which Redis skips diskless load.
    if let Some(set_options) = unsafe { raw::RedisModule_SetModuleOptions } {
        let options = raw::REDISMODULE_OPTIONS_HANDLE_IO_ERRORS
            | raw::REDISMODULE_OPTIONS_HANDLE_REPL_ASYNC_LOAD;
        unsafe { set_options(ctx.ctx, options as c_int) };
    }
    for spec in commands::table() {
        if let Err(e) = command::register(ctx.ctx, &spec) {
            ctx.log_warning(&e.to_string());
            return Status::Err;
        }
    }
    // The per-user index follows the keyspace through keyspace and server events.
    if let Err(e) = events::subscribe(ctx.ctx) {
        ctx.log_warning(&e.to_string());
        return Status::Err;
    }
    // The TOUCH reply's names, encoded once by Redis and replayed.
    let encoded = ffi::encode_names(ctx.ctx);
    if encoded < ffi::Name::ALL.len() {
        ctx.log_notice(&format!(
            "TOUCH reply names: {encoded} of {} encoded by ECHO at load, the rest written by the module (same bytes, slower)",
            ffi::Name::ALL.len()
        ));
    }
    // Writes skip building their replicated form while nothing can receive it.
    propagation::watch(ctx.ctx);
    // The primary drops expired notifications and catalog items once a second.
    if let Err(e) = commands::schedule_purge(ctx.ctx) {
        ctx.log_warning(&e.to_string());
        return Status::Err;
    }
    // In a cluster the registry travels over the cluster bus (no bus work when standalone).
    if let Err(e) = cluster::init(ctx.ctx) {
        ctx.log_warning(&e.to_string());
        return Status::Err;
    }
    // Replace the crate's default INFO callback with the module's `INFO session` section.
    if let Some(register) = unsafe { raw::RedisModule_RegisterInfoFunc } {
        unsafe { register(ctx.ctx, Some(stats::info)) };
    }
    Status::Ok
}

redis_module! {
    name: "session",
    version: 1,
    allocator: (redis_module::alloc::RedisAlloc, redis_module::alloc::RedisAlloc),
    data_types: [SESSION_TYPE],
    init: init,
    commands: [],
    configurations: [
        i64: [
            ["default-idle", &config::DEFAULT_IDLE, 1800, 1, config::LIFETIME_MAX, ConfigurationFlags::DEFAULT, None],
            ["default-maxage", &config::DEFAULT_MAXAGE, 86_400, 1, config::LIFETIME_MAX, ConfigurationFlags::DEFAULT, None],
            ["max-fields", &config::MAX_FIELDS, 1024, limits::MAX_FIELDS.0, limits::MAX_FIELDS.1, ConfigurationFlags::DEFAULT, None],
            ["max-field-size", &config::MAX_FIELD_SIZE, 65_536, limits::MAX_FIELD_SIZE.0, limits::MAX_FIELD_SIZE.1, ConfigurationFlags::DEFAULT, None],
            ["max-categories", &config::MAX_CATEGORIES, 8, limits::MAX_CATEGORIES.0, limits::MAX_CATEGORIES.1, ConfigurationFlags::DEFAULT, None],
            ["seen-capacity", &config::SEEN_CAPACITY, 128, limits::SEEN_CAPACITY.0 as i64, limits::SEEN_CAPACITY.1 as i64, ConfigurationFlags::DEFAULT, None],
            ["hll-precision", &config::HLL_PRECISION, 10, limits::HLL_PRECISION.0 as i64, limits::HLL_PRECISION.1 as i64, ConfigurationFlags::DEFAULT, None],
            ["interest-top-n", &config::INTEREST_TOP_N, 8, limits::TOP_N.0 as i64, limits::TOP_N.1 as i64, ConfigurationFlags::DEFAULT, None],
            ["interest-half-life", &config::INTEREST_HALF_LIFE, 3600, 1, config::LIFETIME_MAX, ConfigurationFlags::DEFAULT, None],
            ["dormant-after", &config::DORMANT_AFTER, 1800, 1, config::LIFETIME_MAX, ConfigurationFlags::DEFAULT, None],
            ["max-catalog-items", &config::MAX_CATALOG_ITEMS, 1_000_000, 1, 100_000_000, ConfigurationFlags::DEFAULT, None],
            ["impressions-width", &config::IMPRESSIONS_WIDTH, 256, limits::IMPRESSIONS_WIDTH.0 as i64, limits::IMPRESSIONS_WIDTH.1 as i64, ConfigurationFlags::DEFAULT, None],
            ["max-session-size", &config::MAX_SESSION_SIZE, 1_048_576, 1, 512 * 1024 * 1024, ConfigurationFlags::DEFAULT, None],
            ["notify-ttl", &config::NOTIFY_TTL, 86_400, 1, config::LIFETIME_MAX, ConfigurationFlags::DEFAULT, None],
            ["max-notifications", &config::MAX_NOTIFICATIONS, 100, 1, 100_000, ConfigurationFlags::DEFAULT, None],
            ["max-registry-groups", &config::MAX_REGISTRY_GROUPS, 100_000, 1, 100_000_000, ConfigurationFlags::DEFAULT, None],
            ["max-notification-size", &config::MAX_NOTIFICATION_SIZE, 65_536, 1, 512 * 1024 * 1024, ConfigurationFlags::DEFAULT, None],
            ["max-registry-memory", &config::MAX_REGISTRY_MEMORY, 256 * 1024 * 1024, 1024, 1 << 44, ConfigurationFlags::DEFAULT, None],
            ["max-groups", &config::MAX_GROUPS, 64, limits::MAX_GROUPS.0, limits::MAX_GROUPS.1, ConfigurationFlags::DEFAULT, None],
            ["max-sessions-per-user", &config::MAX_SESSIONS_PER_USER, 0, 0, 1_000_000, ConfigurationFlags::DEFAULT, None],
            ["max-unpaged-sessions", &config::MAX_UNPAGED_SESSIONS, 10_000, 1, 100_000_000, ConfigurationFlags::DEFAULT, None],
            ["trend-top-k", &config::TREND_TOP_K, 1000, session_core::surface::trending::TOP_K.0 as i64, session_core::surface::trending::TOP_K.1 as i64, ConfigurationFlags::DEFAULT, None],
            ["trend-half-life", &config::TREND_HALF_LIFE, 600, 1, config::LIFETIME_MAX, ConfigurationFlags::DEFAULT, None],
            ["returning-gap", &config::RETURNING_GAP, 1800, 1, config::LIFETIME_MAX, ConfigurationFlags::DEFAULT, None],
        ],
        string: [
            ["seen-error-rate", &config::SEEN_ERROR_RATE, "0.01", ConfigurationFlags::DEFAULT, None],
            ["engaged-threshold", &config::ENGAGED_THRESHOLD, "0.5", ConfigurationFlags::DEFAULT, None],
            ["cold-start-trend", &config::COLD_START_TREND, "0", ConfigurationFlags::DEFAULT, None],
            ["interest-segment-weight", &config::INTEREST_SEGMENT_WEIGHT, "0.25", ConfigurationFlags::DEFAULT, None],
        ],
        bool: [],
        enum: [],
        module_args_as_configuration: true,
    ]
}
