//! The intelligent session store's domain, in plain Rust with no Redis types. The Redis module
//! (the root crate, `src/`) is a thin layer over this crate.
//!
//! The folders are layers; a module only imports from its own layer or a lower one:
//!
//! 1. `error`, `json`, `mem` (allocator sizes, prefetch, hints), `limits` (the ranges config, `PARAMS`
//!    and the decoders share), `version` (registry entries' versions): helpers that know no domain
//!    type.
//! 2. `activity`: counters and sketches (bloom, hll, interests, impressions).
//! 3. `session`: the model (lifecycle, fields, activity, calculated data, groups).
//! 4. `enrich`, `notify`, `surface` (catalog, ranking), `users`: operations on sessions and the
//!    registry's parts.
//! 5. `registry`: the module-global registry (catalogs, groups).
//! 6. `codec`: the forms things take outside memory: saved forms (session, registry), the wire
//!    reader, the argument parser and the replicated forms, SESSION.INFO's document.

pub mod activity;
pub mod codec;
pub mod enrich;
pub mod error;
pub mod json;
pub mod limits;
pub mod mem;
pub mod notify;
pub mod registry;
pub mod session;
pub mod surface;
pub mod users;
pub mod version;

pub use activity::{Activity, SketchParams};
pub use error::{Error, Result};
pub use session::{Session, Settings, Touch, TouchOutcome};
