//! Cluster-wide `SESSION.SESSIONS user` and `SESSION.REVOKE user` (issue 20): three primaries on
//! loopback, a user with sessions on every one of them (keys in different slots).
//!
//! - SESSIONS from each node (and through a cluster client) lists every primary's sessions;
//!   REVOKE from one node deletes them on every primary, and only the user's;
//! - a primary that does not answer (stopped, or asleep past `session.cluster-timeout`) gives an
//!   error naming it, never a partial answer; its late reply is ignored and the next call is
//!   whole again;
//! - an ACL user confined to a key prefix sees and revokes only its keys, cluster-wide, and each
//!   owner's replica applies exactly those deletions; SESSIONS on a replica lists the whole
//!   cluster too (it stands in for its primary);
//! - the paged forms (CURSOR/COUNT) stay per node.

mod common;

use std::io::Write;
use std::net::TcpStream;

use common::cluster::Cluster;
use common::*;
use redis::{Connection, Value};

fn names(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| String::from_utf8(bytes(i)).unwrap())
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

/// Sessions of `user` under `prefix` on every primary, `per` each; returns them sorted.
fn spread(cluster: &Cluster, user: &str, prefix: &str, per: usize) -> Vec<String> {
    let mut all = Vec::new();
    for i in 0..cluster.primaries().len() {
        let mut c = cluster.conn(i);
        for key in cluster.keys_on(i, prefix, per) {
            touch(&mut c, &key, &["USER", user]);
            all.push(key);
        }
    }
    all.sort();
    all
}

fn sessions(c: &mut Connection, user: &str) -> Vec<String> {
    names(ok(c, &["SESSION.SESSIONS", user]))
}

#[test]
fn sessions_and_revoke_answer_for_every_primary() {
    let cluster = Cluster::builder()
        .replicas(0)
        .node_timeout_ms(15000)
        .start();
    let alice = spread(&cluster, "alice", "alice:", 3);
    let bob = spread(&cluster, "bob", "bob:", 1);
    assert_eq!(alice.len(), 9);
    for i in 0..3 {
        let mut c = cluster.conn(i);
        assert_eq!(sessions(&mut c, "alice"), alice, "from node {i}");
        assert_eq!(sessions(&mut c, "bob"), bob, "from node {i}");
        assert!(sessions(&mut c, "nobody").is_empty());
        // the paged form stays per node: only this node's keys
        let page = ok(
            &mut c,
            &["SESSION.SESSIONS", "alice", "CURSOR", "0", "COUNT", "100"],
        );
        let Value::Array(parts) = page else {
            panic!("a page")
        };
        assert_eq!(names(parts[1].clone()).len(), 3, "node {i}'s own");
    }
    // through the cluster client (a keyless command goes to some node)
    let mut cc = cluster.client();
    let listed: Value = command(&["SESSION.SESSIONS", "alice"])
        .query(&mut cc)
        .unwrap();
    assert_eq!(names(listed), alice);

    // REVOKE from node 1 deletes alice's sessions on all three primaries, nothing else
    let mut c = cluster.conn(1);
    assert_eq!(ok(&mut c, &["SESSION.REVOKE", "alice"]), Value::Int(9));
    for i in 0..3 {
        let mut c = cluster.conn(i);
        assert!(sessions(&mut c, "alice").is_empty(), "node {i}");
        assert_eq!(sessions(&mut c, "bob"), bob, "node {i}");
        for key in cluster.keys_on(i, "alice:", 3) {
            assert!(!exists(&mut c, &key), "{key} deleted on its owner");
        }
    }
    assert_eq!(ok(&mut c, &["SESSION.REVOKE", "alice"]), Value::Int(0));
    // MULTI cannot wait for the other primaries: refused, not answered partially
    let mut m = cluster.conn(0);
    ok(&mut m, &["MULTI"]);
    ok(&mut m, &["SESSION.SESSIONS", "bob"]);
    let r = call(&mut m, &["EXEC"]);
    let text = format!("{r:?}");
    assert!(text.contains("cannot run inside MULTI"), "{text}");
}

#[test]
fn a_primary_that_does_not_answer_is_named() {
    let mut cluster = Cluster::builder()
        .replicas(0)
        .module_args(&["cluster-timeout", "300"])
        .node_timeout_ms(15000)
        .start();
    let alice = spread(&cluster, "alice", "alice:", 2);
    let mut c = cluster.conn(0);
    assert_eq!(sessions(&mut c, "alice"), alice);

    // node 2 asleep past the timeout: an error naming it; its late reply is ignored
    let mut raw = TcpStream::connect(("127.0.0.1", cluster.server(2).port())).unwrap();
    raw.write_all(b"*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$1\r\n2\r\n")
        .unwrap();
    raw.flush().unwrap();
    for cmd in ["SESSION.SESSIONS", "SESSION.REVOKE"] {
        let e = err(&mut c, &[cmd, "alice"]);
        assert!(e.contains(cluster.id(2)), "{e}");
        assert!(!e.contains(cluster.id(1)), "{e}");
        assert!(
            e.contains("did not answer within session.cluster-timeout (300 ms)"),
            "{e}"
        );
    }
    // once it is awake, the next call is whole again (the late replies changed nothing); the
    // REVOKE above deleted nothing on node 2 and node 1 (deletions follow a complete listing)
    wait_until(PATIENCE, "node 2 to answer again", || {
        call(&mut c, &["SESSION.SESSIONS", "alice"]).is_ok()
    });
    assert_eq!(sessions(&mut c, "alice"), alice);

    // node 2 stopped: named, whether the bus still tries it or already marks it failing
    let stopped = cluster.id(2).to_owned();
    cluster.stop(2);
    for cmd in ["SESSION.SESSIONS", "SESSION.REVOKE"] {
        let e = err(&mut c, &[cmd, "alice"]);
        assert!(e.contains(&stopped), "{e}");
        assert!(e.starts_with("ERR cluster-wide"), "{e}");
    }
    let page = ok(&mut c, &["SESSION.SESSIONS", "alice", "CURSOR", "0"]);
    assert!(
        matches!(page, Value::Array(_)),
        "the paged form still answers per node"
    );
}

#[test]
fn a_confined_acl_user_sees_and_revokes_only_its_keys() {
    let cluster = Cluster::start();
    let mine = spread(&cluster, "alice", "t1:", 2);
    let theirs = spread(&cluster, "alice", "t2:", 2);
    // ACL users are per node: the same rule everywhere
    for i in 0..3 {
        ok(
            &mut cluster.conn(i),
            &["ACL", "SETUSER", "tenant", "on", ">pw", "~t1:*", "+@all"],
        );
    }
    let mut all: Vec<String> = mine.iter().chain(&theirs).cloned().collect();
    all.sort();
    for i in 0..3 {
        let mut t = cluster.conn(i);
        ok(&mut t, &["AUTH", "tenant", "pw"]);
        assert_eq!(sessions(&mut t, "alice"), mine, "tenant on node {i}");
        assert_eq!(sessions(&mut cluster.conn(i), "alice"), all);
    }
    let mut t = cluster.conn(2);
    ok(&mut t, &["AUTH", "tenant", "pw"]);
    assert_eq!(ok(&mut t, &["SESSION.REVOKE", "alice"]), Value::Int(6));
    assert!(sessions(&mut t, "alice").is_empty());
    for i in 0..3 {
        let mut c = cluster.conn(i);
        assert_eq!(
            sessions(&mut c, "alice"),
            theirs,
            "node {i} keeps the other tenant's"
        );
        for key in cluster.keys_on(i, "t2:", 2) {
            assert!(exists(&mut c, &key), "{key}");
        }
    }
    // each owner replicated its deletions: its replica loses exactly the revoked keys
    for r in cluster.replicas() {
        let replica = cluster.server(r);
        let p = cluster.primary_of(r);
        let mut r = replica.conn();
        ok(&mut r, &["READONLY"]);
        let gone = cluster.keys_on(p, "t1:", 2);
        wait_until(PATIENCE, "the replica to apply the deletions", || {
            gone.iter().all(|k| !exists(&mut r, k))
        });
        for key in cluster.keys_on(p, "t2:", 2) {
            assert!(exists(&mut r, &key), "{key} kept on the replica");
        }
    }
    // a replica asked stands in for its primary and asks the others: the whole listing
    for r in cluster.replicas() {
        let replica = cluster.server(r);
        assert_eq!(sessions(&mut replica.conn(), "alice"), theirs);
    }
}
