//! `SESSION.SURFACE_RO`: SURFACE with NOMARK forced, a read-only command.
//!
//! - the same answer as `SURFACE ... NOMARK` for every form (FROM with and without options,
//!   WITHSCORES, ITEMS, a missing session);
//! - it writes nothing: the session's DUMP, the primary's replication offset and the AOF's size
//!   stay as they were (while `SURFACE` without NOMARK moves all three: the checks can fail);
//! - it runs on a plain replica (`replica-read-only yes`, where SURFACE is refused);
//! - in a 3-primary + 3-replica cluster it runs on a replica through the `redis` crate's cluster
//!   client with `read_from_replicas` (the replica's command stats count it) and on a raw
//!   `READONLY` replica connection without `MOVED` (SURFACE on the same connection is moved);
//! - an ACL user with only read permission on the keys (`%R~`) may run it, not SURFACE.

mod common;

use common::cluster::{key_slot, Cluster};
use common::*;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Connection, Value};

/// A catalog `articles` of 40 items over 4 categories, and `sess:1` with interests in two of them
/// and a few items seen.
fn setup(c: &mut Connection, key: &str) {
    for i in 0..40 {
        let cat = format!("c{}", i % 4);
        ok(
            c,
            &[
                "SESSION.CATALOG",
                "ADD",
                "articles",
                &format!("a{i}"),
                "SCORE",
                &(i * 3 % 17).to_string(),
                "CATEGORIES",
                "1",
                &cat,
            ],
        );
    }
    for i in [0, 4, 8, 1, 12] {
        let cat = format!("c{}", i % 4);
        ok(
            c,
            &[
                "SESSION.TOUCH",
                key,
                "EVENT",
                &format!("a{i}"),
                "CATEGORIES",
                "1",
                &cat,
            ],
        );
    }
}

/// The argument lists compared (after `key`), each also run with NOMARK by SURFACE.
const FORMS: &[&[&str]] = &[
    &["FROM", "articles"],
    &["FROM", "articles", "COUNT", "25", "WITHSCORES"],
    &["FROM", "articles", "CATEGORY", "c2", "COUNT", "5"],
    &[
        "FROM",
        "articles",
        "MAXIMPRESSIONS",
        "1",
        "BOOST",
        "TRENDING",
        "2",
    ],
    &["ITEMS", "4", "a0", "a1", "a2", "a3"],
    &["ITEMS", "3", "a4", "a5", "a6", "COUNT", "1"],
];

fn with(name: &str, key: &str, form: &[&str], extra: &[&str]) -> Vec<String> {
    let mut v = vec![name.to_owned(), key.to_owned()];
    v.extend(form.iter().map(|s| s.to_string()));
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn dump(c: &mut Connection, key: &str) -> Vec<u8> {
    bytes(&ok(c, &["DUMP", key]))
}

fn offset(c: &mut Connection) -> String {
    info_field(c, "replication", "master_repl_offset").expect("offset")
}

/// The incremental AOF files' bytes (what was appended since the server started).
fn aof_tail(server: &Server) -> Vec<u8> {
    let mut out = Vec::new();
    let dir = server.dir().join("appendonlydir");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("appendonlydir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .collect();
    files.sort();
    for f in files {
        out.extend(std::fs::read(f).expect("read the AOF"));
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Writes `SET key x` and waits until the AOF holds it: everything before it was flushed too.
fn aof_mark(server: &Server, c: &mut Connection, key: &str) -> Vec<u8> {
    ok(c, &["SET", key, "x"]);
    let mut tail = Vec::new();
    wait_until(PATIENCE, "the AOF to hold the marker", || {
        tail = aof_tail(server);
        contains(&tail, key.as_bytes())
    });
    tail
}

/// Waits until the replica has applied everything the primary has sent (without WAIT, which
/// itself moves the primary's offset).
fn caught_up(primary: &mut Connection, replica: &mut Connection) {
    let target = offset(primary);
    wait_until(PATIENCE, "the replica to catch up", || {
        info_field(replica, "replication", "slave_repl_offset").as_deref() == Some(&target)
    });
}

#[test]
fn same_answer_as_surface_nomark_and_nothing_written() {
    // the primary pings its replica every 10 s by default, which moves the offset
    let primary = Server::start(&["--appendonly", "yes", "--repl-ping-replica-period", "3600"]);
    let replica = Server::replica_of(&primary);
    let (mut c, mut r) = (primary.conn(), replica.conn());
    setup(&mut c, "sess:1");
    caught_up(&mut c, &mut r);

    let before = (dump(&mut c, "sess:1"), offset(&mut c));
    let aof_before = aof_mark(&primary, &mut c, "marker:0");
    let before = (before.0, offset(&mut c));
    for key in ["sess:1", "missing"] {
        for form in FORMS {
            let expected = ok(&mut c, &with("SESSION.SURFACE", key, form, &["NOMARK"]));
            let ro = ok(&mut c, &with("SESSION.SURFACE_RO", key, form, &[]));
            assert_eq!(ro, expected, "{key} {form:?}");
            // NOMARK is accepted (redundant)
            let ro = ok(&mut c, &with("SESSION.SURFACE_RO", key, form, &["NOMARK"]));
            assert_eq!(ro, expected, "{key} {form:?} NOMARK");
        }
    }
    // EXPLORE draws at random: only the shape is compared
    let explored = ok(
        &mut c,
        &[
            "SESSION.SURFACE_RO",
            "sess:1",
            "FROM",
            "articles",
            "EXPLORE",
            "0.5",
            "COUNT",
            "6",
        ],
    );
    assert!(
        matches!(&explored, Value::Array(a) if a.len() == 6),
        "{explored:?}"
    );
    assert!(!exists(&mut c, "missing"), "SURFACE_RO creates nothing");
    let after = (dump(&mut c, "sess:1"), offset(&mut c));
    assert_eq!(
        after, before,
        "SURFACE_RO wrote nothing, replicated nothing"
    );
    let aof_after = aof_mark(&primary, &mut c, "marker:1");
    assert!(aof_after.starts_with(&aof_before));
    let appended = &aof_after[aof_before.len()..];
    assert!(
        !contains(appended, b"SESSION"),
        "nothing appended but the marker"
    );
    assert!(
        appended.len() < 64,
        "only the marker was appended: {:?}",
        String::from_utf8_lossy(appended)
    );

    // SURFACE without NOMARK records impressions: the same checks see it
    let before_mark = offset(&mut c);
    ok(&mut c, &["SESSION.SURFACE", "sess:1", "FROM", "articles"]);
    let marked = (dump(&mut c, "sess:1"), offset(&mut c));
    assert_ne!(marked.0, before.0, "SURFACE records impressions");
    assert_ne!(marked.1, before_mark, "SURFACE replicates its impressions");
    let aof_marked = aof_mark(&primary, &mut c, "marker:2");
    assert!(
        contains(&aof_marked[aof_after.len()..], b"SESSION.IMPRESS"),
        "SURFACE appends to the AOF"
    );
}

#[test]
fn errors_as_surface() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    setup(&mut c, "sess:1");
    ok(&mut c, &["SET", "plain", "x"]);
    let cases: &[&[&str]] = &[
        &["SESSION.SURFACE_RO", "sess:1", "FROM"],
        &["SESSION.SURFACE_RO", "sess:1", "FROM", "nosuch"],
        &["SESSION.SURFACE_RO", "sess:1", "FROM", "articles", "MARK"],
        &[
            "SESSION.SURFACE_RO",
            "sess:1",
            "FROM",
            "articles",
            "COUNT",
            "0",
        ],
        &["SESSION.SURFACE_RO", "sess:1", "ITEMS", "2", "a"],
        &[
            "SESSION.SURFACE_RO",
            "sess:1",
            "FROM",
            "articles",
            "NOMARK",
            "NOMARK",
        ],
        &["SESSION.SURFACE_RO", "plain", "FROM", "articles"],
    ];
    for case in cases {
        let mut surface: Vec<&str> = case.to_vec();
        surface[0] = "SESSION.SURFACE";
        assert_eq!(
            err(&mut c, case).replace("session.surface_ro", "session.surface"),
            err(&mut c, &surface),
            "{case:?}"
        );
    }
    assert_eq!(
        err(
            &mut c,
            &["SESSION.SURFACE_RO", "sess:1", "FROM", "articles", "MARK"]
        ),
        "ERR syntax error"
    );
}

#[test]
fn runs_on_a_plain_replica() {
    let primary = Server::start(&[]);
    let replica = Server::replica_of(&primary);
    let (mut c, mut r) = (primary.conn(), replica.conn());
    setup(&mut c, "sess:1");
    caught_up(&mut c, &mut r);
    for form in FORMS {
        let expected = ok(
            &mut c,
            &with("SESSION.SURFACE", "sess:1", form, &["NOMARK"]),
        );
        assert_eq!(
            ok(&mut r, &with("SESSION.SURFACE_RO", "sess:1", form, &[])),
            expected,
            "{form:?}"
        );
    }
    let refused = err(
        &mut r,
        &["SESSION.SURFACE", "sess:1", "FROM", "articles", "NOMARK"],
    );
    assert!(refused.starts_with("READONLY"), "{refused}");
}

#[test]
fn a_read_only_acl_user_may_run_it() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    setup(&mut c, "sess:1");
    ok(
        &mut c,
        &[
            "ACL",
            "SETUSER",
            "reader",
            "on",
            ">pw",
            "%R~sess:*",
            "%R~articles",
            "+session.surface_ro",
            "+session.surface",
        ],
    );
    let expected = ok(
        &mut c,
        &["SESSION.SURFACE", "sess:1", "FROM", "articles", "NOMARK"],
    );
    let mut u = s.conn();
    ok(&mut u, &["AUTH", "reader", "pw"]);
    assert_eq!(
        ok(
            &mut u,
            &["SESSION.SURFACE_RO", "sess:1", "FROM", "articles"]
        ),
        expected
    );
    // SURFACE declares a read-write key: refused to a reader, even with NOMARK
    let refused = err(
        &mut u,
        &["SESSION.SURFACE", "sess:1", "FROM", "articles", "NOMARK"],
    );
    assert!(refused.starts_with("NOPERM"), "{refused}");
    // outside the pattern: refused as any key read
    let refused = err(
        &mut u,
        &["SESSION.SURFACE_RO", "other:1", "FROM", "articles"],
    );
    assert!(refused.starts_with("NOPERM"), "{refused}");
    // the catalog name is checked as a key
    let refused = err(&mut u, &["SESSION.SURFACE_RO", "sess:1", "FROM", "hidden"]);
    assert!(refused.starts_with("NOPERM"), "{refused}");
}

#[test]
fn key_spec_is_read_only() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let info = ok(&mut c, &["COMMAND", "INFO", "session.surface_ro"]);
    let text = format!("{info:?}");
    assert!(text.contains("readonly"), "{text}");
    assert!(!text.contains("\"write\""), "{text}");
    assert!(text.contains("RO") && text.contains("access"), "{text}");
    assert!(!text.contains("RW"), "{text}");
    let keys = ok(
        &mut c,
        &[
            "COMMAND",
            "GETKEYS",
            "session.surface_ro",
            "sess:1",
            "FROM",
            "articles",
        ],
    );
    assert_eq!(
        keys,
        Value::Array(vec![Value::BulkString(b"sess:1".to_vec())])
    );
}

#[test]
fn runs_on_cluster_replicas() {
    let cluster = Cluster::start();
    // the catalog on every primary (the registry is per node here), a session on each primary
    for i in 0..3 {
        let mut c = cluster.conn(i);
        let key = &cluster.keys_on(i, "sess:", 1)[0];
        setup(&mut c, key);
    }
    // CLUSTER SLOTS lists a replica once its offset (gossiped) is not 0: after the writes
    cluster.wait_replicas_in_slots();
    let mut cc = cluster.client_reading_replicas();
    for (j, r) in cluster.replicas().into_iter().enumerate() {
        let replica = cluster.server(r);
        let p = cluster.primary_of(r);
        let key = &cluster.keys_on(p, "sess:", 1)[0];
        let slot = key_slot(key.as_bytes());
        let mut pc = cluster.conn(p);
        let mut rc = replica.conn();
        caught_up(&mut pc, &mut rc);
        let expected = ok(
            &mut pc,
            &[
                "SESSION.SURFACE",
                key,
                "FROM",
                "articles",
                "WITHSCORES",
                "NOMARK",
            ],
        );

        // through the cluster client, routed to the slot's replica
        let calls = |rc: &mut Connection| -> i64 {
            info_field(rc, "commandstats", "cmdstat_session.surface_ro")
                .and_then(|v| {
                    v.split(',')
                        .find_map(|p| p.strip_prefix("calls=").map(str::to_owned))
                })
                .map_or(0, |n| n.parse().unwrap())
        };
        let before = calls(&mut rc);
        let cmd = command(&["SESSION.SURFACE_RO", key, "FROM", "articles", "WITHSCORES"]);
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
            slot,
            SlotAddr::ReplicaRequired,
        )));
        let got = cc
            .route_command(&cmd, routing)
            .expect("SURFACE_RO on a replica");
        assert_eq!(got, expected, "replica {j}");
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut rc)
            .unwrap();
        assert_eq!(calls(&mut rc), before + 1, "replica {j} ran it: {stats}");

        // a raw READONLY connection: answered, no MOVED; SURFACE is moved to the primary
        ok(&mut rc, &["READONLY"]);
        assert_eq!(
            ok(
                &mut rc,
                &["SESSION.SURFACE_RO", key, "FROM", "articles", "WITHSCORES"]
            ),
            expected
        );
        let moved = err(
            &mut rc,
            &["SESSION.SURFACE", key, "FROM", "articles", "NOMARK"],
        );
        assert!(moved.starts_with("MOVED"), "{moved}");
        // a key of another primary's slot: MOVED, as any read
        let other = &cluster.keys_on((p + 1) % 3, "sess:", 1)[0];
        let moved = err(&mut rc, &["SESSION.SURFACE_RO", other, "FROM", "articles"]);
        assert!(moved.starts_with("MOVED"), "{moved}");
    }
}
