//! Hostile input against a live server: random and malformed SESSION commands, corrupt `RESTORE`
//! payloads and corrupt `SESSION.LOAD` saved forms. The server never crashes, every reply is an
//! error (`ERR ...`/`WRONGTYPE ...`) or a result of the command's documented shape, and what was
//! accepted survives `DEBUG RELOAD` (RDB save and load) unchanged.
//!
//! Sizes: `SESSION_SLOW=1` (`make test-slow`) multiplies them by 10; `SESSION_FUZZ_COMMANDS`
//! sets the command count exactly. `SESSION_TEST_SEED` replays a run (the seed is printed).

mod common;

use std::collections::BTreeMap;

use common::dump::{seal, unsealed, ModuleDump};
use common::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use redis::{Connection, ConnectionLike, Value};

/// 1, or 10 under `SESSION_SLOW=1`.
fn scale() -> usize {
    match std::env::var("SESSION_SLOW").as_deref() {
        Ok("1") | Ok("yes") | Ok("true") => 10,
        _ => 1,
    }
}

/// Sends `commands` as one pipeline and returns one reply per command, error replies included
/// (as `Value::ServerError`). Panics when the server does not answer (a crash).
fn pipeline(c: &mut Connection, commands: &[Vec<Vec<u8>>]) -> Vec<Value> {
    let mut pipe = redis::pipe();
    for args in commands {
        pipe.add_command(command(args));
    }
    c.req_packed_commands(&pipe.get_packed_pipeline(), 0, commands.len())
        .unwrap_or_else(|e| panic!("the server stopped answering: {e}"))
}

fn shown(args: &[Vec<u8>]) -> String {
    let parts: Vec<String> = args
        .iter()
        .map(|a| {
            let s = String::from_utf8_lossy(a);
            if s.len() > 40 {
                format!("{}...({} bytes)", &s[..s.floor_char_boundary(40)], a.len())
            } else {
                s.into_owned()
            }
        })
        .collect();
    format!("{parts:?}")
}

// ---------------------------------------------------------------------------------------------
// Reply shapes

fn is_bulk(v: &Value) -> bool {
    matches!(v, Value::BulkString(_))
}

fn is_int_in(v: &Value, lo: i64, hi: i64) -> bool {
    matches!(v, Value::Int(i) if (lo..=hi).contains(i))
}

/// The name/value pairs of a map reply in either protocol.
fn map_pairs(v: &Value) -> Option<Vec<(&Value, &Value)>> {
    match v {
        Value::Map(p) => Some(p.iter().map(|(a, b)| (a, b)).collect()),
        Value::Array(items) if items.len() % 2 == 0 => {
            Some(items.chunks(2).map(|p| (&p[0], &p[1])).collect())
        }
        _ => None,
    }
}

fn name_of(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn json_object(v: &Value) -> bool {
    match v {
        Value::BulkString(b) => matches!(
            serde_json::from_slice::<serde_json::Value>(b),
            Ok(serde_json::Value::Object(_))
        ),
        _ => false,
    }
}

/// Whether `reply` is a valid result of `args` (the command as sent).
fn valid_result(args: &[Vec<u8>], reply: &Value) -> bool {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    let sub = args
        .get(1)
        .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase());
    match name.as_str() {
        "SESSION.TOUCH" => {
            *reply == Value::Nil
                || map_pairs(reply).is_some_and(|pairs| {
                    pairs.len() == TOUCH_REPLY_NAMES.len()
                        && pairs.iter().zip(TOUCH_REPLY_NAMES).all(|((n, v), want)| {
                            name_of(n) == Some(want.as_bytes()) && matches!(v, Value::Int(_))
                        })
                })
        }
        "SESSION.GET" => match reply {
            Value::Nil => true,
            Value::Map(p) => p.iter().all(|(n, v)| is_bulk(n) && is_bulk(v)),
            Value::Array(items) => items.iter().all(|v| is_bulk(v) || *v == Value::Nil),
            _ => false,
        },
        "SESSION.SEEN" => {
            matches!(reply, Value::Array(items) if items.iter().all(|v| is_int_in(v, 0, 1)))
        }
        "SESSION.INFO" | "SESSION.ENRICH" => *reply == Value::Nil || json_object(reply),
        "SESSION.STATS" => map_pairs(reply).is_some_and(|p| p.len() == 7),
        "SESSION.SURFACE" | "SESSION.TRENDING" => matches!(reply, Value::Array(items)
            if items.iter().all(|v| is_bulk(v) || matches!(v, Value::Double(_)))),
        "SESSION.IMPRESS" | "SESSION.REVOKE" | "SESSION.PURGE" => is_int_in(reply, 0, i64::MAX),
        "SESSION.NOTIFYGROUP" => is_int_in(reply, 0, 1),
        "SESSION.INBOX" => matches!(reply, Value::Array(items) if items.iter().all(|m| {
            map_pairs(m).is_some_and(|p| {
                let names: Vec<Option<&[u8]>> = p.iter().map(|(n, _)| name_of(n)).collect();
                let four = [Some(&b"group"[..]), Some(b"id"), Some(b"payload"), Some(b"published_ms")];
                (names == four
                    || (names.len() == 5 && names[..4] == four && names[4] == Some(b"delivered")
                        && is_int_in(p[4].1, 0, 1)))
                    && is_bulk(p[0].1) && is_bulk(p[1].1) && is_bulk(p[2].1)
                    && matches!(p[3].1, Value::Int(_))
            })
        })),
        "SESSION.ACK" => is_int_in(reply, 0, i64::MAX),
        "SESSION.LOAD" => *reply == Value::Okay,
        "SESSION.SESSIONS" => matches!(reply, Value::Array(items) if items.iter().all(is_bulk)),
        "SESSION.ROTATE" => matches!(
            reply,
            Value::Nil | Value::Okay | Value::Int(_) | Value::SimpleString(_)
        ),
        "SESSION.CATALOG" => match sub.as_deref() {
            Some("ADD") | Some("DROP") => is_int_in(reply, 0, 1),
            Some("DEL") => is_int_in(reply, 0, i64::MAX),
            Some("INFO") => map_pairs(reply).is_some_and(|p| {
                let names: Vec<Option<&[u8]>> = p.iter().map(|(n, _)| name_of(n)).collect();
                ["items", "categories", "memory"]
                    .iter()
                    .all(|want| names.contains(&Some(want.as_bytes())))
                    && p.iter().all(|(_, v)| matches!(v, Value::Int(i) if *i >= 0))
            }),
            Some("LIST") => matches!(reply, Value::Array(items) if items.iter().all(is_bulk)),
            _ => false,
        },
        _ => false,
    }
}

/// An error reply as the module and Redis send them: `ERR ...` or `WRONGTYPE ...`, with text.
fn valid_error(reply: &Value) -> bool {
    match reply {
        Value::ServerError(e) => {
            matches!(e.code(), "ERR" | "WRONGTYPE") && e.details().is_some_and(|d| !d.is_empty())
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Command generator

const KEYWORDS: &[&str] = &[
    "IDLE",
    "MAXAGE",
    "XX",
    "USER",
    "SET",
    "DEL",
    "EVENT",
    "CATEGORIES",
    "PARAMS",
    "AT",
    "ATTRS",
    "JOIN",
    "LEAVE",
    "THRESHOLDS",
    "SCORE",
    "TTL",
    "EXPIREAT",
    "FROM",
    "ITEMS",
    "COUNT",
    "CATEGORY",
    "EXPLORE",
    "MAXIMPRESSIONS",
    "NOMARK",
    "WITHSCORES",
    "WIDTH",
    "MAXLEN",
    "SEQ",
    "PEEK",
    "UNREAD",
    "JOINEDBEFORE",
    "JOINEDAFTER",
    "NOW",
    "UPTO",
    "IDS",
    "ADD",
    "DROP",
    "INFO",
    "LIST",
];

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "-1",
    "-0",
    "01",
    "+1",
    "255",
    "256",
    "1000",
    "1001",
    "100000",
    "315360000",
    "315360001",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "16725225600000",
    "16725225600001",
    "0.5",
    "1e-9",
    "1e300",
    "1e309",
    "nan",
    "inf",
    "-inf",
    "",
    "1.5",
    "0.25",
];

/// The session keys the fuzzer works on; `str` and `hash` are keys of other types.
const SESSION_KEYS: usize = 40;

struct Gen<'a> {
    rng: &'a mut StdRng,
    /// Real saved forms (for LOAD), taken from rich sessions.
    saved: &'a [Vec<u8>],
    /// Optional commands this server's module has (SESSIONS, REVOKE, ROTATE).
    users: bool,
    /// SESSION.PURGE exists.
    purge: bool,
}

impl Gen<'_> {
    fn key(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..20) {
            0 => b"str".to_vec(),
            1 => b"hash".to_vec(),
            2 => format!("missing:{}", self.rng.gen::<u16>()).into_bytes(),
            3 => self.bytes(8),
            _ => format!("fz:{}", self.rng.gen_range(0..SESSION_KEYS)).into_bytes(),
        }
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.rng.gen_range(0..=max);
        (0..n).map(|_| self.rng.gen()).collect()
    }

    fn word(&mut self, pool: &str, n: usize) -> Vec<u8> {
        match self.rng.gen_range(0..12) {
            0 => self.bytes(6),
            1 => Vec::new(),
            _ => format!("{pool}{}", self.rng.gen_range(0..n)).into_bytes(),
        }
    }

    fn item(&mut self) -> Vec<u8> {
        self.word("i", 60)
    }

    fn category(&mut self) -> Vec<u8> {
        self.word("c", 8)
    }

    fn group(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..10) {
            0 => b"new".to_vec(),
            1 => b"engaged".to_vec(),
            2 => b"interest:c1".to_vec(),
            _ => self.word("g", 5),
        }
    }

    fn int(&mut self, lo: i64, hi: i64) -> Vec<u8> {
        if self.rng.gen_bool(0.1) {
            self.number()
        } else {
            self.rng.gen_range(lo..=hi).to_string().into_bytes()
        }
    }

    fn number(&mut self) -> Vec<u8> {
        NUMBERS.choose(self.rng).unwrap().as_bytes().to_vec()
    }

    fn token(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..4) {
            0 => KEYWORDS.choose(self.rng).unwrap().as_bytes().to_vec(),
            1 => self.number(),
            2 => self.bytes(12),
            _ => self.key(),
        }
    }

    fn at(&mut self) -> Vec<u8> {
        let now = now_ms();
        match self.rng.gen_range(0..6) {
            0 => (now + 3_600_000).to_string().into_bytes(), // too far ahead
            1 => self.number(),
            _ => (now - self.rng.gen_range(0..7_200_000))
                .to_string()
                .into_bytes(),
        }
    }

    /// `count` then that many items from `each` (sometimes a lying count).
    fn counted(
        &mut self,
        out: &mut Vec<Vec<u8>>,
        n: usize,
        mut each: impl FnMut(&mut Self) -> Vec<u8>,
    ) {
        let said = match self.rng.gen_range(0..15) {
            0 => self.number(),
            1 => (n + 1).to_string().into_bytes(),
            _ => n.to_string().into_bytes(),
        };
        out.push(said);
        for _ in 0..n {
            let v = each(self);
            out.push(v);
        }
    }

    fn touch(&mut self) -> Vec<Vec<u8>> {
        let mut a = vec![b"SESSION.TOUCH".to_vec(), self.key()];
        if self.rng.gen_bool(0.2) {
            a.push(b"IDLE".to_vec());
            a.push(self.int(600, 100_000));
        }
        if self.rng.gen_bool(0.2) {
            a.push(b"MAXAGE".to_vec());
            a.push(self.int(3_600, 1_000_000));
        }
        if self.rng.gen_bool(0.1) {
            a.push(b"XX".to_vec());
        }
        if self.rng.gen_bool(0.2) {
            a.push(b"USER".to_vec());
            a.push(self.word("u", 6));
        }
        if self.rng.gen_bool(0.5) {
            a.push(b"SET".to_vec());
            let n = self.rng.gen_range(1..4);
            let mut pairs = Vec::new();
            for _ in 0..n {
                pairs.push(self.word("f", 10));
                pairs.push(self.bytes(16));
            }
            let said = if self.rng.gen_bool(0.05) {
                self.number()
            } else {
                n.to_string().into_bytes()
            };
            a.push(said);
            a.extend(pairs);
        }
        if self.rng.gen_bool(0.15) {
            a.push(b"DEL".to_vec());
            let n = self.rng.gen_range(1..3);
            self.counted(&mut a, n, |g| g.word("f", 10));
        }
        if self.rng.gen_bool(0.6) {
            a.push(b"EVENT".to_vec());
            a.push(self.item());
            if self.rng.gen_bool(0.6) {
                a.push(b"CATEGORIES".to_vec());
                let n = self.rng.gen_range(1..4);
                self.counted(&mut a, n, Gen::category);
            }
        }
        if self.rng.gen_bool(0.15) {
            a.push(b"AT".to_vec());
            a.push(self.at());
        }
        if self.rng.gen_bool(0.03) {
            a.push(b"PARAMS".to_vec());
            for _ in 0..5 {
                a.push(self.number());
            }
        }
        a
    }

    fn enrich(&mut self) -> Vec<Vec<u8>> {
        let mut a = vec![b"SESSION.ENRICH".to_vec(), self.key()];
        if self.rng.gen_bool(0.4) {
            a.push(b"ATTRS".to_vec());
            let doc = match self.rng.gen_range(0..8) {
                0 => b"{not json".to_vec(),
                1 => b"[1,2]".to_vec(),
                2 => self.bytes(10),
                3 => br#"{"churn":null}"#.to_vec(),
                _ => format!(
                    r#"{{"churn":{},"geo":{{"c":"{}"}}}}"#,
                    self.rng.gen::<f32>(),
                    self.rng.gen_range(0..5)
                )
                .into_bytes(),
            };
            a.push(doc);
        }
        if self.rng.gen_bool(0.3) {
            a.push(b"JOIN".to_vec());
            let n = self.rng.gen_range(1..3);
            self.counted(&mut a, n, Gen::group);
            if self.rng.gen_bool(0.3) {
                a.push(b"NEWONLY".to_vec());
            }
        }
        if self.rng.gen_bool(0.15) {
            a.push(b"LEAVE".to_vec());
            let n = self.rng.gen_range(1..3);
            self.counted(&mut a, n, Gen::group);
        }
        if self.rng.gen_bool(0.1) {
            a.push(b"AT".to_vec());
            a.push(self.at());
        }
        if self.rng.gen_bool(0.03) {
            a.push(b"THRESHOLDS".to_vec());
            for _ in 0..4 {
                a.push(self.number());
            }
        }
        a
    }

    fn surface(&mut self) -> Vec<Vec<u8>> {
        let mut a = vec![b"SESSION.SURFACE".to_vec(), self.key()];
        let from = self.rng.gen_bool(0.75);
        if from {
            a.push(b"FROM".to_vec());
            a.push(self.word("cat", 3));
        } else {
            a.push(b"ITEMS".to_vec());
            let n = self.rng.gen_range(1..8);
            self.counted(&mut a, n, Gen::item);
        }
        if self.rng.gen_bool(0.5) {
            a.push(b"COUNT".to_vec());
            a.push(self.int(1, 30));
        }
        if from && self.rng.gen_bool(0.2) {
            a.push(b"CATEGORY".to_vec());
            a.push(self.category());
        }
        if from && self.rng.gen_bool(0.2) {
            a.push(b"BOOST".to_vec());
            a.push(b"TRENDING".to_vec());
            a.push(if self.rng.gen_bool(0.1) {
                self.number()
            } else {
                self.int(0, 5)
            });
        }
        if from && self.rng.gen_bool(0.4) {
            a.push(b"EXPLORE".to_vec());
            let r = if self.rng.gen_bool(0.1) {
                self.number()
            } else {
                format!("{:.2}", self.rng.gen::<f64>()).into_bytes()
            };
            a.push(r);
        }
        if self.rng.gen_bool(0.2) {
            a.push(b"MAXIMPRESSIONS".to_vec());
            a.push(self.int(1, 5));
        }
        if self.rng.gen_bool(0.2) {
            a.push(b"NOMARK".to_vec());
        }
        if from && self.rng.gen_bool(0.3) {
            a.push(b"WITHSCORES".to_vec());
        }
        a
    }

    fn catalog(&mut self) -> Vec<Vec<u8>> {
        let mut a = vec![b"SESSION.CATALOG".to_vec()];
        let catalog = self.word("cat", 3);
        match self.rng.gen_range(0..12) {
            0..=6 => {
                a.extend([b"ADD".to_vec(), catalog, self.item()]);
                if self.rng.gen_bool(0.6) {
                    a.push(b"SCORE".to_vec());
                    let s = if self.rng.gen_bool(0.1) {
                        self.number()
                    } else {
                        format!("{:.3}", self.rng.gen_range(-10.0..100.0)).into_bytes()
                    };
                    a.push(s);
                }
                if self.rng.gen_bool(0.6) {
                    a.push(b"CATEGORIES".to_vec());
                    let n = self.rng.gen_range(1..4);
                    self.counted(&mut a, n, Gen::category);
                }
                if self.rng.gen_bool(0.2) {
                    a.push(b"TTL".to_vec());
                    // an item that expires within seconds could vanish between the snapshot and
                    // the reload the test compares on a loaded machine: short positive TTLs
                    // become 60 (edge tokens that are refused stay as they are)
                    let ttl = self.int(60, 100_000);
                    let short = std::str::from_utf8(&ttl)
                        .ok()
                        .and_then(|t| t.parse::<i64>().ok())
                        .is_some_and(|t| (1..60).contains(&t));
                    a.push(if short { b"60".to_vec() } else { ttl });
                }
            }
            7 => {
                a.extend([b"DEL".to_vec(), catalog]);
                for _ in 0..self.rng.gen_range(0..4) {
                    a.push(self.item());
                }
            }
            8 => a.extend([b"DROP".to_vec(), catalog]),
            9 => a.extend([b"INFO".to_vec(), catalog]),
            10 => a.push(b"LIST".to_vec()),
            _ => a.push(self.token()),
        }
        a
    }

    fn notify(&mut self) -> Vec<Vec<u8>> {
        let id = self.word("n", 200);
        let payload = self.bytes(24);
        let mut a = vec![b"SESSION.NOTIFYGROUP".to_vec(), self.group(), id, payload];
        if self.rng.gen_bool(0.3) {
            a.push(b"TTL".to_vec());
            a.push(self.int(60, 100_000));
        }
        if self.rng.gen_bool(0.1) {
            a.push(b"MAXLEN".to_vec());
            a.push(self.int(1, 20));
        }
        if self.rng.gen_bool(0.05) {
            a.push(b"SEQ".to_vec());
            a.push(self.number());
        }
        if self.rng.gen_bool(0.05) {
            a.push(b"AT".to_vec());
            a.push(self.at());
        }
        // a join restriction (issue 21): NOW, a time, or anything
        if self.rng.gen_bool(0.1) {
            a.push(b"JOINEDBEFORE".to_vec());
            a.push(if self.rng.gen_bool(0.5) {
                b"NOW".to_vec()
            } else {
                self.at()
            });
        }
        if self.rng.gen_bool(0.05) {
            a.push(b"JOINEDAFTER".to_vec());
            a.push(self.at());
        }
        a
    }

    fn inbox(&mut self) -> Vec<Vec<u8>> {
        if self.rng.gen_bool(0.3) {
            return self.ack();
        }
        let mut a = vec![b"SESSION.INBOX".to_vec(), self.key()];
        if self.rng.gen_bool(0.4) {
            a.push(b"COUNT".to_vec());
            a.push(self.int(1, 10));
        }
        if self.rng.gen_bool(0.3) {
            a.push(b"PEEK".to_vec());
        }
        if self.rng.gen_bool(0.2) {
            a.push(b"UNREAD".to_vec());
        }
        if self.rng.gen_bool(0.03) {
            a.push(b"THRESHOLDS".to_vec());
            for _ in 0..4 {
                a.push(self.number());
            }
        }
        a
    }

    /// `SESSION.ACK key group (UPTO id | IDS n id ...) [AT ms]` (issue 21's read state).
    fn ack(&mut self) -> Vec<Vec<u8>> {
        let mut a = vec![b"SESSION.ACK".to_vec(), self.key(), self.group()];
        match self.rng.gen_range(0..5) {
            0 | 1 => a.extend([b"UPTO".to_vec(), self.word("n", 200)]),
            2 | 3 => {
                let n = self.rng.gen_range(1..4);
                a.push(b"IDS".to_vec());
                self.counted(&mut a, n, |g: &mut Self| g.word("n", 200));
            }
            _ => a.push(self.token()),
        }
        if self.rng.gen_bool(0.05) {
            a.push(b"AT".to_vec());
            a.push(self.at());
        }
        a
    }

    fn load(&mut self) -> Vec<Vec<u8>> {
        let payload = match self.rng.gen_range(0..6) {
            0 => self.bytes(40),
            1 => {
                let mut p = self.saved.choose(self.rng).unwrap().clone();
                let n = self.rng.gen_range(0..p.len());
                p.truncate(n);
                p
            }
            2 | 3 => {
                let mut p = self.saved.choose(self.rng).unwrap().clone();
                for _ in 0..self.rng.gen_range(1..4) {
                    let i = self.rng.gen_range(0..p.len());
                    p[i] ^= 1 << self.rng.gen_range(0..8);
                }
                p
            }
            _ => self.saved.choose(self.rng).unwrap().clone(),
        };
        vec![b"SESSION.LOAD".to_vec(), self.key(), payload]
    }

    /// One command, well formed or nearly so.
    fn well_formed(&mut self) -> Vec<Vec<u8>> {
        let roll = self.rng.gen_range(0..100);
        match roll {
            0..=27 => self.touch(),
            28..=33 => {
                let mut a = vec![b"SESSION.GET".to_vec(), self.key()];
                for _ in 0..self.rng.gen_range(0..4) {
                    a.push(self.word("f", 10));
                }
                a
            }
            34..=39 => {
                let mut a = vec![b"SESSION.SEEN".to_vec(), self.key()];
                for _ in 0..self.rng.gen_range(0..5) {
                    a.push(self.item());
                }
                a
            }
            40..=41 => vec![b"SESSION.INFO".to_vec(), self.key()],
            42 => {
                if self.rng.gen_bool(0.5) {
                    vec![b"SESSION.STATS".to_vec()]
                } else {
                    let mut a = vec![b"SESSION.TRENDING".to_vec(), self.word("cat", 3)];
                    if self.rng.gen_bool(0.3) {
                        a.push(b"CATEGORY".to_vec());
                        a.push(self.category());
                    }
                    if self.rng.gen_bool(0.5) {
                        a.push(b"WITHSCORES".to_vec());
                    }
                    a
                }
            }
            43..=51 => self.enrich(),
            52..=63 => self.surface(),
            64..=67 => {
                let mut a = vec![b"SESSION.IMPRESS".to_vec(), self.key()];
                let n = self.rng.gen_range(1..5);
                self.counted(&mut a, n, Gen::item);
                if self.rng.gen_bool(0.1) {
                    a.push(b"WIDTH".to_vec());
                    a.push(self.number());
                }
                a
            }
            68..=75 => self.inbox(),
            76..=81 => self.notify(),
            82..=91 => self.catalog(),
            92..=95 => self.load(),
            96 if self.purge => {
                let mut a = vec![b"SESSION.PURGE".to_vec()];
                if self.rng.gen_bool(0.5) {
                    a.push(b"AT".to_vec());
                    a.push(self.at());
                }
                a
            }
            _ if self.users => match self.rng.gen_range(0..3) {
                0 => vec![b"SESSION.SESSIONS".to_vec(), self.word("u", 6)],
                1 => vec![b"SESSION.REVOKE".to_vec(), self.word("u", 6)],
                _ => vec![b"SESSION.ROTATE".to_vec(), self.key(), self.key()],
            },
            _ => self.touch(),
        }
    }

    /// A command as `command` makes it, with the subcommand of SESSION.CATALOG kept UTF-8:
    /// Redis's own "unknown subcommand '...'" error echoes it, and the client cannot parse an
    /// error that is not UTF-8 (a property of Redis, not of the module).
    fn next(&mut self) -> Vec<Vec<u8>> {
        let mut a = self.command();
        if a[0] == b"SESSION.CATALOG" && a.get(1).is_some_and(|s| std::str::from_utf8(s).is_err()) {
            a[1] = b"NOSUCH".to_vec();
        }
        a
    }

    /// A command, then with probability 1/2 damaged: arguments dropped, duplicated, replaced,
    /// inserted, swapped or cut off (never the command name).
    fn command(&mut self) -> Vec<Vec<u8>> {
        let mut a = self.well_formed();
        if self.rng.gen_bool(0.5) {
            for _ in 0..self.rng.gen_range(1..4) {
                let len = a.len();
                match self.rng.gen_range(0..6) {
                    0 if len > 1 => {
                        let i = self.rng.gen_range(1..len);
                        a.remove(i);
                    }
                    1 if len > 1 => {
                        let i = self.rng.gen_range(1..len);
                        let v = a[i].clone();
                        a.insert(i, v);
                    }
                    2 if len > 1 => {
                        let i = self.rng.gen_range(1..len);
                        a[i] = self.token();
                    }
                    3 => {
                        let i = self.rng.gen_range(1..=len);
                        let t = self.token();
                        a.insert(i, t);
                    }
                    4 if len > 2 => {
                        let i = self.rng.gen_range(1..len);
                        let j = self.rng.gen_range(1..len);
                        a.swap(i, j);
                    }
                    5 if len > 1 => {
                        let n = self.rng.gen_range(1..len);
                        a.truncate(n);
                    }
                    _ => {}
                }
            }
        }
        a
    }
}

/// Rich sessions' saved forms (activity, calculated data, groups, impressions, cursors).
fn saved_forms(c: &mut Connection) -> Vec<Vec<u8>> {
    config_set(c, "rdbcompression", "no");
    ok(
        c,
        &[
            "SESSION.CATALOG",
            "ADD",
            "seedcat",
            "i1",
            "CATEGORIES",
            "1",
            "c1",
        ],
    );
    ok(c, &["SESSION.NOTIFYGROUP", "g1", "n", "hello"]);
    let mut out = Vec::new();
    for (i, events) in [(0, 0), (1, 3), (2, 40)] {
        let key = format!("seed:{i}");
        touch(
            &mut *c,
            &key,
            &["USER", "u1", "SET", "2", "a", "1", "b", "\u{0}"],
        );
        for e in 0..events {
            let item = format!("i{e}");
            touch(
                &mut *c,
                &key,
                &["EVENT", &item, "CATEGORIES", "2", "c1", "c2"],
            );
        }
        if events > 0 {
            ok(
                c,
                &[
                    "SESSION.ENRICH",
                    &key,
                    "ATTRS",
                    r#"{"x":1}"#,
                    "JOIN",
                    "1",
                    "g1",
                ],
            );
            ok(c, &["SESSION.SURFACE", &key, "FROM", "seedcat"]);
            ok(c, &["SESSION.INBOX", &key]);
        }
        out.push(ModuleDump::parse(&bytes(&ok(c, &["DUMP", &key]))).saved);
    }
    out
}

fn has_command(c: &mut Connection, name: &str) -> bool {
    match ok(c, &["COMMAND", "INFO", name]) {
        Value::Array(items) => items.first().is_some_and(|v| *v != Value::Nil),
        _ => false,
    }
}

/// Per key, its digest and absolute expiry, for keys that outlive the next minute.
fn lasting_values(c: &mut Connection) -> BTreeMap<Vec<u8>, (String, i64)> {
    let horizon = now_ms() + 60_000;
    let mut out = BTreeMap::new();
    for key in keys(c) {
        let at: i64 = command(&[&b"PEXPIRETIME"[..], &key]).query(c).unwrap();
        if at == -1 || at > horizon {
            let d: Vec<String> = command(&[&b"DEBUG"[..], b"DIGEST-VALUE", &key])
                .query(c)
                .unwrap();
            out.insert(key, (d.into_iter().next().unwrap(), at));
        }
    }
    out
}

#[test]
fn random_and_malformed_commands_never_crash_the_server() {
    let total: usize = std::env::var("SESSION_FUZZ_COMMANDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000 * scale());
    let server = Server::start(&[]);
    let mut c2 = server.conn();
    let mut c3 = server.conn_resp3();
    let saved = saved_forms(&mut c2);
    ok(&mut c2, &["SET", "str", "v"]);
    ok(&mut c2, &["HSET", "hash", "f", "v"]);
    let users = has_command(&mut c2, "session.sessions");
    let purge = has_command(&mut c2, "session.purge");
    let mut rng = seeded_rng(0x5e55_f022);
    let mut gen = Gen {
        rng: &mut rng,
        saved: &saved,
        users,
        purge,
    };

    let (mut results, mut errors) = (0usize, 0usize);
    let mut by_command: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut sent = 0;
    let mut batch_no = 0;
    while sent < total {
        let n = (total - sent).min(500);
        let batch: Vec<Vec<Vec<u8>>> = (0..n).map(|_| gen.next()).collect();
        let conn = if batch_no % 3 == 2 { &mut c3 } else { &mut c2 };
        let replies = pipeline(conn, &batch);
        assert_eq!(replies.len(), batch.len());
        for (args, reply) in batch.iter().zip(&replies) {
            let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
            let entry = by_command.entry(name).or_default();
            if valid_error(reply) {
                errors += 1;
                entry.1 += 1;
            } else {
                assert!(
                    valid_result(args, reply),
                    "{} got an invalid reply: {reply:?}",
                    shown(args)
                );
                results += 1;
                entry.0 += 1;
            }
        }
        sent += n;
        batch_no += 1;
        if batch_no % 20 == 0 {
            assert_eq!(ok(&mut c2, &["PING"]), Value::SimpleString("PONG".into()));
        }
    }
    println!("{sent} commands: {results} results, {errors} error replies");
    for (name, (r, e)) in &by_command {
        println!("  {name:22} {r:7} results {e:7} errors");
    }
    assert_eq!(results + errors, total);
    // every command family was exercised, both ways
    for (name, (r, e)) in &by_command {
        assert!(*r > 0 && *e > 0, "{name}: {r} results, {e} errors");
    }

    // what was accepted is consistent: every session's digest, INFO and DUMP work, and an RDB
    // save and load keeps every lasting value and its expiry (and the registry)
    let sessions = keys(&mut c2);
    for key in &sessions {
        let ty = bytes(&ok(&mut c2, &[&b"TYPE"[..], key]));
        if ty == b"session01" && ok(&mut c2, &[&b"SESSION.INFO"[..], key]) != Value::Nil {
            session_info(&mut c2, key);
            ok(&mut c2, &[&b"DUMP"[..], key]);
        }
    }
    let catalogs = ok(&mut c2, &["SESSION.CATALOG", "LIST"]);
    let before = lasting_values(&mut c2);
    assert!(before.len() > 10, "the fuzzer kept some sessions");
    ok(&mut c2, &["DEBUG", "RELOAD"]);
    let after = lasting_values(&mut c2);
    for (key, value) in &before {
        assert_eq!(
            after.get(key),
            Some(value),
            "{} after DEBUG RELOAD",
            String::from_utf8_lossy(key)
        );
    }
    assert_eq!(ok(&mut c2, &["SESSION.CATALOG", "LIST"]), catalogs);
    digest(&mut c2);
}

/// Restores `payload` at `r`: refused with an `ERR`, or accepted as a session that is usable and
/// canonical (a re-DUMP gives the same bytes, or is exactly `original`: Redis reads a payload cut
/// short on into its footer, and a footer that completes the string is a lucky repair; or another
/// valid session that is its own fixed point). Returns whether it was accepted.
fn restore(c: &mut Connection, payload: &[u8], original: &[u8], what: &str) -> bool {
    let accepted = match call(c, &[&b"RESTORE"[..], b"r", b"0", payload, b"REPLACE"]) {
        Err(e) => {
            assert!(e.starts_with("ERR "), "{what}: {e}");
            false
        }
        Ok(_) => {
            let ty = bytes(&ok(c, &["TYPE", "r"]));
            assert_eq!(ty, b"session01", "{what}");
            if ok(c, &["SESSION.INFO", "r"]) == Value::Nil {
                // a damaged time put the session past `created + maxage`: gone for every
                // SESSION command (max age is a guarantee); a write deletes it
                assert_eq!(ok(c, &["SESSION.GET", "r"]), Value::Nil, "{what}");
                ok(c, &["SESSION.ENRICH", "r"]);
                assert_eq!(ok(c, &["EXISTS", "r"]), Value::Int(0), "{what}");
                return true;
            }
            session_info(&mut *c, "r");
            digest_value(c, "r");
            ok(c, &["SESSION.SEEN", "r", "i1"]);
            ok(c, &["SESSION.GET", "r"]);
            // the footer's RDB version may differ (Redis accepts older ones and writes its own)
            let again = bytes(&ok(c, &["DUMP", "r"]));
            let body = |p: &[u8]| p[..p.len() - 10].to_vec();
            if body(&again) != body(original) && body(&again) != body(payload) {
                // Redis framed the damaged payload differently (a cut one is read on into its
                // footer, a flipped length moves the string's end) and the bytes it handed over
                // made another valid session: that session must still be canonical, its own
                // DUMP restoring to the same bytes.
                ok(c, &[&b"RESTORE"[..], b"r2", b"0", &again, b"REPLACE"]);
                let twice = bytes(&ok(c, &["DUMP", "r2"]));
                assert_eq!(body(&twice), body(&again), "{what}: not canonical");
                ok(c, &["DEL", "r2"]);
            }
            // writes on it answer (a corrupt time may make TOUCH refuse: see
            // negative_saved_times_make_touch_fail_after_writing)
            for args in [
                &["SESSION.TOUCH", "r", "EVENT", "i1", "CATEGORIES", "1", "c9"][..],
                &["SESSION.ENRICH", "r"],
                &["SESSION.SURFACE", "r", "FROM", "seedcat", "EXPLORE", "0.5"],
                &["SESSION.INBOX", "r"],
            ] {
                if let Err(e) = call(c, args) {
                    assert!(e.starts_with("ERR "), "{what}: {args:?}: {e}");
                }
            }
            true
        }
    };
    ok(c, &["DEL", "r"]);
    accepted
}

/// Random damage to the DUMP payloads of rich sessions, with the CRC recomputed so that the
/// module's loader (not Redis's checksum) must judge them: bit flips anywhere, bit flips inside
/// the module's saved form, truncations of the payload and of the saved form.
#[test]
fn corrupt_restore_payloads_are_refused_or_valid() {
    let rounds = 3_000 * scale();
    let server = Server::start(&[]);
    let mut c = server.conn();
    let saved = saved_forms(&mut c);
    let dumps: Vec<ModuleDump> = (0..saved.len())
        .map(|i| {
            let payload = bytes(&ok(&mut c, &["DUMP", &format!("seed:{i}")]));
            ModuleDump::parse(&payload)
        })
        .collect();
    let mut rng = seeded_rng(0x00c0_ffee);
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..rounds {
        let dump = dumps.choose(&mut rng).unwrap();
        let (payload, what) = match rng.gen_range(0..4) {
            0 => {
                let mut data = unsealed(&dump.build());
                for _ in 0..rng.gen_range(1..4) {
                    let i = rng.gen_range(0..data.len());
                    data[i] ^= 1 << rng.gen_range(0..8);
                }
                (seal(data), "bit flips in the payload".to_owned())
            }
            1 => {
                let mut s = dump.saved.clone();
                for _ in 0..rng.gen_range(1..4) {
                    let i = rng.gen_range(0..s.len());
                    s[i] ^= 1 << rng.gen_range(0..8);
                }
                (
                    dump.with_saved(&s),
                    "bit flips in the saved form".to_owned(),
                )
            }
            2 => {
                let data = unsealed(&dump.build());
                let n = rng.gen_range(1..data.len() - 2);
                let mut cut = data[..n].to_vec();
                cut.extend_from_slice(&data[data.len() - 2..]);
                (seal(cut), format!("payload cut at {n} of {}", data.len()))
            }
            _ => {
                let n = rng.gen_range(0..dump.saved.len());
                (
                    dump.with_saved(&dump.saved[..n]),
                    "saved form truncated".to_owned(),
                )
            }
        };
        let what = format!("round {round}: {what}");
        if restore(&mut c, &payload, &dump.build(), &what) {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    println!("{rounds} corrupt payloads: {refused} refused, {accepted} decoded as valid sessions");
    assert!(refused > rounds / 2);
    assert!(server_alive(&mut c));
}

fn server_alive(c: &mut Connection) -> bool {
    ok(c, &["PING"]) == Value::SimpleString("PONG".into())
}

/// Saved forms with extreme numbers in them, built with the domain crate and handed to the
/// server through SESSION.LOAD and RESTORE: refused, or stored and usable without bringing the
/// server down.
#[test]
fn saved_forms_with_extreme_numbers_never_crash_the_server() {
    use session_core::{codec, Session};
    let server = Server::start(&[]);
    let mut c = server.conn();
    let saved = saved_forms(&mut c);
    let dump = ModuleDump::parse(&bytes(&ok(&mut c, &["DUMP", "seed:2"])));
    let base = codec::decode(&saved[2]).expect("the server's saved form decodes");
    let extremes = [
        i64::MIN,
        i64::MIN + 1,
        i64::MAX,
        -1,
        0,
        (1 << 52) - 1,
        1 << 62,
    ];
    let (mut accepted, mut refused) = (0, 0);
    for field in 0..9 {
        for &v in &extremes {
            let mut s: Session = base.clone();
            let a = s.activity.as_mut().expect("activity");
            match field {
                0 => a.first_event_ms = v,
                1 => a.last_event_ms = v,
                2 => a.longest_gap_ms = v,
                3 => a.last_minute = v,
                4 => a.interests.as_of_ms = v,
                5 => a.events = v as u64,
                6 => s.created_ms = v,
                7 => s.last_seen_ms = v,
                // an explicit membership's join time (encoding 6)
                _ => s.groups = vec![(Box::from(&b"g"[..]), v)],
            }
            let bytes_out = codec::encode(&s);
            for (how, result) in [
                (
                    "LOAD",
                    call(&mut c, &[&b"SESSION.LOAD"[..], b"x", &bytes_out]),
                ),
                (
                    "RESTORE",
                    call(
                        &mut c,
                        &[
                            &b"RESTORE"[..],
                            b"x",
                            b"0",
                            &dump.with_saved(&bytes_out),
                            b"REPLACE",
                        ],
                    ),
                ),
            ] {
                match result {
                    Err(e) => {
                        assert!(e.starts_with("ERR "), "{how} field {field} = {v}: {e}");
                        refused += 1;
                    }
                    Ok(_) => {
                        accepted += 1;
                        if exists(&mut c, "x") {
                            let _ = call(
                                &mut c,
                                &["SESSION.TOUCH", "x", "EVENT", "e", "CATEGORIES", "1", "c"],
                            );
                            let _ = call(&mut c, &["SESSION.ENRICH", "x"]);
                            let _ = call(&mut c, &["SESSION.INFO", "x"]);
                            let _ = call(&mut c, &["SESSION.SURFACE", "x", "FROM", "seedcat"]);
                            let _ = call(&mut c, &["DEBUG", "DIGEST-VALUE", "x"]);
                        }
                        ok(&mut c, &["DEL", "x"]);
                    }
                }
                assert!(server_alive(&mut c), "{how} field {field} = {v}");
            }
        }
    }
    println!("extreme saved forms: {accepted} accepted, {refused} refused");
}

/// A saved session whose times are negative is refused by RESTORE and by SESSION.LOAD: every time
/// the module writes lies in 0..=MAX_AT_MS, so a negative deadline can never reach
/// `RedisModule_SetAbsExpire` after a write (which would leave a partial, unreplicated change).
#[test]
fn negative_saved_times_are_refused() {
    use session_core::codec;
    let server = Server::start(&[]);
    let mut c = server.conn();
    let saved = saved_forms(&mut c);
    let dump = ModuleDump::parse(&bytes(&ok(&mut c, &["DUMP", "seed:0"])));
    let mut s = codec::decode(&saved[0]).unwrap();
    s.created_ms = -10_000_000_000;
    s.last_seen_ms = -10_000_000_000;
    let form = codec::encode(&s);
    assert!(
        codec::decode(&form).is_err(),
        "the decoder refuses negative times"
    );
    let restored = call(
        &mut c,
        &[&b"RESTORE"[..], b"k", b"0", &dump.with_saved(&form)],
    );
    assert!(restored.is_err(), "RESTORE accepted negative times");
    assert!(!exists(&mut c, "k"));
    let loaded = call(&mut c, &[&b"SESSION.LOAD"[..], b"l", &form]);
    assert!(loaded.is_err(), "SESSION.LOAD accepted negative times");
    assert!(!exists(&mut c, "l"));
    assert!(server_alive(&mut c));
}
