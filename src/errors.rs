//! Error replies of the Redis layer. Domain errors carry their own text (`session_core::Error`);
//! the few that belong to the Redis side are built here, so each message exists once.

use redis_module::RedisError;

pub fn from_core(e: session_core::Error) -> RedisError {
    RedisError::String(e.to_string())
}

pub fn missing_api(name: &str) -> RedisError {
    RedisError::String(format!(
        "ERR this server lacks {name}; the session module needs Redis 7.0 or newer"
    ))
}

pub fn write_failed() -> RedisError {
    RedisError::Str("ERR the server refused to store the session")
}

pub fn internal_panic() -> RedisError {
    RedisError::Str("ERR internal error in the session module (details in the server log)")
}

pub fn no_such_catalog() -> RedisError {
    RedisError::Str("ERR no such catalog")
}

pub fn no_such_group() -> RedisError {
    RedisError::Str("ERR no such group")
}

pub fn catalog_full(limit: usize) -> RedisError {
    RedisError::String(format!(
        "ERR catalog is full (limit {limit} items, session.max-catalog-items)"
    ))
}

pub fn reserved(what: &str) -> RedisError {
    RedisError::String(format!(
        "ERR {what} is reserved for replication and the AOF"
    ))
}

pub fn target_exists() -> RedisError {
    RedisError::Str("ERR target exists")
}

pub fn subscribe_failed(what: &str) -> RedisError {
    RedisError::String(format!("ERR could not subscribe to {what}"))
}
