//! The SESSION commands, one file per family, and the table that registers them.

mod enrich;
mod load;
mod read;
mod touch;

use crate::command::{entry, Spec};

/// Every command the module registers.
pub fn table() -> Vec<Spec> {
    vec![
        Spec {
            name: "session.touch",
            entry: entry!(touch::touch),
            flags: "write deny-oom fast",
            first_key: 1,
            last_key: 1,
            step: 1,
        },
        Spec {
            name: "session.get",
            entry: entry!(read::get),
            flags: "readonly fast",
            first_key: 1,
            last_key: 1,
            step: 1,
        },
        Spec {
            name: "session.seen",
            entry: entry!(read::seen),
            flags: "readonly fast",
            first_key: 1,
            last_key: 1,
            step: 1,
        },
        Spec {
            name: "session.info",
            entry: entry!(read::info),
            flags: "readonly",
            first_key: 1,
            last_key: 1,
            step: 1,
        },
        Spec {
            name: "session.enrich",
            entry: entry!(enrich::enrich),
            flags: "write deny-oom",
            first_key: 1,
            last_key: 1,
            step: 1,
        },
        Spec {
            name: "session.load",
            entry: entry!(load::load),
            flags: "write deny-oom",
            first_key: 1,
            last_key: 1,
            step: 1,
        },
    ]
}
