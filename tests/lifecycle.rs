//! Session lifecycle: creation, refresh, `XX`, the sliding idle deadline capped by the maximum age,
//! stored lifetimes and configured defaults.

mod common;

use std::thread::sleep;
use std::time::Duration;

use common::*;
use redis::Value;

#[test]
fn touch_creates_then_refreshes() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let t0 = now_ms() - 5_000;

    let sent = now_ms();
    let first = touch(&mut c, "s", &["AT", &t0.to_string()]);
    let replied = now_ms();
    assert_eq!(first["new"], 1);
    assert_eq!(first["idle_ms"], 0, "a new session has no idle time");
    for name in ["events", "unique", "seen_before", "pending"] {
        assert_eq!(first[name], 0, "{name}");
    }
    // the server's clock read between `sent` and `replied` (however long that took)
    let ttl = first["ttl_ms"];
    assert!(
        (t0 + 1_800_000 - replied..=t0 + 1_800_000 - sent).contains(&ttl),
        "default idle 1800 s from 5 s ago, got ttl_ms {ttl}"
    );
    let ty: String = redis::cmd("TYPE").arg("s").query(&mut c).unwrap();
    assert_eq!(ty, "session01");

    let second = touch(&mut c, "s", &["AT", &(t0 + 1_234).to_string()]);
    assert_eq!(second["new"], 0);
    assert_eq!(second["idle_ms"], 1_234, "time since the previous touch");
    let doc = session_info(&mut c, "s");
    assert_eq!(doc["created_ms"], t0);
    assert_eq!(doc["last_seen_ms"], t0 + 1_234);

    let third = touch::<&str>(&mut c, "s", &[]);
    assert_eq!(third["new"], 0);
    assert!(
        third["ttl_ms"] > 1_790_000,
        "refreshed to the full idle time"
    );
}

#[test]
fn xx_on_a_missing_key_replies_nil_and_creates_nothing() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    for args in [
        vec!["SESSION.TOUCH", "ghost", "XX"],
        vec![
            "SESSION.TOUCH",
            "ghost",
            "IDLE",
            "60",
            "USER",
            "u",
            "XX",
            "SET",
            "1",
            "a",
            "b",
        ],
    ] {
        assert_eq!(ok(&mut c, &args), Value::Nil, "{args:?}");
    }
    assert!(keys(&mut c).is_empty(), "no zombie session");
}

#[test]
fn xx_on_an_existing_session_refreshes_it() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let t0 = now_ms() - 10_000;
    touch(&mut c, "s", &["IDLE", "60", "AT", &t0.to_string()]);
    let r = touch(
        &mut c,
        "s",
        &["XX", "SET", "1", "a", "1", "AT", &(t0 + 4_000).to_string()],
    );
    assert_eq!((r["new"], r["idle_ms"]), (0, 4_000));
    assert_eq!(pexpiretime(&mut c, "s"), t0 + 4_000 + 60_000);
    assert_eq!(get_all(&mut c, "s").unwrap()[&b"a"[..]], b"1");
}

/// The deadline arithmetic, exactly, with `AT` fixing the time of each touch.
#[test]
fn deadline_slides_with_activity_and_is_capped_by_maxage() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let base = now_ms() - 50_000;
    let at = |offset: i64| (base + offset).to_string();

    // created at base: idle deadline base + 100 s (the cap, base + 150 s, is later)
    let r = touch(&mut c, "s", &["IDLE", "100", "MAXAGE", "150", "AT", &at(0)]);
    assert_eq!(r["new"], 1);
    assert_eq!(pexpiretime(&mut c, "s"), base + 100_000);

    // seen 40 s later: the idle deadline slides to base + 140 s
    let r = touch(&mut c, "s", &["AT", &at(40_000)]);
    assert_eq!(r["idle_ms"], 40_000);
    assert_eq!(pexpiretime(&mut c, "s"), base + 140_000);

    // a touch dated before the last one never moves last_seen back
    let r = touch(&mut c, "s", &["AT", &at(10_000)]);
    assert_eq!(r["idle_ms"], 0);
    assert_eq!(pexpiretime(&mut c, "s"), base + 140_000);
    assert_eq!(session_info(&mut c, "s")["last_seen_ms"], base + 40_000);

    // seen 90 s after creation (40 s ahead of now, within the allowed skew): capped at maxage
    let sent = now_ms();
    let r = touch(&mut c, "s", &["AT", &at(90_000)]);
    let replied = now_ms();
    assert_eq!(r["idle_ms"], 50_000);
    assert_eq!(pexpiretime(&mut c, "s"), base + 150_000, "created + maxage");
    // counted from the server's clock, read between `sent` and `replied`
    let ttl = r["ttl_ms"];
    assert!(
        (base + 150_000 - replied..=base + 150_000 - sent).contains(&ttl),
        "ttl_ms {ttl}, expected base + 150 s - now"
    );
    let doc = session_info(&mut c, "s");
    assert_eq!(doc["expires_at_ms"], base + 150_000);
    assert_eq!(
        (doc["idle_s"].as_i64(), doc["maxage_s"].as_i64()),
        (Some(100), Some(150))
    );
}

/// The real clock: a session stays alive past its idle time while it is touched, and disappears
/// at its maximum age; an untouched one disappears at its idle time. No fixed sleeps and no upper
/// bound on how long anything takes (a loaded machine may stall this thread for seconds, even
/// between two commands): every deadline is bounded below by the client's clock before the
/// session was created, each disappearance is waited for, and what is asserted is that nothing
/// disappears before its deadline and that the refresh moved the deadline (from its own reply).
#[test]
fn sessions_really_expire_at_their_deadline() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    // both sessions are created at or after `sent` (by the server's clock, which is this one's)
    let sent = now_ms();
    touch(&mut c, "active", &["IDLE", "2", "MAXAGE", "3"]);
    let created_by = now_ms();
    touch(&mut c, "idle", &["IDLE", "1", "MAXAGE", "3"]);

    wait_gone(&mut c, "idle", sent + 1_000);
    // touched after the idle one went, so at least 1 s after its creation: the deadline moves
    // to created + maxage (last seen + idle would be later)
    let r = match ok(&mut c, &["SESSION.TOUCH", "active", "XX"]) {
        Value::Nil => {
            // this thread stalled past the active session's own idle deadline
            assert!(now_ms() > sent + 2_000, "gone before its deadline");
            return;
        }
        v => touch_map(v),
    };
    assert!(r["idle_ms"] >= 1_000, "idle_ms {}", r["idle_ms"]);
    assert_eq!(
        r["idle_ms"] + r["ttl_ms"],
        3_000,
        "the deadline is created + maxage"
    );
    // alive past its first idle deadline (created + 2 s), unless this thread stalled past the
    // new one
    while now_ms() <= created_by + 2_000 {
        sleep(Duration::from_millis(20));
    }
    assert!(
        exists(&mut c, "active") || now_ms() > sent + 3_000,
        "gone before its deadline"
    );
    wait_gone(&mut c, "active", sent + 3_000);
    assert_eq!(ok(&mut c, &["SESSION.TOUCH", "active", "XX"]), Value::Nil);
}

#[test]
fn lifetimes_given_at_creation_are_stored_and_reused() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let t0 = now_ms() - 1_000;
    touch(
        &mut c,
        "s",
        &["IDLE", "100", "MAXAGE", "1000", "AT", &t0.to_string()],
    );
    // later touches without IDLE/MAXAGE keep the stored values, whatever the defaults are now
    config_set(&mut c, "session.default-idle", "5");
    config_set(&mut c, "session.default-maxage", "7");
    touch(&mut c, "s", &["AT", &(t0 + 500).to_string()]);
    let doc = session_info(&mut c, "s");
    assert_eq!(
        (doc["idle_s"].as_i64(), doc["maxage_s"].as_i64()),
        (Some(100), Some(1000))
    );
    assert_eq!(pexpiretime(&mut c, "s"), t0 + 500 + 100_000);

    // naming them again replaces the stored values
    touch(&mut c, "s", &["IDLE", "50", "AT", &(t0 + 600).to_string()]);
    let doc = session_info(&mut c, "s");
    assert_eq!(
        (doc["idle_s"].as_i64(), doc["maxage_s"].as_i64()),
        (Some(50), Some(1000))
    );
    assert_eq!(pexpiretime(&mut c, "s"), t0 + 600 + 50_000);
}

#[test]
fn configured_defaults_apply_to_new_sessions_without_restart() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let get = |c: &mut redis::Connection, name: &str| -> String {
        let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(c).unwrap();
        v[1].clone()
    };
    assert_eq!(get(&mut c, "session.default-idle"), "1800");
    assert_eq!(get(&mut c, "session.default-maxage"), "86400");
    touch::<&str>(&mut c, "before", &[]);

    config_set(&mut c, "session.default-idle", "120");
    config_set(&mut c, "session.default-maxage", "600");
    assert_eq!(get(&mut c, "session.default-idle"), "120");
    let t0 = now_ms();
    touch(&mut c, "after", &["AT", &t0.to_string()]);
    let doc = session_info(&mut c, "after");
    assert_eq!(
        (doc["idle_s"].as_i64(), doc["maxage_s"].as_i64()),
        (Some(120), Some(600))
    );
    assert_eq!(pexpiretime(&mut c, "after"), t0 + 120_000);

    let doc = session_info(&mut c, "before");
    assert_eq!(
        (doc["idle_s"].as_i64(), doc["maxage_s"].as_i64()),
        (Some(1800), Some(86400))
    );

    for (name, bad) in [
        ("session.default-idle", "0"),
        ("session.default-idle", "315360001"),
        ("session.default-maxage", "-1"),
        ("session.max-fields", "0"),
        ("session.max-field-size", "x"),
    ] {
        err(&mut c, &["CONFIG", "SET", name, bad]);
    }
    assert_eq!(get(&mut c, "session.default-idle"), "120");
}

#[test]
fn module_arguments_configure_the_module() {
    let server = Server::builder()
        .module_args(&["max-fields", "2", "default-idle", "60"])
        .start();
    let mut c = server.conn();
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("session.max-fields")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, ["session.max-fields", "2"]);
    let t0 = now_ms();
    touch(
        &mut c,
        "s",
        &["SET", "2", "a", "1", "b", "2", "AT", &t0.to_string()],
    );
    assert_eq!(pexpiretime(&mut c, "s"), t0 + 60_000);
    let e = err(&mut c, &["SESSION.TOUCH", "s", "SET", "1", "c", "3"]);
    assert!(e.starts_with("ERR too many fields"), "{e}");
}

#[test]
fn reads_do_not_renew_the_session() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let t0 = now_ms() - 10_000;
    touch(&mut c, "s", &["SET", "1", "a", "1", "AT", &t0.to_string()]);
    let before = (pexpiretime(&mut c, "s"), digest_value(&mut c, "s"));
    ok(&mut c, &["SESSION.GET", "s"]);
    ok(&mut c, &["SESSION.GET", "s", "a", "zz"]);
    session_info(&mut c, "s");
    assert_eq!(
        (pexpiretime(&mut c, "s"), digest_value(&mut c, "s")),
        before
    );
    assert_eq!(session_info(&mut c, "s")["last_seen_ms"], t0);
}

#[test]
fn reads_of_a_missing_session_reply_nil() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    assert_eq!(call(&mut c, &["SESSION.GET", "nope"]), Ok(Value::Nil));
    assert_eq!(
        call(&mut c, &["SESSION.GET", "nope", "a", "b"]),
        Ok(Value::Nil)
    );
    assert_eq!(call(&mut c, &["SESSION.INFO", "nope"]), Ok(Value::Nil));

    // an expired session reads as missing too
    touch(
        &mut c,
        "old",
        &["IDLE", "1", "AT", &(now_ms() - 5_000).to_string()],
    );
    assert_eq!(call(&mut c, &["SESSION.GET", "old"]), Ok(Value::Nil));
    assert_eq!(call(&mut c, &["SESSION.INFO", "old"]), Ok(Value::Nil));
}
