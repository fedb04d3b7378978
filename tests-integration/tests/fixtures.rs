//! Committed RDB fixtures: an RDB file written by an older build must load, exactly, in this one.
//!
//! `fixtures/v1.rdb` holds the sessions of [`V1_SESSIONS`] as the module's encoding v1 saved them
//! (Redis 7.0, RDB version 10). To regenerate it, build a commit whose module writes encoding v1
//! (up to 5b24291, before the activity sketches introduced v2) and run the ignored generator
//! against it:
//!
//! ```text
//! git worktree add /tmp/v1 5b24291 && (cd /tmp/v1 && cargo build --release -p session-store)
//! SESSION_MODULE=/tmp/v1/target/release/libsession_store.so \
//!     cargo test -p session-integration --test fixtures -- --ignored generate_fixture_v1
//! ```
//!
//! Regenerating is only for a damaged file: the point of the fixture is that it never changes.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use redis::Connection;

/// When the fixture's sessions were touched (`AT`): 2026-11-27. With lifetimes of about ten years
/// they stay alive until 2036.
const FIXTURE_AT_MS: i64 = 1_795_810_000_000;

struct FixtureSession {
    key: &'static [u8],
    idle_s: u32,
    maxage_s: u32,
    user: Option<&'static [u8]>,
    fields: &'static [(&'static [u8], &'static [u8])],
}

const V1_SESSIONS: &[FixtureSession] = &[
    FixtureSession {
        key: b"fixture:plain",
        idle_s: 315_360_000,
        maxage_s: 315_360_000,
        user: None,
        fields: &[(b"lang", b"fr"), (b"theme", b"dark")],
    },
    FixtureSession {
        key: b"fixture:binary",
        idle_s: 315_000_000,
        maxage_s: 315_360_000,
        user: None,
        fields: &[
            (b"", b""),
            (b"\x00\xff", b"\xff\x00\x01"),
            (b"caf\xc3\xa9", b"\xc3\xa9t\xc3\xa9"),
        ],
    },
    FixtureSession {
        key: b"fixture:user",
        idle_s: 315_360_000,
        maxage_s: 315_300_000,
        user: Some(b"alice@example.com"),
        fields: &[(b"cart", b"3 items")],
    },
    FixtureSession {
        key: b"fixture:\xffempty",
        idle_s: 300_000_000,
        maxage_s: 310_000_000,
        user: Some(b"u\x00\xff"),
        fields: &[],
    },
];

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Checks that the server holds exactly `sessions`, field for field, with their lifecycle.
fn assert_sessions(c: &mut Connection, sessions: &[FixtureSession]) {
    let expected_keys = sessions.iter().map(|s| s.key.to_vec()).collect();
    assert_eq!(keys(c), expected_keys);
    for s in sessions {
        let shown = String::from_utf8_lossy(s.key);
        let fields: BTreeMap<Vec<u8>, Vec<u8>> = pairs(ok(c, &[&b"SESSION.GET"[..], s.key]))
            .into_iter()
            .map(|(n, v)| (bytes(&n), bytes(&v)))
            .collect();
        let want: BTreeMap<Vec<u8>, Vec<u8>> = s
            .fields
            .iter()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(fields, want, "{shown}: fields");

        let doc = session_info(c, s.key);
        assert_eq!(
            doc["user"],
            s.user.map_or(serde_json::Value::Null, bytes_json),
            "{shown}"
        );
        assert_eq!(doc["idle_s"], s.idle_s, "{shown}");
        assert_eq!(doc["maxage_s"], s.maxage_s, "{shown}");
        assert_eq!(doc["created_ms"], FIXTURE_AT_MS, "{shown}");
        assert_eq!(doc["last_seen_ms"], FIXTURE_AT_MS, "{shown}");
        let deadline = FIXTURE_AT_MS + i64::from(s.idle_s.min(s.maxage_s)) * 1000;
        let expiry: i64 = command(&[&b"PEXPIRETIME"[..], s.key]).query(c).unwrap();
        assert_eq!(expiry, deadline, "{shown}: expiry");
    }
}

#[test]
fn fixture_v1_loads() {
    let rdb = std::fs::read(fixture_path("v1.rdb")).expect("the committed fixtures/v1.rdb");
    let server = Server::builder().file("dump.rdb", rdb).start();
    let mut c = server.conn();
    assert_sessions(&mut c, V1_SESSIONS);
    // saved again in this build's encoding and loaded back: still the same sessions
    ok(&mut c, &["DEBUG", "RELOAD"]);
    assert_sessions(&mut c, V1_SESSIONS);
}

/// Writes `fixtures/v1.rdb`; see the file's header for how to run it.
#[test]
#[ignore = "regenerates the committed fixture; needs a module build that writes encoding v1"]
fn generate_fixture_v1() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    for s in V1_SESSIONS {
        let mut args: Vec<Vec<u8>> = vec![
            b"SESSION.TOUCH".to_vec(),
            s.key.to_vec(),
            b"IDLE".to_vec(),
            s.idle_s.to_string().into_bytes(),
            b"MAXAGE".to_vec(),
            s.maxage_s.to_string().into_bytes(),
            b"AT".to_vec(),
            FIXTURE_AT_MS.to_string().into_bytes(),
        ];
        if let Some(user) = s.user {
            args.extend([b"USER".to_vec(), user.to_vec()]);
        }
        if !s.fields.is_empty() {
            args.extend([b"SET".to_vec(), s.fields.len().to_string().into_bytes()]);
            for (n, v) in s.fields {
                args.extend([n.to_vec(), v.to_vec()]);
            }
        }
        touch_map(ok(&mut c, &args));
        assert_eq!(
            session_info(&mut c, s.key)["encoding"]["version"],
            1,
            "this module does not write encoding v1"
        );
    }
    assert_sessions(&mut c, V1_SESSIONS);
    ok(&mut c, &["SAVE"]);
    let target = fixture_path("v1.rdb");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(server.dir().join("dump.rdb"), &target).expect("copy dump.rdb");
    println!("wrote {}", target.display());
}
