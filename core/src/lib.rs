//! The intelligent session store's domain, in plain Rust with no Redis types: the session model,
//! argument parsing, the saved-form codec and the JSON views. The Redis module (`module/`) is a
//! thin layer over this crate.

pub mod activity;
pub mod args;
pub mod catalog;
pub mod codec;
pub mod enrich;
pub mod error;
pub mod fields;
pub mod hints;
pub mod impressions;
pub mod info;
pub mod interests;
pub mod memory;
pub mod notify;
pub mod prefetch;
pub mod registry;
pub mod session;
pub mod sketch;
pub mod surface;
pub mod users;
mod wire;

pub use activity::{Activity, SketchParams};
pub use error::{Error, Result};
pub use session::{Session, Settings, Touch, TouchOutcome};
