//! Replication: after a full sync and a stream of effects, the replica holds exactly the
//! primary's sessions, with exactly the same absolute expiries, whatever its own configuration.

mod common;

use common::dump::ModuleDump;
use common::*;
use redis::Value;

#[test]
fn replica_holds_exactly_the_primary_sessions() {
    let primary = Server::start(&[]);
    let mut p = primary.conn();
    let mut rng = seeded_rng(11);
    // sessions that reach the replica through the full sync (RDB transfer)
    random_sessions(&mut p, &mut rng, "synced", 100, 300);

    let replica = Server::replica_of(&primary);
    let mut r = replica.conn();
    // the replica's own defaults and limits must not matter: the primary's effects are applied
    for (name, value) in [
        ("session.default-idle", "5"),
        ("session.default-maxage", "7"),
        ("session.max-fields", "1"),
        ("session.max-field-size", "1"),
        ("session.max-categories", "1"),
        ("session.seen-capacity", "1"),
        ("session.hll-precision", "4"),
        ("session.interest-top-n", "1"),
        ("session.interest-half-life", "1"),
    ] {
        config_set(&mut r, name, value);
    }

    // sessions and changes that reach it through the replication stream
    random_sessions(&mut p, &mut rng, "streamed", 300, 1_500);
    random_sessions(&mut p, &mut rng, "synced", 100, 300);
    touch::<&str>(&mut p, "defaults", &[]);
    touch(
        &mut p,
        "dated",
        &["SET", "1", "a", "1", "AT", &(now_ms() - 30_000).to_string()],
    );
    touch(&mut p, "dated", &["AT", &(now_ms() - 10_000).to_string()]);
    ok(&mut p, &["COPY", "synced:1", "copied"]);
    ok(&mut p, &["DEL", "synced:2"]);
    config_set(&mut p, "rdbcompression", "no");
    let payload = bytes(&ok(&mut p, &["DUMP", "synced:3"]));
    ok(&mut p, &[&b"RESTORE"[..], b"restored", b"0", &payload]);
    let saved = ModuleDump::parse(&payload).saved;
    ok(&mut p, &[&b"SESSION.LOAD"[..], b"loaded", &saved]);
    assert_eq!(ok(&mut p, &["SESSION.TOUCH", "absent", "XX"]), Value::Nil);
    // inside a transaction and a script
    let () = redis::pipe()
        .atomic()
        .cmd("SESSION.TOUCH")
        .arg("in-multi")
        .arg(&["SET", "1", "a", "1"])
        .ignore()
        .cmd("SESSION.TOUCH")
        .arg("in-multi")
        .arg(&["DEL", "1", "a", "USER", "m"])
        .ignore()
        .query(&mut p)
        .expect("MULTI/EXEC");
    ok(
        &mut p,
        &[
            "EVAL",
            "return redis.call('SESSION.TOUCH', KEYS[1], 'SET', '1', 'f', ARGV[1])",
            "1",
            "in-script",
            "v",
        ],
    );
    // dated so that it expires at once, then touched again: deleted, then created anew
    let past = (now_ms() - 5_000).to_string();
    touch(
        &mut p,
        "reborn",
        &["IDLE", "1", "SET", "1", "old", "1", "AT", &past],
    );
    assert_eq!(touch(&mut p, "reborn", &["SET", "1", "new", "1"])["new"], 1);

    assert_eq!(ok(&mut p, &["WAIT", "1", "60000"]), Value::Int(1));
    assert_eq!(digest(&mut r), digest(&mut p), "DEBUG DIGEST");
    let on_primary = expiries(&mut p);
    assert_eq!(expiries(&mut r), on_primary, "keys and PEXPIRETIME");
    assert!(on_primary.len() > 400);
    assert!(!exists(&mut r, "absent") && !exists(&mut r, "synced:2"));
    for key in ["dated", "reborn"] {
        assert_eq!(
            session_info(&mut r, key),
            session_info(&mut p, key),
            "{key}"
        );
    }
}
