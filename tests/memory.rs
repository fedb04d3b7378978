//! `MEMORY USAGE` of sessions against what the server really allocates for them.

mod common;

use common::*;
use rand::distributions::Alphanumeric;
use rand::Rng;
use redis::Connection;

const SESSIONS: usize = 2_000;
const FIELDS: usize = 10;
const VALUE_SIZE: usize = 32;

fn used_memory(c: &mut Connection) -> i64 {
    info_field(c, "memory", "used_memory")
        .and_then(|v| v.parse().ok())
        .expect("used_memory")
}

fn connected_clients(c: &mut Connection) -> String {
    info_field(c, "clients", "connected_clients").expect("connected_clients")
}

/// Creates the sessions on a connection of its own, closed afterwards, so that no client buffer
/// of the writer is counted in the measurement.
fn create_sessions(server: &Server, observer: &mut Connection) {
    let mut rng = seeded_rng(7);
    {
        let mut writer = server.conn();
        for batch in 0..SESSIONS / 100 {
            let mut pipe = redis::pipe();
            for i in batch * 100..(batch + 1) * 100 {
                let cmd = pipe
                    .cmd("SESSION.TOUCH")
                    .arg(format!("session:{i:05}"))
                    .arg("SET")
                    .arg(FIELDS);
                for f in 0..FIELDS {
                    let value: String = (&mut rng)
                        .sample_iter(Alphanumeric)
                        .take(VALUE_SIZE)
                        .map(char::from)
                        .collect();
                    cmd.arg(format!("field-{f}")).arg(value);
                }
                cmd.ignore();
            }
            let () = pipe.query(&mut writer).expect("create sessions");
        }
    }
    wait_until(PATIENCE, "the writer to disconnect", || {
        connected_clients(observer) == "1"
    });
}

/// `MEMORY USAGE` of each session, and the `used_memory` growth they caused.
struct Measurement {
    usages: Vec<i64>,
    real: i64,
}

impl Measurement {
    fn take() -> Measurement {
        let server = Server::start(&[]);
        let mut c = server.conn();
        // warm up whatever the first session allocates once (type tables, dict of expires)
        touch(&mut c, "warmup", &["SET", "1", "a", "b"]);
        ok(&mut c, &["DEL", "warmup"]);

        let before = used_memory(&mut c);
        create_sessions(&server, &mut c);
        let after = used_memory(&mut c);

        let mut pipe = redis::pipe();
        for i in 0..SESSIONS {
            pipe.cmd("MEMORY")
                .arg("USAGE")
                .arg(format!("session:{i:05}"))
                .arg("SAMPLES")
                .arg(0);
        }
        let m = Measurement {
            usages: pipe.query(&mut c).expect("MEMORY USAGE"),
            real: after - before,
        };
        println!(
            "MEMORY USAGE sum {} B, used_memory delta {} B, ratio {:.3}; one session: {} B \
             (reported) vs {} B (real average)",
            m.reported(),
            m.real,
            m.ratio(),
            m.usages[0],
            m.real / SESSIONS as i64
        );
        m
    }

    fn reported(&self) -> i64 {
        self.usages.iter().sum()
    }

    fn ratio(&self) -> f64 {
        self.reported() as f64 / self.real as f64
    }
}

#[test]
fn memory_usage_matches_the_real_heap() {
    let m = Measurement::take();
    let ratio = m.ratio();
    assert!(
        (0.75..=1.25).contains(&ratio),
        "MEMORY USAGE sum is {ratio:.3} x the real heap"
    );
    let payload = (FIELDS * ("field-0".len() + VALUE_SIZE)) as i64;
    for &usage in &m.usages {
        assert!(
            (payload..=2_048).contains(&usage),
            "MEMORY USAGE {usage} B for {payload} B of fields"
        );
    }
}

/// The product contract's target (SPEC section 5): within 10% of the real heap.
#[test]
fn memory_usage_is_within_ten_percent_of_the_real_heap() {
    let ratio = Measurement::take().ratio();
    assert!(
        (0.9..=1.1).contains(&ratio),
        "MEMORY USAGE sum is {ratio:.3} x the real heap"
    );
}
