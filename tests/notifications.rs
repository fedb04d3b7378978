//! Keyspace notifications of the module class (`d` in `notify-keyspace-events`).

mod common;

use common::*;
use redis::Connection;

const SENTINEL: &str = "test:sentinel";

/// Runs `args`, then publishes on a sentinel channel, and returns the (channel, payload) of every
/// `__key*__` message the subscriber received before the sentinel. Notifications are delivered
/// while the command runs, so anything the command fired arrives before the sentinel.
fn notifications_of(
    c: &mut Connection,
    sub: &mut redis::PubSub,
    args: &[&str],
) -> Vec<(String, String)> {
    let _ = call(c, args);
    ok(c, &["PUBLISH", SENTINEL, "done"]);
    let mut seen = Vec::new();
    loop {
        let msg = sub.get_message().expect("a message within the timeout");
        let channel = msg.get_channel_name().to_owned();
        if channel == SENTINEL {
            return seen;
        }
        let payload: String = msg.get_payload().expect("a text payload");
        seen.push((channel, payload));
    }
}

fn pair(channel: &str, payload: &str) -> (String, String) {
    (channel.to_owned(), payload.to_owned())
}

#[test]
fn touch_fires_session_touch_in_the_module_class() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let mut sub_conn = server.conn();
    let mut sub = sub_conn.as_pubsub();
    sub.set_read_timeout(Some(PATIENCE)).unwrap();
    sub.psubscribe("__key*__:*").unwrap();
    sub.subscribe(SENTINEL).unwrap();

    let touch_s = ["SESSION.TOUCH", "s", "SET", "1", "a", "1"];
    let keyspace = pair("__keyspace@0__:s", "session.touch");
    let keyevent = pair("__keyevent@0__:session.touch", "s");

    // nothing while notifications are off (the default)
    assert!(notifications_of(&mut c, &mut sub, &touch_s).is_empty());

    // "A" includes the module class
    config_set(&mut c, "notify-keyspace-events", "KEA");
    let got = notifications_of(&mut c, &mut sub, &touch_s);
    assert!(
        got.contains(&keyspace) && got.contains(&keyevent),
        "{got:?}"
    );

    // the module class alone
    config_set(&mut c, "notify-keyspace-events", "Kd");
    assert_eq!(notifications_of(&mut c, &mut sub, &touch_s), [keyspace]);
    config_set(&mut c, "notify-keyspace-events", "Ed");
    assert_eq!(notifications_of(&mut c, &mut sub, &touch_s), [keyevent]);

    // other classes only: no session event
    config_set(&mut c, "notify-keyspace-events", "KEg$");
    let got = notifications_of(&mut c, &mut sub, &touch_s);
    assert!(
        !got.iter()
            .any(|(ch, p)| ch.contains("session.") || p.starts_with("session.")),
        "{got:?}"
    );

    // no event for what changes nothing: reads, refused touches, XX on a missing key
    config_set(&mut c, "notify-keyspace-events", "KEA");
    for args in [
        &["SESSION.GET", "s"][..],
        &["SESSION.INFO", "s"],
        &["SESSION.TOUCH", "s", "BOGUS"],
        &["SESSION.TOUCH", "ghost", "XX"],
    ] {
        assert!(
            notifications_of(&mut c, &mut sub, args).is_empty(),
            "{args:?}"
        );
    }
}
