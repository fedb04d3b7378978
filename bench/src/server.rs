//! A redis-server with the module, on a free loopback port in a temporary directory, stopped
//! when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
    floor: bool,
}

fn module_path() -> PathBuf {
    std::env::var_os("SESSION_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/libsession_store.so")
        })
}

/// The API-floor probe (bench/floor), loaded beside the module when it is built.
fn floor_path() -> Option<PathBuf> {
    let path = std::env::var_os("SESSION_FLOOR_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/release/libsession_bench_floor.so")
        });
    path.exists().then_some(path)
}

impl Server {
    /// True when this server has `FLOOR.TOUCH` (bench/floor) loaded.
    pub fn has_floor(&self) -> bool {
        self.floor
    }

    pub fn start() -> Server {
        Server::start_limited(None)
    }

    /// A server whose address space is capped at `limit_kb` KiB (`ulimit -v`), so that a runaway
    /// allocation fails inside it (Redis aborts) instead of taking the machine's memory.
    pub fn start_limited(limit_kb: Option<u64>) -> Server {
        let module = module_path();
        assert!(
            module.exists(),
            "{} missing: run `cargo build --release -p session-store`",
            module.display()
        );
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("free port");
            let dir =
                std::env::temp_dir().join(format!("session-bench-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let floor = floor_path();
            let mut command = match limit_kb {
                Some(kb) => {
                    let mut c = Command::new("sh");
                    c.arg("-c")
                        .arg(format!("ulimit -v {kb} && exec \"$0\" \"$@\""))
                        .arg(&binary);
                    c
                }
                None => Command::new(&binary),
            };
            command
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .arg("--dir")
                .arg(&dir)
                .arg("--loadmodule")
                .arg(&module);
            if let Some(floor) = &floor {
                command.arg("--loadmodule").arg(floor);
            }
            let child = command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server");
            let mut server = Server {
                child,
                port,
                dir,
                floor: floor.is_some(),
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(mut c) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .and_then(|c| c.get_connection())
                {
                    if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                        return server;
                    }
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    break; // port taken or startup failure: try another port
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = server.child.kill();
        }
        panic!("could not start {binary}");
    }

    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .and_then(|c| c.get_connection())
            .expect("connect")
    }

    /// True while the server answers PING.
    pub fn alive(&self) -> bool {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .and_then(|c| c.get_connection())
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn version(&self) -> String {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query(&mut self.conn())
            .unwrap_or_default();
        info.lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("?")
            .trim()
            .to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
