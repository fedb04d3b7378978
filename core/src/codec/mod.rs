//! The forms things take outside memory: the saved forms (RDB, DUMP, AOF rewrite, digest) of a
//! session and of the registry, the bounds-checked wire reader they share, the argument parser
//! with the replicated (effect) forms of commands, and SESSION.INFO's JSON document.
//!
//! This is the top layer: it may know every model type; no model type knows it.

pub mod args;
pub mod info;
pub mod registry;
pub mod session;
pub mod wire;

pub use session::{decode, encode, ENCODING_VERSION};
