//! The TOUCH reply byte for byte on the wire. Its names are replayed from encodings Redis made
//! at load (`ECHO name`, see src/ffi.rs `encode_names`), so these tests pin that the bytes
//! are exactly a map of bulk-string names and integers, in RESP2 and RESP3, alone, pipelined,
//! inside MULTI, and as Lua sees it.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use redis::Value;

/// A raw RESP connection: sends encoded commands, reads exact bytes.
struct Wire {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl Wire {
    fn open(server: &Server) -> Wire {
        let stream = TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Wire {
            stream,
            pending: Vec::new(),
        }
    }

    fn send(&mut self, args: &[&str]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        self.stream.write_all(&out).expect("write");
    }

    /// Reads until `n` bytes are buffered and returns them.
    fn take(&mut self, n: usize) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        while self.pending.len() < n {
            let got = self.stream.read(&mut buf).expect("read");
            assert!(got > 0, "connection closed");
            self.pending.extend_from_slice(&buf[..got]);
        }
        self.pending.drain(..n).collect()
    }

    /// Reads one line (up to and including CRLF).
    fn line(&mut self) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(i) = self.pending.windows(2).position(|w| w == b"\r\n") {
                return self.pending.drain(..i + 2).collect();
            }
            let got = self.stream.read(&mut buf).expect("read");
            assert!(got > 0, "connection closed");
            self.pending.extend_from_slice(&buf[..got]);
        }
    }

    /// Reads one TOUCH reply and checks every byte of its framing: the header, then each name
    /// as a bulk string equal to the expected one, then an integer. Returns the values.
    fn touch_reply(&mut self, header: &[u8]) -> Vec<i64> {
        assert_eq!(self.line(), header, "map header");
        let mut values = Vec::new();
        for name in TOUCH_REPLY_NAMES {
            let bulk = format!("${}\r\n{name}\r\n", name.len()).into_bytes();
            assert_eq!(self.take(bulk.len()), bulk, "name {name}");
            let line = self.line();
            assert_eq!(line[0], b':', "value of {name}: {line:?}");
            let text = std::str::from_utf8(&line[1..line.len() - 2]).expect("ascii");
            values.push(text.parse().expect("integer"));
        }
        values
    }
}

impl Wire {
    /// Reads one reply and checks it is, byte for byte, `header` followed by the entries of an
    /// AT-less touch that created the session.
    fn expect_new_session(&mut self, header: &[u8]) {
        let mut want = header.to_vec();
        want.extend(expected_new_session());
        assert_eq!(
            String::from_utf8_lossy(&self.take(want.len())),
            String::from_utf8_lossy(&want)
        );
    }
}

fn expected_new_session() -> Vec<u8> {
    // AT-less touch of a new session: ttl is exactly the default idle (1800 s).
    let mut out = Vec::new();
    for (name, value) in TOUCH_REPLY_NAMES.iter().zip([1, 1, 1, 0, 0, 1_800_000, 0]) {
        out.extend_from_slice(format!("${}\r\n{name}\r\n:{value}\r\n", name.len()).as_bytes());
    }
    out
}

#[test]
fn resp2_touch_reply_is_exactly_a_flat_array_of_bulk_names_and_integers() {
    let server = Server::start(&[]);
    let mut w = Wire::open(&server);
    w.send(&[
        "SESSION.TOUCH",
        "s",
        "EVENT",
        "a",
        "CATEGORIES",
        "2",
        "x",
        "y",
    ]);
    w.expect_new_session(b"*14\r\n");
    // pipelined: many replies back to back stay framed
    for i in 0..50 {
        w.send(&["SESSION.TOUCH", "s", "EVENT", &format!("i{}", i % 7)]);
    }
    for i in 0..50 {
        let v = w.touch_reply(b"*14\r\n");
        assert_eq!(v[0], 0, "new");
        assert_eq!(v[1], i + 2, "events");
    }
    assert!(
        !server.log_tail(200).contains("TOUCH reply names:"),
        "every name was encoded at load"
    );
    // the load asked Redis for the seven encodings (and nothing since did)
    let mut c = server.conn();
    let stats = bytes(&ok(&mut c, &["INFO", "commandstats"]));
    assert!(
        String::from_utf8_lossy(&stats).contains("cmdstat_echo:calls=7,"),
        "{}",
        String::from_utf8_lossy(&stats)
    );
}

#[test]
fn resp3_touch_reply_is_exactly_a_map_of_bulk_names_and_integers() {
    let server = Server::start(&[]);
    let mut w = Wire::open(&server);
    w.send(&["HELLO", "3"]);
    // HELLO's own reply is a map; skip it by asking for a marker after it (PING with an
    // argument replies a bulk string)
    w.send(&["PING", "marker-7f3a"]);
    while w.line() != b"marker-7f3a\r\n" {}
    w.send(&["SESSION.TOUCH", "s", "EVENT", "a"]);
    w.expect_new_session(b"%7\r\n");
    w.send(&["SESSION.TOUCH", "s", "EVENT", "a"]);
    let v = w.touch_reply(b"%7\r\n");
    assert_eq!((v[0], v[1], v[3]), (0, 2, 1), "new, events, seen_before");
    // inside MULTI
    w.send(&["MULTI"]);
    w.send(&["SESSION.TOUCH", "s", "EVENT", "b"]);
    w.send(&["EXEC"]);
    assert_eq!(w.line(), b"+OK\r\n");
    assert_eq!(w.line(), b"+QUEUED\r\n");
    assert_eq!(w.line(), b"*1\r\n");
    assert_eq!(w.touch_reply(b"%7\r\n")[1], 3);
}

#[test]
fn touch_reply_inside_multi_and_lua_parses_as_the_same_map() {
    let server = Server::start(&[]);
    let mut w = Wire::open(&server);
    w.send(&["MULTI"]);
    w.send(&["SESSION.TOUCH", "m", "EVENT", "a"]);
    w.send(&["SESSION.TOUCH", "m", "EVENT", "a"]);
    w.send(&["EXEC"]);
    assert_eq!(w.line(), b"+OK\r\n");
    assert_eq!(w.line(), b"+QUEUED\r\n");
    assert_eq!(w.line(), b"+QUEUED\r\n");
    assert_eq!(w.line(), b"*2\r\n");
    assert_eq!(w.touch_reply(b"*14\r\n")[1], 1);
    assert_eq!(w.touch_reply(b"*14\r\n")[1], 2);

    // Lua receives the reply parsed by Redis: a table of name, value, name, value...
    let mut c = server.conn();
    let script = "local r = redis.call('SESSION.TOUCH', KEYS[1], 'EVENT', 'b') \
                  local out = {} \
                  for i = 1, #r, 2 do out[#out + 1] = r[i] .. '=' .. tostring(r[i + 1]) end \
                  return out";
    let got = ok(&mut c, &["EVAL", script, "1", "m"]);
    let Value::Array(items) = got else {
        panic!("EVAL: {got:?}")
    };
    let names: Vec<String> = items
        .iter()
        .map(|v| {
            let s = String::from_utf8(bytes(v)).expect("utf8");
            s.split('=').next().unwrap_or_default().to_string()
        })
        .collect();
    assert_eq!(names, TOUCH_REPLY_NAMES);
    assert!(String::from_utf8(bytes(&items[1])).expect("utf8") == "events=3");

    // RESP3 inside Lua: redis.setresp(3) makes the reply a map table
    let script3 = "redis.setresp(3) \
                   local r = redis.call('SESSION.TOUCH', KEYS[1], 'EVENT', 'b') \
                   return {r.map['events'], r.map['seen_before']}";
    assert_eq!(
        ok(&mut c, &["EVAL", script3, "1", "m"]),
        Value::Array(vec![Value::Int(4), Value::Int(1)])
    );
}

#[test]
fn without_echo_the_names_fall_back_to_the_same_bytes() {
    // ECHO renamed away: the module cannot have Redis encode the names at load and writes them
    // itself; the client sees no difference.
    let server = Server::start(&["--rename-command", "ECHO", ""]);
    let mut c = server.conn();
    assert!(call(&mut c, &["ECHO", "x"]).is_err(), "ECHO is gone");
    let mut w = Wire::open(&server);
    w.send(&["SESSION.TOUCH", "s", "EVENT", "a"]);
    w.expect_new_session(b"*14\r\n");
    for i in 0..20 {
        w.send(&["SESSION.TOUCH", "s", "EVENT", "a"]);
        assert_eq!(w.touch_reply(b"*14\r\n")[1], i + 2);
    }
    assert!(
        server
            .log_tail(200)
            .contains("TOUCH reply names: 0 of 7 encoded"),
        "the fallback was taken and logged"
    );
}
