//! Tenancy: two ACL users confined by key and channel patterns (`tenantA ~a:* &session:notify:a:*`,
//! `tenantB ~b:* ...`) reach nothing of each other's through SESSION commands: the per-user index
//! (SESSIONS, REVOKE, the per-user maximum), the registry (catalogs by name, SURFACE FROM, JOIN),
//! notifications (channel permission, delivery only where the publisher may write, derived
//! segments included), the reserved `PURGE AT`, and ACL categories on 7.2+ servers. The default
//! user keeps single-tenant behaviour throughout.
//!
//! Run on another server with `REDIS_SERVER=<path>` (Redis 8.2, Valkey 9.1: the category tests
//! check `ACL CAT` there; on 7.0 the server has no module ACL categories).

mod common;

use common::*;
use redis::{Connection, Value};

/// A server with two tenants. Both may publish on the derived segment `new`'s channel.
fn tenants(module_args: &[&str]) -> Server {
    let server = Server::builder().module_args(module_args).start();
    let mut admin = server.conn();
    for (user, prefix) in [("tenantA", "a"), ("tenantB", "b")] {
        ok(
            &mut admin,
            &[
                "ACL",
                "SETUSER",
                user,
                "reset",
                "on",
                ">pw",
                &format!("~{prefix}:*"),
                &format!("&session:notify:{prefix}:*"),
                "&session:notify:new",
                "+@all",
            ],
        );
    }
    server
}

/// A connection authenticated as `user`.
fn login(server: &Server, user: &str) -> Connection {
    let mut c = server.conn();
    ok(&mut c, &["AUTH", user, "pw"]);
    c
}

fn strings(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) => {
            let mut out: Vec<String> = items
                .iter()
                .map(|v| String::from_utf8(bytes(v)).expect("UTF-8"))
                .collect();
            out.sort();
            out
        }
        other => panic!("expected an array, got {other:?}"),
    }
}

fn int(v: Value) -> i64 {
    match v {
        Value::Int(n) => n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn noperm(e: &str) -> bool {
    e.starts_with("NOPERM")
}

/// The ids of the notifications `INBOX key` delivers; with `peek`, the ones it would deliver
/// (`PEEK` lists the unread ones: those with `delivered` 0), changing nothing.
fn inbox_ids(c: &mut Connection, key: &str, peek: bool) -> Vec<String> {
    let mut args = vec!["SESSION.INBOX", key];
    if peek {
        args.push("PEEK");
    }
    match ok(c, &args) {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|m| {
                let m = pairs(m);
                let delivered = m
                    .iter()
                    .any(|(n, v)| bytes(n) == b"delivered" && *v != Value::Int(0));
                if peek {
                    assert!(
                        m.iter().any(|(n, _)| bytes(n) == b"delivered"),
                        "PEEK's flag"
                    );
                }
                (!delivered).then(|| {
                    m.into_iter()
                        .find(|(n, _)| bytes(n) == b"id")
                        .map(|(_, v)| String::from_utf8(bytes(&v)).expect("UTF-8"))
                        .expect("an id")
                })
            })
            .collect(),
        other => panic!("INBOX replied {other:?}"),
    }
}

#[test]
fn sessions_lists_only_keys_the_caller_may_read() {
    let server = tenants(&[]);
    let (mut a, mut b, mut admin) = (
        login(&server, "tenantA"),
        login(&server, "tenantB"),
        server.conn(),
    );
    touch(&mut b, "b:s1", &["USER", "bob"]);
    touch(&mut b, "b:s2", &["USER", "bob"]);
    touch(&mut a, "a:s1", &["USER", "bob"]);
    assert_eq!(strings(ok(&mut a, &["SESSION.SESSIONS", "bob"])), ["a:s1"]);
    assert_eq!(
        strings(ok(&mut b, &["SESSION.SESSIONS", "bob"])),
        ["b:s1", "b:s2"]
    );
    // The default user sees every tenant's keys, as before.
    assert_eq!(
        strings(ok(&mut admin, &["SESSION.SESSIONS", "bob"])),
        ["a:s1", "b:s1", "b:s2"]
    );
}

#[test]
fn revoke_deletes_only_keys_the_caller_may_write() {
    let server = tenants(&[]);
    let (mut a, mut b, mut admin) = (
        login(&server, "tenantA"),
        login(&server, "tenantB"),
        server.conn(),
    );
    touch(&mut b, "b:s1", &["USER", "bob"]);
    touch(&mut b, "b:s2", &["USER", "bob"]);
    touch(&mut a, "a:s1", &["USER", "bob"]);
    // A read-only view of tenant B's keys does not let tenant A delete them either.
    ok(&mut admin, &["ACL", "SETUSER", "tenantA", "%R~b:*"]);
    assert_eq!(int(ok(&mut a, &["SESSION.REVOKE", "bob"])), 1);
    assert!(!exists(&mut admin, "a:s1"));
    assert!(exists(&mut admin, "b:s1") && exists(&mut admin, "b:s2"));
    // ... though it may now list them.
    assert_eq!(
        strings(ok(&mut a, &["SESSION.SESSIONS", "bob"])),
        ["b:s1", "b:s2"]
    );
    assert_eq!(int(ok(&mut admin, &["SESSION.REVOKE", "bob"])), 2);
    assert!(!exists(&mut admin, "b:s1") && !exists(&mut admin, "b:s2"));
}

#[test]
fn per_user_maximum_evicts_only_the_touchers_sessions() {
    let server = tenants(&["max-sessions-per-user", "2"]);
    let (mut a, mut b, mut admin) = (
        login(&server, "tenantA"),
        login(&server, "tenantB"),
        server.conn(),
    );
    touch(&mut b, "b:s1", &["USER", "bob"]);
    touch(&mut b, "b:s2", &["USER", "bob"]);
    touch(&mut a, "a:e1", &["USER", "bob"]);
    touch(&mut a, "a:e2", &["USER", "bob"]);
    assert!(
        exists(&mut admin, "b:s1") && exists(&mut admin, "b:s2"),
        "tenant A's touches evicted tenant B's sessions"
    );
    assert!(exists(&mut admin, "a:e1") && exists(&mut admin, "a:e2"));
    // The maximum holds per tenant: a third session of tenant A evicts its own oldest.
    touch(&mut a, "a:e3", &["USER", "bob"]);
    assert!(!exists(&mut admin, "a:e1"));
    assert!(exists(&mut admin, "a:e2") && exists(&mut admin, "a:e3"));
    assert!(exists(&mut admin, "b:s1") && exists(&mut admin, "b:s2"));
}

#[test]
fn catalog_names_are_checked_as_keys() {
    let server = tenants(&[]);
    let (mut a, mut b, mut admin) = (
        login(&server, "tenantA"),
        login(&server, "tenantB"),
        server.conn(),
    );
    ok(
        &mut b,
        &["SESSION.CATALOG", "ADD", "b:private", "x1", "SCORE", "1"],
    );
    ok(
        &mut b,
        &["SESSION.CATALOG", "ADD", "b:private", "x2", "SCORE", "2"],
    );
    ok(
        &mut a,
        &["SESSION.CATALOG", "ADD", "a:news", "n1", "SCORE", "1"],
    );
    // Names outside the tenant's patterns: refused for every subcommand.
    assert!(noperm(&err(
        &mut a,
        &["SESSION.CATALOG", "ADD", "shared", "i", "SCORE", "1"]
    )));
    assert!(noperm(&err(
        &mut a,
        &["SESSION.CATALOG", "INFO", "b:private"]
    )));
    assert!(noperm(&err(
        &mut a,
        &["SESSION.CATALOG", "DEL", "b:private", "x1"]
    )));
    assert!(noperm(&err(
        &mut a,
        &["SESSION.CATALOG", "DROP", "b:private"]
    )));
    assert!(noperm(&err(
        &mut a,
        &["SESSION.CATALOG", "ADD", "b:private", "x3", "SCORE", "9"]
    )));
    assert!(noperm(&err(
        &mut a,
        &["SESSION.SURFACE", "a:s", "FROM", "b:private"]
    )));
    assert_eq!(
        strings(ok(&mut a, &["SESSION.CATALOG", "LIST"])),
        ["a:news"]
    );
    assert_eq!(
        strings(ok(&mut b, &["SESSION.CATALOG", "LIST"])),
        ["b:private"]
    );
    // Nothing of tenant B's changed; tenant B and the default user reach it as before.
    let items = |c: &mut Connection| {
        pairs(ok(c, &["SESSION.CATALOG", "INFO", "b:private"]))
            .into_iter()
            .find(|(n, _)| bytes(n) == b"items")
            .map(|(_, v)| int(v))
    };
    assert_eq!(items(&mut b), Some(2));
    assert_eq!(items(&mut admin), Some(2));
    assert_eq!(
        strings(ok(&mut admin, &["SESSION.CATALOG", "LIST"])),
        ["a:news", "b:private"]
    );
    assert_eq!(
        strings(ok(&mut b, &["SESSION.SURFACE", "b:s", "FROM", "b:private"])),
        ["x1", "x2"]
    );
    assert_eq!(
        strings(ok(&mut a, &["SESSION.SURFACE", "a:s", "FROM", "a:news"])),
        ["n1"]
    );
    assert_eq!(
        int(ok(&mut admin, &["SESSION.CATALOG", "DROP", "b:private"])),
        1
    );
}

#[test]
fn join_of_a_group_the_caller_may_not_read_is_refused() {
    let server = tenants(&[]);
    let mut a = login(&server, "tenantA");
    touch(&mut a, "a:s", &["EVENT", "x"]);
    let e = err(&mut a, &["SESSION.ENRICH", "a:s", "JOIN", "1", "b:vip"]);
    assert!(noperm(&e), "{e}");
    let e = err(
        &mut a,
        &["SESSION.ENRICH", "a:s", "JOIN", "2", "a:vip", "b:vip"],
    );
    assert!(noperm(&e), "{e}");
    let info = session_info(&mut a, "a:s");
    assert!(
        info.to_string().find("b:vip").is_none() && info.to_string().find("a:vip").is_none(),
        "a refused JOIN changed nothing: {info}"
    );
    ok(&mut a, &["SESSION.ENRICH", "a:s", "JOIN", "1", "a:vip"]);
}

#[test]
fn notifications_follow_channel_permissions_and_never_cross_tenants() {
    let server = tenants(&[]);
    let (mut a, mut b, mut admin) = (
        login(&server, "tenantA"),
        login(&server, "tenantB"),
        server.conn(),
    );
    touch(&mut b, "b:s", &["EVENT", "x"]);
    touch(&mut a, "a:s", &["EVENT", "x"]);
    ok(&mut b, &["SESSION.ENRICH", "b:s", "JOIN", "1", "b:vip"]);
    ok(&mut b, &["SESSION.NOTIFYGROUP", "b:vip", "n1", "hello"]);
    // Publishing into tenant B's group needs publish permission on its channel.
    let e = err(&mut a, &["SESSION.NOTIFYGROUP", "b:vip", "n2", "phish"]);
    assert!(noperm(&e), "{e}");
    assert_eq!(inbox_ids(&mut b, "b:s", true), ["n1"]);
    // An admin puts tenant A's session into B's group: B's notification still does not reach
    // it (its publisher may not write a:s).
    ok(&mut admin, &["SESSION.ENRICH", "a:s", "JOIN", "1", "b:vip"]);
    assert_eq!(touch(&mut a, "a:s", &[] as &[&str])["pending"], 0);
    assert!(inbox_ids(&mut a, "a:s", false).is_empty());
    // The default user's notifications reach every member, as before.
    ok(
        &mut admin,
        &["SESSION.NOTIFYGROUP", "b:vip", "n3", "from-admin"],
    );
    assert_eq!(inbox_ids(&mut a, "a:s", false), ["n3"]);
    assert_eq!(inbox_ids(&mut b, "b:s", false), ["n1", "n3"]);
}

#[test]
fn notifications_to_derived_segments_reach_the_publishers_sessions_only() {
    let server = tenants(&[]);
    let (mut a, mut b, mut admin) = (
        login(&server, "tenantA"),
        login(&server, "tenantB"),
        server.conn(),
    );
    touch(&mut a, "a:s", &["EVENT", "x"]);
    touch(&mut b, "b:s", &["EVENT", "x"]);
    ok(&mut a, &["SESSION.ENRICH", "a:s"]);
    ok(&mut b, &["SESSION.ENRICH", "b:s"]);
    // Both are in the derived segment `new`.
    ok(&mut a, &["SESSION.NOTIFYGROUP", "new", "welcome-a", "hi"]);
    assert_eq!(touch(&mut b, "b:s", &[] as &[&str])["pending"], 0);
    assert!(inbox_ids(&mut b, "b:s", true).is_empty());
    assert_eq!(touch(&mut a, "a:s", &[] as &[&str])["pending"], 1);
    // The publisher is part of the registry's saved form: a reload keeps the rule.
    ok(&mut admin, &["DEBUG", "RELOAD"]);
    assert!(inbox_ids(&mut b, "b:s", true).is_empty());
    assert_eq!(inbox_ids(&mut a, "a:s", false), ["welcome-a"]);
    // The default user reaches every tenant's new sessions, as before.
    ok(
        &mut admin,
        &["SESSION.NOTIFYGROUP", "new", "welcome-all", "hi"],
    );
    assert_eq!(inbox_ids(&mut a, "a:s", false), ["welcome-all"]);
    assert_eq!(inbox_ids(&mut b, "b:s", false), ["welcome-all"]);
}

#[test]
fn the_publisher_replicates_with_the_notification() {
    let server = tenants(&[]);
    let replica = Server::replica_of(&server);
    let (mut a, mut b, mut p) = (
        login(&server, "tenantA"),
        login(&server, "tenantB"),
        server.conn(),
    );
    touch(&mut a, "a:s", &["EVENT", "x"]);
    touch(&mut b, "b:s", &["EVENT", "x"]);
    ok(&mut a, &["SESSION.ENRICH", "a:s"]);
    ok(&mut b, &["SESSION.ENRICH", "b:s"]);
    ok(&mut a, &["SESSION.NOTIFYGROUP", "new", "welcome-a", "hi"]);
    assert_eq!(int(ok(&mut p, &["WAIT", "1", "10000"])), 1);
    // Promoted, the replica (given the same ACL users) applies the same rule: it got the
    // publisher with the notification.
    let mut r = replica.conn();
    wait_until(
        std::time::Duration::from_secs(10),
        "the notification on the replica",
        || call(&mut r, &["SESSION.GROUP", "INFO", "new"]).is_ok(),
    );
    ok(&mut r, &["REPLICAOF", "NO", "ONE"]);
    for (user, prefix) in [("tenantA", "a"), ("tenantB", "b")] {
        ok(
            &mut r,
            &[
                "ACL",
                "SETUSER",
                user,
                "reset",
                "on",
                ">pw",
                &format!("~{prefix}:*"),
                "+@all",
            ],
        );
    }
    let (mut ra, mut rb) = (login(&replica, "tenantA"), login(&replica, "tenantB"));
    // The notification is there; tenant B's session does not receive it.
    let held = pairs(ok(&mut r, &["SESSION.GROUP", "INFO", "new"]))
        .into_iter()
        .find(|(n, _)| bytes(n) == b"notifications")
        .map(|(_, v)| int(v));
    assert_eq!(held, Some(1));
    assert!(inbox_ids(&mut rb, "b:s", true).is_empty());
    assert_eq!(inbox_ids(&mut ra, "a:s", true), ["welcome-a"]);
}

#[test]
fn nochannels_user_cannot_publish_through_notifygroup() {
    let server = tenants(&[]);
    let mut admin = server.conn();
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "quiet",
            "on",
            ">pw",
            "~*",
            "resetchannels",
            "+@all",
        ],
    );
    let mut q = login(&server, "quiet");
    let e = err(&mut q, &["PUBLISH", "session:notify:g1", "x"]);
    assert!(noperm(&e), "{e}");
    let e = err(&mut q, &["SESSION.NOTIFYGROUP", "g1", "id1", "p"]);
    assert!(noperm(&e), "{e}");
    // Nothing was stored.
    touch(&mut admin, "s", &["EVENT", "x"]);
    ok(&mut admin, &["SESSION.ENRICH", "s", "JOIN", "1", "g1"]);
    assert!(inbox_ids(&mut admin, "s", true).is_empty());
}

#[test]
fn purge_at_is_reserved_for_the_primary_and_the_aof() {
    let server = tenants(&[]);
    let mut a = login(&server, "tenantA");
    let mut admin = server.conn();
    ok(
        &mut a,
        &[
            "SESSION.CATALOG",
            "ADD",
            "a:news",
            "n1",
            "SCORE",
            "1",
            "TTL",
            "30",
        ],
    );
    let soon = (now_ms() + 59_000).to_string();
    for c in [&mut a, &mut admin] {
        let e = err(c, &["SESSION.PURGE", "AT", &soon]);
        assert!(e.contains("reserved"), "{e}");
    }
    // PURGE by the server's clock drops only what expired.
    assert_eq!(int(ok(&mut admin, &["SESSION.PURGE"])), 0);
    assert_eq!(
        strings(ok(
            &mut a,
            &["SESSION.SURFACE", "a:s", "FROM", "a:news", "NOMARK"]
        )),
        ["n1"]
    );
}

/// True on servers with module ACL categories (Redis 7.2+, Valkey).
fn has_module_categories(c: &mut Connection) -> bool {
    let info = match ok(c, &["INFO", "server"]) {
        Value::BulkString(b) => String::from_utf8(b).expect("UTF-8"),
        Value::VerbatimString { text, .. } => text,
        other => panic!("INFO replied {other:?}"),
    };
    let field = |name: &str| {
        info.lines().find_map(|l| {
            l.strip_prefix(&format!("{name}:"))
                .map(str::trim)
                .map(String::from)
        })
    };
    if field("valkey_version").is_some() || info.contains("server_name:valkey") {
        return true;
    }
    let version = field("redis_version").expect("redis_version");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (7, 2)
}

#[test]
fn acl_categories_on_servers_that_have_them() {
    let server = tenants(&[]);
    let mut admin = server.conn();
    let cat = |c: &mut Connection, name: &str| strings(ok(c, &["ACL", "CAT", name]));
    if !has_module_categories(&mut admin) {
        // Redis 7.0: no module categories, and the module loads without them.
        assert!(!cat(&mut admin, "read")
            .iter()
            .any(|c| c.starts_with("session.")));
        return;
    }
    let read = cat(&mut admin, "read");
    let write = cat(&mut admin, "write");
    for c in [
        "session.get",
        "session.seen",
        "session.info",
        "session.sessions",
    ] {
        assert!(read.contains(&c.to_string()), "{c} in @read: {read:?}");
    }
    for c in [
        "session.touch",
        "session.enrich",
        "session.inbox",
        "session.revoke",
        "session.notifygroup",
    ] {
        assert!(write.contains(&c.to_string()), "{c} in @write: {write:?}");
        assert!(!read.contains(&c.to_string()), "{c} not in @read");
    }
    // categories follow the flags: TOUCH lost `fast` (its cost follows its field names)
    assert!(cat(&mut admin, "fast").contains(&"session.seen".to_string()));
    assert!(cat(&mut admin, "slow").contains(&"session.touch".to_string()));
    assert!(cat(&mut admin, "slow").contains(&"session.enrich".to_string()));
    assert!(cat(&mut admin, "pubsub").contains(&"session.notifygroup".to_string()));
    assert!(cat(&mut admin, "dangerous").contains(&"session.revoke".to_string()));
    assert!(cat(&mut admin, "keyspace").contains(&"session.revoke".to_string()));
    assert!(cat(&mut admin, "admin").contains(&"session.purge".to_string()));

    // A `+@read` user reads sessions but cannot touch them.
    touch(&mut admin, "s", &["SET", "1", "f", "v", "EVENT", "x"]);
    ok(
        &mut admin,
        &["ACL", "SETUSER", "reader", "on", ">pw", "~*", "+@read"],
    );
    let mut r = login(&server, "reader");
    ok(&mut r, &["SESSION.GET", "s"]);
    ok(&mut r, &["SESSION.SEEN", "s", "x"]);
    ok(&mut r, &["SESSION.INFO", "s"]);
    assert!(noperm(&err(&mut r, &["SESSION.TOUCH", "s"])));
    // `-@dangerous` keeps REVOKE away; `+@read +@write` runs the everyday commands.
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "app",
            "on",
            ">pw",
            "~*",
            "+@read",
            "+@write",
            "-@dangerous",
        ],
    );
    let mut app = login(&server, "app");
    touch(&mut app, "s", &["EVENT", "y"]);
    ok(&mut app, &["SESSION.ENRICH", "s"]);
    assert!(noperm(&err(&mut app, &["SESSION.REVOKE", "bob"])));
    assert!(noperm(&err(&mut app, &["SESSION.PURGE"])));
}

#[test]
fn group_names_are_checked_as_keys() {
    let server = tenants(&[]);
    let (mut a, mut b, mut admin) = (
        login(&server, "tenantA"),
        login(&server, "tenantB"),
        server.conn(),
    );
    ok(&mut b, &["SESSION.NOTIFYGROUP", "b:vip", "n1", "hello"]);
    ok(&mut a, &["SESSION.NOTIFYGROUP", "a:vip", "n1", "hello"]);
    assert_eq!(strings(ok(&mut a, &["SESSION.GROUP", "LIST"])), ["a:vip"]);
    assert!(noperm(&err(&mut a, &["SESSION.GROUP", "INFO", "b:vip"])));
    assert!(noperm(&err(&mut a, &["SESSION.GROUP", "DROP", "b:vip"])));
    assert_eq!(
        strings(ok(&mut admin, &["SESSION.GROUP", "LIST"])),
        ["a:vip", "b:vip"]
    );
    ok(&mut b, &["SESSION.GROUP", "INFO", "b:vip"]);
}

#[test]
fn revoke_with_count_reaches_zero_remaining_for_a_tenant() {
    let server = tenants(&[]);
    let (mut a, mut b, mut admin) = (
        login(&server, "tenantA"),
        login(&server, "tenantB"),
        server.conn(),
    );
    // Tenant B's keys sort first: a page of the first keys would hold none of tenant A's.
    for k in ["a:1", "a:2", "a:3"] {
        touch(&mut a, k, &["USER", "bob"]);
    }
    for k in ["A:0", "A:1"] {
        ok(&mut admin, &["SESSION.TOUCH", k, "USER", "bob"]);
    }
    touch(&mut b, "b:1", &["USER", "bob"]);
    let mut rounds = 0;
    loop {
        let reply = ok(&mut a, &["SESSION.REVOKE", "bob", "COUNT", "2"]);
        let Value::Array(v) = reply else {
            panic!("REVOKE COUNT replied {reply:?}")
        };
        rounds += 1;
        assert!(rounds <= 3, "REVOKE COUNT never reaches 0 remaining");
        if int(v[1].clone()) == 0 {
            break;
        }
    }
    assert!(!exists(&mut admin, "a:1") && !exists(&mut admin, "a:3"));
    assert!(exists(&mut admin, "A:0") && exists(&mut admin, "b:1"));
}

/// Several publishers in one group, of which only some may write the session's key: `pending`
/// (one binary search per publisher) counts exactly theirs, agrees with what INBOX delivers, and
/// follows an ACL change at once (the publisher is checked at delivery, not at publication).
#[test]
fn pending_counts_exactly_the_publishers_that_may_write_the_key() {
    let server = tenants(&[]);
    let mut admin = server.conn();
    for (user, keys) in [
        ("pubA", "~a:*"),
        ("pubB", "~b:*"),
        ("pubAll", "~*"),
        ("pubRO", "%R~*"),
    ] {
        ok(
            &mut admin,
            &[
                "ACL",
                "SETUSER",
                user,
                "reset",
                "on",
                ">pw",
                keys,
                "&session:notify:*",
                "+@all",
            ],
        );
    }
    ok(&mut admin, &["SESSION.TOUCH", "a:s", "EVENT", "x"]);
    ok(&mut admin, &["SESSION.TOUCH", "b:s", "EVENT", "x"]);
    for k in ["a:s", "b:s"] {
        ok(&mut admin, &["SESSION.ENRICH", k, "JOIN", "1", "g"]);
    }
    // interleaved: pubA 3, pubB 4, pubAll 2, pubRO 5, the default user 1
    let order = [
        "pubB", "pubA", "pubRO", "pubB", "pubAll", "pubRO", "pubA", "pubB", "pubRO", "default",
        "pubRO", "pubA", "pubB", "pubAll", "pubRO",
    ];
    let mut conns: std::collections::HashMap<&str, Connection> = std::collections::HashMap::new();
    for (i, who) in order.iter().enumerate() {
        let c = conns.entry(who).or_insert_with(|| {
            if *who == "default" {
                server.conn()
            } else {
                login(&server, who)
            }
        });
        let id = format!("{who}-{i}");
        assert_eq!(
            ok(c, &["SESSION.NOTIFYGROUP", "g", &id, "p"]),
            Value::Int(1)
        );
    }
    let pending = |c: &mut Connection, k: &str| touch(c, k, &[] as &[&str])["pending"];
    assert_eq!(pending(&mut admin, "a:s"), 3 + 2 + 1);
    assert_eq!(pending(&mut admin, "b:s"), 4 + 2 + 1);
    let peeked = inbox_ids(&mut admin, "a:s", true);
    assert_eq!(
        peeked,
        [
            "pubA-1",
            "pubAll-4",
            "pubA-6",
            "default-9",
            "pubA-11",
            "pubAll-13"
        ]
    );
    // two delivered: the cursor moves past them (and past the others' stepped over)
    let Value::Array(two) = ok(&mut admin, &["SESSION.INBOX", "a:s", "COUNT", "2"]) else {
        panic!("INBOX is an array")
    };
    assert_eq!(two.len(), 2);
    assert_eq!(pending(&mut admin, "a:s"), 4);
    // pubB may now write a:* too: its notifications after the cursor count at once
    ok(&mut admin, &["ACL", "SETUSER", "pubB", "~a:*"]);
    assert_eq!(pending(&mut admin, "a:s"), 4 + 2);
    assert_eq!(
        inbox_ids(&mut admin, "a:s", true),
        [
            "pubA-6",
            "pubB-7",
            "default-9",
            "pubA-11",
            "pubB-12",
            "pubAll-13"
        ]
    );
    // a publisher that no longer exists reaches nothing
    ok(&mut admin, &["ACL", "DELUSER", "pubA"]);
    assert_eq!(pending(&mut admin, "a:s"), 4 + 2 - 2);
    assert_eq!(pending(&mut admin, "b:s"), 7);
}
