//! Test harness: real `redis-server` processes with the session module loaded, one per test.
//!
//! Every [`Server`] runs on its own loopback port (never 6379) in its own temporary directory, and
//! is killed (its directory removed) when dropped, also when the test panics; a panicking test
//! prints the tail of the server's log. The module is built once beforehand by
//! `cargo build --release -p session-store`; the harness never builds it.
//!
//! Environment: `REDIS_SERVER` (the server binary, default `redis-server` from `PATH`) and
//! `SESSION_MODULE` (the module, default `release/libsession_store.so` in `CARGO_TARGET_DIR` or the
//! workspace's `target/`).

#![allow(dead_code)] // each test binary uses a different subset of the helpers

pub mod cluster;
pub mod dump;
pub mod saved;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{Connection, Value};
use tempfile::TempDir;

/// How long a server may take to answer PING after it starts (loading included).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to exit after `SHUTDOWN` before it is killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts at starting a server: a freshly picked port may be taken before the server binds it.
const START_ATTEMPTS: usize = 5;
/// Read timeout of every connection: a hung server fails the test instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(120);
const LOG_FILE: &str = "redis.log";

/// The names of a `SESSION.TOUCH` reply, in the order the module sends them.
pub const TOUCH_REPLY_NAMES: [&str; 7] = [
    "new",
    "events",
    "unique",
    "seen_before",
    "idle_ms",
    "ttl_ms",
    "pending",
];

/// The module library under test: `SESSION_MODULE`, else the release build in the target
/// directory (`CARGO_TARGET_DIR`, else the workspace's `target/`).
pub fn module_path() -> PathBuf {
    let path = std::env::var_os("SESSION_MODULE").map_or_else(
        || {
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
                || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
                PathBuf::from,
            );
            target.join("release/libsession_store.so")
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "session module not found at {}: run `cargo build --release -p session-store` first \
         (or point SESSION_MODULE at the library)",
        path.display()
    );
    path
}

fn server_binary() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

/// A port that was free a moment ago (the server may still lose a race for it: `spawn` retries).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// Milliseconds since the Unix epoch, by this machine's clock (the server's clock too).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// A generous deadline for a condition that should hold in milliseconds (an expiry, a replica
/// catching up, a background job): a loaded machine may stall a test for seconds, and a deadline
/// only bounds a hang, it never measures anything.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Waits until `key` is gone (expired, by lazy or active expiry) and checks that it did not go
/// before `deadline_ms`: Redis deletes a key only once its clock has passed the expiry, and this
/// machine's clock is the server's, read after the server's reply.
pub fn wait_gone(conn: &mut Connection, key: &str, deadline_ms: i64) {
    wait_until(PATIENCE, &format!("{key} to expire"), || !exists(conn, key));
    assert!(
        now_ms() > deadline_ms,
        "{key} gone before its deadline {deadline_ms}"
    );
}

/// Polls `done` every 20 ms until it holds; panics after `timeout` naming `what`.
pub fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        sleep(Duration::from_millis(20));
    }
}

/// How to start a server: module arguments, extra server arguments, files placed in its directory.
#[derive(Default)]
pub struct Builder {
    module_args: Vec<String>,
    args: Vec<String>,
    files: Vec<(String, Vec<u8>)>,
}

impl Builder {
    /// Arguments after the module path on the `--loadmodule` line (`max-fields 10`).
    pub fn module_args(mut self, args: &[&str]) -> Self {
        self.module_args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// Extra server arguments (`--appendonly yes`); they come last, so they override the defaults.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// A file written into the server's directory before it starts (a `dump.rdb` to load).
    pub fn file(mut self, name: &str, contents: Vec<u8>) -> Self {
        self.files.push((name.to_owned(), contents));
        self
    }

    pub fn start(self) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("session-it-")
            .tempdir()
            .expect("create a temporary directory");
        for (name, contents) in &self.files {
            std::fs::write(dir.path().join(name), contents).expect("write a seed file");
        }
        let mut server = Server {
            child: None,
            port: 0,
            dir,
            module: module_path(),
            module_args: self.module_args,
            args: self.args,
        };
        server.spawn();
        server
    }
}

/// A running `redis-server` with the module loaded.
pub struct Server {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    module: PathBuf,
    module_args: Vec<String>,
    args: Vec<String>,
}

impl Server {
    /// Starts a server with `extra_args` after the defaults.
    pub fn start(extra_args: &[&str]) -> Server {
        Server::builder().args(extra_args).start()
    }

    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Starts a server that replicates `primary`, and waits until the initial sync is done.
    pub fn replica_of(primary: &Server) -> Server {
        // a full sync starts at once instead of waiting 5 s for more replicas
        config_set(&mut primary.conn(), "repl-diskless-sync-delay", "0");
        let replica = Server::start(&[]);
        let mut c = replica.conn();
        let _: () = redis::cmd("REPLICAOF")
            .arg("127.0.0.1")
            .arg(primary.port)
            .query(&mut c)
            .expect("REPLICAOF");
        wait_until(PATIENCE, "the replica's initial sync", || {
            info_field(&mut c, "replication", "master_link_status").as_deref() == Some("up")
                && info_field(&mut c, "replication", "master_sync_in_progress").as_deref()
                    == Some("0")
        });
        replica
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's working directory (`dump.rdb`, `appendonlydir/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn connect(&self, url: &str) -> Connection {
        let client = redis::Client::open(url).expect("client");
        let conn = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("connect to the test server");
        conn.set_read_timeout(Some(IO_TIMEOUT))
            .expect("set read timeout");
        conn.set_write_timeout(Some(IO_TIMEOUT))
            .expect("set write timeout");
        conn
    }

    /// A RESP2 connection.
    pub fn conn(&self) -> Connection {
        self.connect(&self.url())
    }

    /// A RESP3 connection (the client sends `HELLO 3`).
    pub fn conn_resp3(&self) -> Connection {
        self.connect(&format!("{}?protocol=resp3", self.url()))
    }

    /// Stops the server cleanly (`SHUTDOWN NOSAVE`: the AOF is flushed, no RDB is written) and
    /// starts it again in the same directory, so it loads its RDB or AOF.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(mut c) = redis::Client::open(self.url()).and_then(|cl| cl.get_connection()) {
            // The server closes the connection instead of replying.
            let _: Result<(), _> = redis::cmd("SHUTDOWN").arg("NOSAVE").query(&mut c);
        }
        let start = Instant::now();
        while child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > SHUTDOWN_TIMEOUT {
                let _ = child.kill();
                break;
            }
            sleep(Duration::from_millis(10));
        }
        let _ = child.wait();
    }

    fn spawn(&mut self) {
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let mut child = self.command(port).spawn().unwrap_or_else(|e| {
                panic!(
                    "cannot run {} (set REDIS_SERVER to the redis-server binary): {e}",
                    server_binary()
                )
            });
            if wait_ready(&mut child, port) {
                self.port = port;
                self.child = Some(child);
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "redis-server did not start after {START_ATTEMPTS} attempts; log:\n{}",
            self.log_tail(40)
        );
    }

    fn command(&self, port: u16) -> Command {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join(LOG_FILE))
            .expect("open the server log");
        let log_err = log.try_clone().expect("clone the log handle");
        let mut cmd = Command::new(server_binary());
        cmd.arg("--port")
            .arg(port.to_string())
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--enable-debug-command", "yes"])
            .arg("--loadmodule")
            .arg(&self.module)
            .args(&self.module_args)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        cmd
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(LOG_FILE)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// True while the server process runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }
}

/// Waits until the server on `port` answers PING, or the process exits, or the timeout passes.
/// The server that answers must be `child` (not another test's server that won the port).
fn wait_ready(child: &mut Child, port: u16) -> bool {
    let start = Instant::now();
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
        return false;
    };
    while start.elapsed() < STARTUP_TIMEOUT {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(200)) {
            if redis::cmd("PING").query::<String>(&mut c).as_deref() == Ok("PONG") {
                let pid = info_field(&mut c, "server", "process_id");
                return pid == Some(child.id().to_string());
            }
        }
        sleep(Duration::from_millis(20));
    }
    false
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- redis-server log (port {}) ---\n{}\n---",
                self.port,
                self.log_tail(30)
            );
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Commands and replies

/// A command from its arguments, each binary-safe.
pub fn command<A: AsRef<[u8]>>(args: &[A]) -> redis::Cmd {
    let (name, rest) = args.split_first().expect("a command name");
    let mut cmd = redis::cmd(std::str::from_utf8(name.as_ref()).expect("UTF-8 command name"));
    for a in rest {
        cmd.arg(a.as_ref());
    }
    cmd
}

/// The full text of a server error reply (`ERR syntax error`, `WRONGTYPE ...`); `None` for
/// failures that are not error replies (I/O, protocol).
pub fn error_text(e: &redis::RedisError) -> Option<String> {
    if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
        return None;
    }
    match e.kind() {
        redis::ErrorKind::ParseError | redis::ErrorKind::ClientError => None,
        _ => e.code().map(|code| match e.detail() {
            Some(detail) => format!("{code} {detail}"),
            None => code.to_owned(),
        }),
    }
}

/// Runs a command: its reply, or the text of its error reply. Panics when the server does not
/// answer with a well-formed reply (a crash, a protocol error).
pub fn call<A: AsRef<[u8]>>(conn: &mut Connection, args: &[A]) -> Result<Value, String> {
    match command(args).query::<Value>(conn) {
        Ok(v) => Ok(v),
        Err(e) => Err(error_text(&e).unwrap_or_else(|| panic!("no valid reply: {e}"))),
    }
}

/// Runs a command that must succeed.
pub fn ok<A: AsRef<[u8]>>(conn: &mut Connection, args: &[A]) -> Value {
    call(conn, args).unwrap_or_else(|e| {
        let shown: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a.as_ref()).into_owned())
            .collect();
        panic!("{shown:?} failed: {e}")
    })
}

/// Runs a command that must fail; returns the error text.
pub fn err<A: AsRef<[u8]>>(conn: &mut Connection, args: &[A]) -> String {
    match call(conn, args) {
        Ok(v) => {
            let shown: Vec<String> = args
                .iter()
                .map(|a| String::from_utf8_lossy(a.as_ref()).into_owned())
                .collect();
            panic!("{shown:?} succeeded with {v:?}, expected an error")
        }
        Err(e) => e,
    }
}

/// The name/value pairs of a reply that is a RESP3 map or a RESP2 flat name/value array.
pub fn pairs(v: Value) -> Vec<(Value, Value)> {
    match v {
        Value::Map(pairs) => pairs,
        Value::Array(items) => {
            assert!(items.len() % 2 == 0, "odd-length name/value array");
            let mut it = items.into_iter();
            std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
        }
        other => panic!("expected a map or a name/value array, got {other:?}"),
    }
}

pub fn bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b.clone(),
        Value::SimpleString(s) => s.as_bytes().to_vec(),
        other => panic!("expected a string, got {other:?}"),
    }
}

/// A `SESSION.TOUCH` reply as name -> integer, checking its shape: exactly the seven documented
/// names, in order, each an integer.
pub fn touch_map(v: Value) -> HashMap<String, i64> {
    let pairs = pairs(v);
    let names: Vec<String> = pairs
        .iter()
        .map(|(n, _)| String::from_utf8(bytes(n)).expect("UTF-8 name"))
        .collect();
    assert_eq!(names, TOUCH_REPLY_NAMES, "TOUCH reply names");
    names
        .into_iter()
        .zip(pairs)
        .map(|(name, (_, value))| match value {
            Value::Int(i) => (name, i),
            other => panic!("TOUCH reply {name} is not an integer: {other:?}"),
        })
        .collect()
}

/// `SESSION.TOUCH key args...`, which must create or refresh the session.
pub fn touch<A: AsRef<[u8]>>(conn: &mut Connection, key: &str, args: &[A]) -> HashMap<String, i64> {
    let mut full: Vec<&[u8]> = vec![b"SESSION.TOUCH", key.as_bytes()];
    full.extend(args.iter().map(AsRef::as_ref));
    touch_map(ok(conn, &full))
}

/// `SESSION.GET key` as a field map; `None` for a nil reply.
pub fn get_all(conn: &mut Connection, key: &str) -> Option<BTreeMap<Vec<u8>, Vec<u8>>> {
    match ok(conn, &["SESSION.GET", key]) {
        Value::Nil => None,
        v => Some(
            pairs(v)
                .into_iter()
                .map(|(n, v)| (bytes(&n), bytes(&v)))
                .collect(),
        ),
    }
}

/// `SESSION.INFO key` parsed as JSON.
pub fn session_info(conn: &mut Connection, key: impl AsRef<[u8]>) -> serde_json::Value {
    let doc = bytes(&ok(conn, &[&b"SESSION.INFO"[..], key.as_ref()]));
    serde_json::from_slice(&doc).unwrap_or_else(|e| {
        panic!(
            "SESSION.INFO is not JSON ({e}): {}",
            String::from_utf8_lossy(&doc)
        )
    })
}

/// A field of `INFO section`.
pub fn info_field(conn: &mut Connection, section: &str, name: &str) -> Option<String> {
    let text: String = redis::cmd("INFO").arg(section).query(conn).expect("INFO");
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == name).then(|| v.trim().to_owned())
    })
}

/// `DEBUG DIGEST`: one hash of the whole dataset, expiries included.
pub fn digest(conn: &mut Connection) -> String {
    redis::cmd("DEBUG")
        .arg("DIGEST")
        .query(conn)
        .expect("DEBUG DIGEST")
}

/// `DEBUG DIGEST-VALUE key`: the hash of one value (the module's digest callback).
pub fn digest_value(conn: &mut Connection, key: &str) -> String {
    let v: Vec<String> = redis::cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg(key)
        .query(conn)
        .expect("DEBUG DIGEST-VALUE");
    v.into_iter().next().expect("one digest")
}

pub fn pexpiretime(conn: &mut Connection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME")
        .arg(key)
        .query(conn)
        .expect("PEXPIRETIME")
}

pub fn exists(conn: &mut Connection, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query::<i64>(conn)
        .expect("EXISTS")
        == 1
}

pub fn config_set(conn: &mut Connection, name: &str, value: &str) {
    ok(conn, &["CONFIG", "SET", name, value]);
}

/// Waits until no AOF rewrite is running or scheduled, and checks that the last one succeeded.
pub fn wait_for_aof_rewrite(conn: &mut Connection) {
    wait_until(PATIENCE, "the AOF rewrite", || {
        info_field(conn, "persistence", "aof_rewrite_in_progress").as_deref() == Some("0")
            && info_field(conn, "persistence", "aof_rewrite_scheduled").as_deref() == Some("0")
    });
    assert_eq!(
        info_field(conn, "persistence", "aof_last_bgrewrite_status").as_deref(),
        Some("ok")
    );
}

/// Standard base64 with padding (RFC 4648), as `SESSION.INFO` shows binary bytes.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from_be_bytes([0, b[0], b[1], b[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Every key with its exact absolute expiry (`PEXPIRETIME`), sorted.
pub fn expiries(c: &mut Connection) -> Vec<(Vec<u8>, i64)> {
    let mut out: Vec<(Vec<u8>, i64)> = keys(c)
        .into_iter()
        .map(|k| {
            let t: i64 = command(&[&b"PEXPIRETIME"[..], &k])
                .query(c)
                .expect("PEXPIRETIME");
            (k, t)
        })
        .collect();
    out.sort();
    out
}

/// The set of keys in the current database.
pub fn keys(conn: &mut Connection) -> HashSet<Vec<u8>> {
    redis::cmd("KEYS").arg("*").query(conn).expect("KEYS")
}

// ---------------------------------------------------------------------------------------------
// Workloads

/// A field name from a small pool, so that touches overwrite and delete each other's fields.
fn pool_field(rng: &mut impl rand::Rng) -> Vec<u8> {
    match rng.gen_range(0..12) {
        10 => b"bin\x00\xff".to_vec(),
        11 => vec![],
        n => format!("f{n}").into_bytes(),
    }
}

/// A random value: text, empty, or arbitrary bytes (NUL and 0xff included).
fn random_value(rng: &mut impl rand::Rng) -> Vec<u8> {
    match rng.gen_range(0..4) {
        0 => Vec::new(),
        1 => (0..rng.gen_range(1..64)).map(|_| rng.gen()).collect(),
        _ => format!("value-{}", rng.gen::<u32>()).into_bytes(),
    }
}

/// The arguments (after the key) of a random valid `SESSION.TOUCH`: any mix of IDLE, MAXAGE,
/// USER, SET, EVENT (with CATEGORIES) and DEL. Lifetimes are long enough that no session expires
/// during a test.
pub fn random_touch_args(rng: &mut impl rand::Rng) -> Vec<Vec<u8>> {
    let mut args: Vec<Vec<u8>> = Vec::new();
    let mut push = |a: &[u8]| args.push(a.to_vec());
    if rng.gen_bool(0.3) {
        push(b"IDLE");
        push(rng.gen_range(600..7200).to_string().as_bytes());
    }
    if rng.gen_bool(0.3) {
        push(b"MAXAGE");
        push(rng.gen_range(7200..172_800).to_string().as_bytes());
    }
    if rng.gen_bool(0.3) {
        push(b"USER");
        push(format!("user-{}", rng.gen_range(0..5)).as_bytes());
    }
    if rng.gen_bool(0.7) {
        let n = rng.gen_range(1..4);
        push(b"SET");
        push(n.to_string().as_bytes());
        for _ in 0..n {
            push(&pool_field(rng));
            push(&random_value(rng));
        }
    }
    if rng.gen_bool(0.4) {
        push(b"EVENT");
        push(format!("item-{}", rng.gen_range(0..50)).as_bytes());
        if rng.gen_bool(0.5) {
            let n = rng.gen_range(1..4);
            push(b"CATEGORIES");
            push(n.to_string().as_bytes());
            for _ in 0..n {
                push(format!("category-{}", rng.gen_range(0..10)).as_bytes());
            }
        }
    }
    if rng.gen_bool(0.3) {
        let n = rng.gen_range(1..3);
        push(b"DEL");
        push(n.to_string().as_bytes());
        for _ in 0..n {
            push(&pool_field(rng));
        }
    }
    args
}

/// Runs `touches` random valid touches over `keys` sessions named `<prefix>:<n>` (pipelined) and
/// returns the key names.
pub fn random_sessions(
    conn: &mut Connection,
    rng: &mut impl rand::Rng,
    prefix: &str,
    keys: usize,
    touches: usize,
) -> Vec<String> {
    let names: Vec<String> = (0..keys).map(|i| format!("{prefix}:{i}")).collect();
    let mut remaining = touches;
    while remaining > 0 {
        let batch = remaining.min(200);
        let mut pipe = redis::pipe();
        for i in 0..batch {
            // Every key at least once, then random ones.
            let key = match touches - remaining + i {
                n if n < keys => &names[n],
                _ => &names[rng.gen_range(0..keys)],
            };
            let mut cmd = redis::cmd("SESSION.TOUCH");
            cmd.arg(key);
            for a in random_touch_args(rng) {
                cmd.arg(a);
            }
            pipe.add_command(cmd);
        }
        let replies: Vec<Value> = pipe.query(conn).expect("random touches");
        for reply in replies {
            touch_map(reply);
        }
        remaining -= batch;
    }
    names
}

/// A deterministic RNG for a test: seeded with `seed`, or with `SESSION_TEST_SEED` when set (to
/// explore other seeds or replay a failure; the seed is printed).
pub fn seeded_rng(seed: u64) -> rand::rngs::StdRng {
    use rand::SeedableRng;
    let seed = std::env::var("SESSION_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(seed);
    println!("rng seed {seed}");
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// How `SESSION.INFO` shows bytes: the string when UTF-8, else `{"base64": "..."}`.
pub fn bytes_json(b: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(b) {
        Ok(s) => serde_json::Value::String(s.to_owned()),
        Err(_) => serde_json::json!({ "base64": base64(b) }),
    }
}
