//! What `COMMAND DOCS` and `COMMAND INFO` say about every command: summary, complexity, arity,
//! key specs (so cluster clients route by key and ACL key patterns apply) and the argument tree.
//! Registered through `RedisModule_SetCommandInfo` right after each command is created.

use std::ffi::CString;
use std::os::raw::c_int;
use std::ptr;

use redis_module::commands::{get_redis_key_spec, BeginSearch, FindKeys, KeySpec, KeySpecFlags};
use redis_module::{raw, RedisError};

use crate::ffi::api;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Key,
    Str,
    Int,
    Double,
    Time,
    Token,
    Block,
}

/// One argument of a command's documented syntax.
pub struct Arg {
    name: &'static str,
    kind: Kind,
    token: Option<&'static str>,
    optional: bool,
    multiple: bool,
    sub: &'static [Arg],
}

const fn arg(name: &'static str, kind: Kind) -> Arg {
    Arg {
        name,
        kind,
        token: None,
        optional: false,
        multiple: false,
        sub: &[],
    }
}
const fn key(name: &'static str) -> Arg {
    arg(name, Kind::Key)
}
const fn string(name: &'static str) -> Arg {
    arg(name, Kind::Str)
}
const fn int(name: &'static str) -> Arg {
    arg(name, Kind::Int)
}
/// `[TOKEN value]`
const fn option(token: &'static str, name: &'static str, kind: Kind) -> Arg {
    Arg {
        name,
        kind,
        token: Some(token),
        optional: true,
        multiple: false,
        sub: &[],
    }
}
/// `[TOKEN]`
const fn flag(token: &'static str) -> Arg {
    Arg {
        name: token,
        kind: Kind::Token,
        token: Some(token),
        optional: true,
        multiple: false,
        sub: &[],
    }
}
/// `[TOKEN ...sub]`
const fn block(
    token: &'static str,
    name: &'static str,
    optional: bool,
    sub: &'static [Arg],
) -> Arg {
    Arg {
        name,
        kind: Kind::Block,
        token: Some(token),
        optional,
        multiple: false,
        sub,
    }
}
/// `value [value ...]`
const fn many(name: &'static str, kind: Kind) -> Arg {
    Arg {
        name,
        kind,
        token: None,
        optional: false,
        multiple: true,
        sub: &[],
    }
}
/// `(a b) [(a b) ...]`
const fn many_blocks(name: &'static str, sub: &'static [Arg]) -> Arg {
    Arg {
        name,
        kind: Kind::Block,
        token: None,
        optional: false,
        multiple: true,
        sub,
    }
}

/// How a command touches its key (the first argument), if it has one.
#[derive(Clone, Copy)]
pub enum Keys {
    None,
    Read,
    Update,
    Overwrite,
    /// A source that is moved away (first argument) and a new key (second).
    Move,
}

pub struct Doc {
    pub name: &'static str,
    summary: &'static str,
    complexity: &'static str,
    arity: c_int,
    keys: Keys,
    args: &'static [Arg],
}

const SINCE: &str = "0.1.0";

const TOUCH_ARGS: &[Arg] = &[
    key("key"),
    option("IDLE", "seconds", Kind::Int),
    option("MAXAGE", "seconds", Kind::Int),
    flag("XX"),
    option("USER", "principal", Kind::Str),
    block(
        "SET",
        "set",
        true,
        &[
            int("count"),
            many_blocks("field-value", &[string("field"), string("value")]),
        ],
    ),
    block(
        "DEL",
        "del",
        true,
        &[int("count"), many("field", Kind::Str)],
    ),
    block(
        "EVENT",
        "event",
        true,
        &[
            string("item"),
            block(
                "CATEGORIES",
                "categories",
                true,
                &[int("count"), many("category", Kind::Str)],
            ),
        ],
    ),
    option("AT", "unix-time-milliseconds", Kind::Time),
    block(
        "PARAMS",
        "params",
        true,
        &[
            int("seen-capacity"),
            arg("seen-error-rate", Kind::Double),
            int("hll-precision"),
            int("top-n"),
            int("half-life"),
        ],
    ),
    option("PIDLE", "milliseconds", Kind::Int),
    option("PMAXAGE", "milliseconds", Kind::Int),
    block(
        "REPLACE",
        "replace",
        true,
        &[
            int("count"),
            Arg {
                optional: true,
                ..many_blocks("field-value", &[string("field"), string("value")])
            },
        ],
    ),
    block(
        "WITHFIELDS",
        "withfields",
        true,
        &[
            Arg {
                optional: true,
                ..int("count")
            },
            Arg {
                optional: true,
                ..many("field", Kind::Str)
            },
        ],
    ),
];

const ENRICH_ARGS: &[Arg] = &[
    key("key"),
    option("ATTRS", "json-object", Kind::Str),
    block(
        "JOIN",
        "join",
        true,
        &[int("count"), many("group", Kind::Str)],
    ),
    flag("NEWONLY"),
    block(
        "LEAVE",
        "leave",
        true,
        &[int("count"), many("group", Kind::Str)],
    ),
    option("AT", "unix-time-milliseconds", Kind::Time),
    block(
        "THRESHOLDS",
        "thresholds",
        true,
        &[
            arg("engaged", Kind::Double),
            int("dormant-after"),
            int("returning-gap"),
            arg("interest-weight", Kind::Double),
        ],
    ),
];

const SURFACE_ARGS: &[Arg] = &[
    key("key"),
    Arg {
        name: "source",
        kind: Kind::Block,
        token: None,
        optional: false,
        multiple: false,
        sub: &[
            Arg {
                token: Some("FROM"),
                ..string("catalog")
            },
            block(
                "ITEMS",
                "items",
                false,
                &[int("count"), many("item", Kind::Str)],
            ),
        ],
    },
    option("COUNT", "count", Kind::Int),
    option("CATEGORY", "category", Kind::Str),
    option("EXPLORE", "ratio", Kind::Double),
    option("MAXIMPRESSIONS", "count", Kind::Int),
    block(
        "BOOST",
        "boost",
        true,
        &[Arg {
            token: Some("TRENDING"),
            ..arg("weight", Kind::Double)
        }],
    ),
    flag("NOMARK"),
    flag("WITHSCORES"),
];

/// Every command's documentation, by full name (`session.catalog|add` for subcommands).
pub const DOCS: &[Doc] = &[
    Doc {
        name: "session.touch",
        summary: "Creates or refreshes a session: slides its expiry, writes fields, records an activity event",
        complexity: "O(B + N log N) for N SET/DEL names on a session whose fields take B bytes (O(F + N) for up to 8 names), plus O(L) for an EVENT on an L-layer seen filter",
        arity: -2,
        keys: Keys::Update,
        args: TOUCH_ARGS,
    },
    Doc {
        name: "session.get",
        summary: "Reads a session's fields without renewing its expiry",
        complexity: "O(F) for all fields; O(F + N log F) for N named fields of F",
        arity: -2,
        keys: Keys::Read,
        args: &[key("key"), Arg { optional: true, ..many("field", Kind::Str) }],
    },
    Doc {
        name: "session.seen",
        summary: "Tells for each item whether the session has (probably) seen it; 0 is certain",
        complexity: "O(N) for N items",
        arity: -3,
        keys: Keys::Read,
        args: &[key("key"), many("item", Kind::Str)],
    },
    Doc {
        name: "session.info",
        summary: "Returns the whole session, sketches included, as one JSON document",
        complexity: "O(size of the session)",
        arity: 2,
        keys: Keys::Read,
        args: &[key("key")],
    },
    Doc {
        name: "session.enrich",
        summary: "Computes and stores the session's calculated data (interests, engagement, segments, attrs, groups)",
        complexity: "O(N + A + (G + J + L) log(J + L)) for N interests, an attrs document of size A, G groups and J/L names to JOIN/LEAVE",
        arity: -2,
        keys: Keys::Update,
        args: ENRICH_ARGS,
    },
    Doc {
        name: "session.surface",
        summary: "Returns content the session has not seen, best first, and records the impressions",
        complexity: "O(C * (I + 1) + W) for COUNT C, I interests and W <= 65536 seen items stepped over, independent of the catalog's size; random draws O(log N)",
        arity: -4,
        keys: Keys::Update,
        args: SURFACE_ARGS,
    },
    Doc {
        name: "session.surface_ro",
        summary: "SURFACE without recording impressions (NOMARK forced): a read-only command, for replicas",
        complexity: "O(C * (I + 1) + W) for COUNT C, I interests and W <= 65536 seen items stepped over, independent of the catalog's size; random draws O(log N)",
        arity: -4,
        keys: Keys::Read,
        args: SURFACE_ARGS,
    },
    Doc {
        name: "session.impress",
        summary: "Records one impression of each item for frequency capping",
        complexity: "O(N) for N items",
        arity: -4,
        keys: Keys::Update,
        args: &[key("key"), int("count"), many("item", Kind::Str), option("WIDTH", "width", Kind::Int)],
    },
    Doc {
        name: "session.inbox",
        summary: "Returns the session's undelivered group notifications, oldest first, and marks them delivered (PEEK, or its synonym UNREAD: lists the unread ones, delivered or not, each with its delivered flag, marking nothing)",
        complexity: "O(I + G * (log(R) + log(M)) + C * G) for the session's G groups (explicit, and the segments its current activity qualifies for, from its I top interests) in a registry of R groups of at most M notifications, and C notifications returned (PEEK: plus the read ones stepped over)",
        arity: -2,
        keys: Keys::Update,
        args: &[
            key("key"),
            option("COUNT", "count", Kind::Int),
            flag("PEEK"),
            flag("UNREAD"),
            option("AT", "unix-time-milliseconds", Kind::Time),
            block(
                "THRESHOLDS",
                "thresholds",
                true,
                &[
                    arg("engaged", Kind::Double),
                    int("dormant-after"),
                    int("returning-gap"),
                    arg("interest-weight", Kind::Double),
                ],
            ),
        ],
    },
    Doc {
        name: "session.ack",
        summary: "Marks delivered group notifications read: up to an id, or each of the ids (as XACK, undelivered or unknown ids are ignored); returns how many were newly marked",
        complexity: "O(K * log(M)) for K ids in a group of M notifications; UPTO: O(log(M) + N) for the N notifications it marks",
        arity: -5,
        keys: Keys::Update,
        args: &[
            key("key"),
            string("group"),
            option("UPTO", "id", Kind::Str),
            block("IDS", "ids", true, &[int("count"), many("id", Kind::Str)]),
            option("AT", "unix-time-milliseconds", Kind::Time),
        ],
    },
    Doc {
        name: "session.notifygroup",
        summary: "Publishes one notification to every member of a group (JOINEDBEFORE/JOINEDAFTER: only those whose join time is before/at or after a time), once, whatever the group's size",
        complexity: "O(log M) for a group of M notifications (the duplicate check is a per-group id set), plus the notifications it trims or drops expired from the group's front (amortized: each was pushed once); O(1) in the number of members and of groups",
        arity: -4,
        keys: Keys::None,
        args: &[
            string("group"),
            string("id"),
            string("payload"),
            option("TTL", "seconds", Kind::Int),
            option("EXPIREAT", "unix-time-milliseconds", Kind::Time),
            option("MAXLEN", "count", Kind::Int),
            option("AT", "unix-time-milliseconds", Kind::Time),
            option("SEQ", "sequence", Kind::Int),
            option("PUBLISHER", "acl-user", Kind::Str),
            option("JOINEDBEFORE", "unix-time-milliseconds-or-now", Kind::Str),
            option("JOINEDAFTER", "unix-time-milliseconds", Kind::Time),
        ],
    },
    Doc {
        name: "session.load",
        summary: "Stores a session from its saved form (what the AOF rewrite writes)",
        complexity: "O(size of the payload)",
        arity: 3,
        keys: Keys::Overwrite,
        args: &[key("key"), string("payload")],
    },
    Doc {
        name: "session.sessions",
        summary: "Lists a user's live sessions the caller may read (in Redis Cluster: every primary's, within session.cluster-timeout); with CURSOR, one page (this node's)",
        complexity: "O(S) for S sessions of the user, refused past session.max-unpaged-sessions (checked in O(1) before any work); with CURSOR, O(log(S) + COUNT)",
        arity: -2,
        keys: Keys::None,
        args: &[string("user"), option("CURSOR", "cursor", Kind::Str), option("COUNT", "count", Kind::Int)],
    },
    Doc {
        name: "session.revoke",
        summary: "Deletes the sessions of a user the caller may write (log out everywhere): all (in Redis Cluster: on every primary), or COUNT per call (this node's)",
        complexity: "O(S) for S sessions of the user, refused past session.max-unpaged-sessions (checked in O(1) before any work); with COUNT, O(COUNT * log(S)) key opens (plus one ACL pattern check per listed key for a caller confined by key patterns)",
        arity: -2,
        keys: Keys::None,
        args: &[string("user"), option("COUNT", "count", Kind::Int)],
    },
    Doc {
        name: "session.rotate",
        summary: "Moves a session to a new key with all its state (against session fixation); CLEARFIELDS drops its fields (login)",
        complexity: "O(1); O(F) with CLEARFIELDS for F fields",
        arity: -3,
        keys: Keys::Move,
        args: &[key("key"), key("newkey"), flag("CLEARFIELDS")],
    },
    Doc {
        name: "session.upgrade",
        summary: "Turns a legacy string session at the key into a native session holding it in one field, keeping its TTL",
        complexity: "O(N) for a string of N bytes",
        arity: -2,
        keys: Keys::Overwrite,
        args: &[key("key"), option("FIELD", "name", Kind::Str)],
    },
    Doc {
        name: "session.purge",
        summary: "Drops expired notifications and catalog items from the registry (the primary runs it every second)",
        complexity: "O(N) for N notifications and expiring items",
        arity: -1,
        keys: Keys::None,
        args: &[option("AT", "unix-time-milliseconds", Kind::Time)],
    },
    Doc {
        name: "session.sync",
        summary: "Merges versioned registry entries (cluster mode: how a primary replicates registry changes; reserved for replication and the AOF)",
        complexity: "O(N log M) for N entries into a registry of M",
        arity: 3,
        keys: Keys::None,
        args: &[option("APPLY", "entries", Kind::Str)],
    },
    Doc {
        name: "session.trending",
        summary: "Returns the catalog's live items among the site-wide trending ones (decayed view counts), most trending first",
        complexity: "O(K log N) at worst for the K tracked items (session.trend-top-k) in a catalog of N",
        arity: -2,
        keys: Keys::None,
        args: &[
            string("catalog"),
            option("COUNT", "count", Kind::Int),
            option("CATEGORY", "category", Kind::Str),
            flag("WITHSCORES"),
            option("AT", "unix-time-milliseconds", Kind::Time),
        ],
    },
    Doc {
        name: "session.stats",
        summary: "Site-wide analytics: events total, sessions active in the last 5 minutes, views per minute of the last hour",
        complexity: "O(1) (60 minutes, 5 fixed-size sketches)",
        arity: -1,
        keys: Keys::None,
        args: &[option("AT", "unix-time-milliseconds", Kind::Time)],
    },
    Doc {
        name: "session.trendparams",
        summary: "Reserved for replication and the AOF: the primary's new sizing of the trending list",
        complexity: "O(K log K) for K tracked items",
        arity: 5,
        keys: Keys::None,
        args: &[
            int("top-k"),
            int("half-life"),
            option("AT", "unix-time-milliseconds", Kind::Time),
        ],
    },
    Doc {
        name: "session.catalog",
        summary: "Maintains the registry's content catalogs",
        complexity: "Depends on the subcommand",
        arity: -2,
        keys: Keys::None,
        args: &[],
    },
    Doc {
        name: "session.catalog|add",
        summary: "Adds an item to a catalog, or replaces it",
        complexity: "O(C * log(N)) for C categories and a catalog of N items",
        arity: -4,
        keys: Keys::None,
        args: &[
            string("catalog"),
            string("item"),
            option("SCORE", "score", Kind::Double),
            block("CATEGORIES", "categories", true, &[int("count"), many("category", Kind::Str)]),
            option("TTL", "seconds", Kind::Int),
            option("EXPIREAT", "unix-time-milliseconds", Kind::Time),
        ],
    },
    Doc {
        name: "session.catalog|del",
        summary: "Removes items from a catalog (an emptied catalog disappears)",
        complexity: "O(K * C * log(N)) for K items",
        arity: -4,
        keys: Keys::None,
        args: &[string("catalog"), many("item", Kind::Str)],
    },
    Doc {
        name: "session.catalog|drop",
        summary: "Removes a whole catalog",
        complexity: "O(N) for a catalog of N items",
        arity: 3,
        keys: Keys::None,
        args: &[string("catalog")],
    },
    Doc {
        name: "session.catalog|info",
        summary: "Reports a catalog's items, categories and memory",
        complexity: "O(N) for a catalog of N items",
        arity: 3,
        keys: Keys::None,
        args: &[string("catalog")],
    },
    Doc {
        name: "session.catalog|list",
        summary: "Lists the catalogs' names",
        complexity: "O(K) for K catalogs",
        arity: 2,
        keys: Keys::None,
        args: &[],
    },
    Doc {
        name: "session.catalog|help",
        summary: "Shows helpful text about the different subcommands",
        complexity: "O(1)",
        arity: 2,
        keys: Keys::None,
        args: &[],
    },
    Doc {
        name: "session.group",
        summary: "Inspects and cleans the registry's notification groups",
        complexity: "Depends on the subcommand",
        arity: -2,
        keys: Keys::None,
        args: &[],
    },
    Doc {
        name: "session.group|list",
        summary: "Lists the groups' names (a group exists while it holds a live notification)",
        complexity: "O(G) for G groups",
        arity: 2,
        keys: Keys::None,
        args: &[],
    },
    Doc {
        name: "session.group|info",
        summary: "Reports a group's notifications, memory and sequence range",
        complexity: "O(M) for a group of M notifications",
        arity: 3,
        keys: Keys::None,
        args: &[string("group")],
    },
    Doc {
        name: "session.group|drop",
        summary: "Removes a group and all its notifications",
        complexity: "O(M) for a group of M notifications",
        arity: 3,
        keys: Keys::None,
        args: &[string("group")],
    },
    Doc {
        name: "session.group|help",
        summary: "Shows helpful text about the different subcommands",
        complexity: "O(1)",
        arity: 2,
        keys: Keys::None,
        args: &[],
    },
];

/// Keeps the C strings of one registration alive until Redis has copied them.
#[derive(Default)]
struct Strings(Vec<CString>);

impl Strings {
    fn add(&mut self, s: &str) -> *const std::os::raw::c_char {
        match CString::new(s) {
            Ok(c) => {
                let p = c.as_ptr();
                self.0.push(c);
                p
            }
            Err(_) => ptr::null(),
        }
    }
}

fn kind(k: Kind) -> raw::RedisModuleCommandArgType {
    match k {
        Kind::Key => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY,
        Kind::Str => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
        Kind::Int => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
        Kind::Double => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_DOUBLE,
        Kind::Time => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_UNIX_TIME,
        Kind::Token => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
        Kind::Block => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_BLOCK,
    }
}

/// Builds the zero-terminated raw argument array for `args` (nested arrays kept in `arena`).
fn raw_args(
    args: &[Arg],
    strings: &mut Strings,
    arena: &mut Vec<Vec<raw::RedisModuleCommandArg>>,
) -> *mut raw::RedisModuleCommandArg {
    let mut out: Vec<raw::RedisModuleCommandArg> = Vec::with_capacity(args.len() + 1);
    for a in args {
        let subargs = if a.sub.is_empty() {
            ptr::null_mut()
        } else {
            raw_args(a.sub, strings, arena)
        };
        let mut flags = 0;
        if a.optional {
            flags |= raw::REDISMODULE_CMD_ARG_OPTIONAL as c_int;
        }
        if a.multiple {
            flags |= raw::REDISMODULE_CMD_ARG_MULTIPLE as c_int;
        }
        // A block whose alternatives are all optional blocks is a choice (FROM | ITEMS).
        let choice = a.kind == Kind::Block && a.token.is_none() && !a.multiple;
        out.push(raw::RedisModuleCommandArg {
            name: strings.add(a.name),
            type_: if choice {
                raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_ONEOF
            } else {
                kind(a.kind)
            },
            key_spec_index: if a.kind == Kind::Key {
                if a.name == "newkey" {
                    1
                } else {
                    0
                }
            } else {
                -1
            },
            token: a.token.map_or(ptr::null(), |t| strings.add(t)),
            summary: ptr::null(),
            since: ptr::null(),
            flags,
            deprecated_since: ptr::null(),
            subargs,
            display_text: ptr::null(),
        });
    }
    // SAFETY: an all-zero argument is the array's terminator.
    out.push(unsafe { std::mem::MaybeUninit::zeroed().assume_init() });
    let p = out.as_mut_ptr();
    arena.push(out);
    p
}

fn key_specs(keys: Keys) -> Vec<KeySpec> {
    let flags = match keys {
        Keys::None => return Vec::new(),
        Keys::Read => KeySpecFlags::READ_ONLY | KeySpecFlags::ACCESS,
        Keys::Update => KeySpecFlags::READ_WRITE | KeySpecFlags::ACCESS | KeySpecFlags::UPDATE,
        Keys::Overwrite => KeySpecFlags::OVERWRITE | KeySpecFlags::UPDATE,
        Keys::Move => {
            return vec![
                KeySpec::new(
                    None,
                    KeySpecFlags::READ_WRITE | KeySpecFlags::ACCESS | KeySpecFlags::DELETE,
                    BeginSearch::new_index(1),
                    FindKeys::new_range(0, 1, 0),
                ),
                KeySpec::new(
                    None,
                    KeySpecFlags::OVERWRITE | KeySpecFlags::INSERT,
                    BeginSearch::new_index(2),
                    FindKeys::new_range(0, 1, 0),
                ),
            ]
        }
    };
    vec![KeySpec::new(
        None,
        flags,
        BeginSearch::new_index(1),
        FindKeys::new_range(0, 1, 0),
    )]
}

static VERSION: raw::RedisModuleCommandInfoVersion = raw::RedisModuleCommandInfoVersion {
    version: 1,
    sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
    sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
    sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
};

/// Attaches the documentation of `full_name` to the registered `command`.
pub fn describe(command: *mut raw::RedisModuleCommand, full_name: &str) -> Result<(), RedisError> {
    let Some(doc) = DOCS.iter().find(|d| d.name == full_name) else {
        return Err(RedisError::String(format!(
            "ERR no documentation for {full_name}"
        )));
    };
    let set_info = api!(RedisModule_SetCommandInfo)?;
    let mut strings = Strings::default();
    let mut arena = Vec::new();
    let args = if doc.args.is_empty() {
        ptr::null_mut()
    } else {
        raw_args(doc.args, &mut strings, &mut arena)
    };
    let specs = key_specs(doc.keys);
    let mut raw_specs = if specs.is_empty() {
        Vec::new()
    } else {
        get_redis_key_spec(specs)
    };
    let info = raw::RedisModuleCommandInfo {
        version: &VERSION,
        summary: strings.add(doc.summary),
        complexity: strings.add(doc.complexity),
        since: strings.add(SINCE),
        history: ptr::null_mut(),
        tips: ptr::null(),
        arity: doc.arity,
        key_specs: if raw_specs.is_empty() {
            ptr::null_mut()
        } else {
            raw_specs.as_mut_ptr()
        },
        args,
    };
    // SAFETY: every pointer in `info` lives until this call returns; Redis copies what it keeps.
    let status = unsafe { set_info(command, &info) };
    drop((strings, arena, raw_specs));
    if status == raw::REDISMODULE_OK as c_int {
        Ok(())
    } else {
        Err(RedisError::String(format!(
            "ERR Redis refused the documentation of {full_name}"
        )))
    }
}
