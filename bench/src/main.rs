//! `make bench`: every performance target of the spec (section 6), measured side by side with its
//! baseline in one run against a server this program starts itself. Prints a table, writes
//! `docs/BENCHMARKS.md` and the scaling chart `docs/bench-scaling.png`.
//!
//! `--quick` runs everything at toy sizes (used by `make test` so the benchmark never rots; its
//! figures mean nothing). Timing never fails anything: the benchmark reports, it does not judge.

mod blast;
mod chart;
mod quality;
mod server;
mod worst;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::{Cmd, Connection};

use server::Server;

/// Sizes of one run.
struct Sizes {
    sessions: u64,
    ops: u64,
    latency_ops: usize,
    touch_scaling: Vec<u64>,
    surface_scaling: Vec<u64>,
    big_group: u64,
    /// Only the TOUCH rows (module overhead and page view): a quick loop for optimization work.
    touch_only: bool,
}

impl Sizes {
    fn full() -> Sizes {
        Sizes {
            sessions: 10_000,
            ops: 200_000,
            latency_ops: 20_000,
            touch_scaling: vec![10_000, 100_000, 1_000_000],
            surface_scaling: vec![1_000, 10_000, 100_000],
            big_group: 1_000_000,
            touch_only: false,
        }
    }

    fn quick() -> Sizes {
        Sizes {
            sessions: 200,
            ops: 2_000,
            latency_ops: 200,
            touch_scaling: vec![100, 1_000],
            surface_scaling: vec![100, 1_000],
            big_group: 1_000,
            touch_only: false,
        }
    }
}

/// One line of the results table.
struct Row {
    what: String,
    module: f64,
    baseline: f64,
    baseline_name: String,
    unit: &'static str,
    /// The target as text, and whether the measured figure meets it.
    target: String,
    met: bool,
}

const THREADS: usize = 4;
const DEPTH: usize = 64;
const CATEGORIES: [&str; 20] = [
    "news", "sports", "hockey", "golf", "tech", "food", "travel", "music", "film", "books",
    "science", "health", "cars", "games", "fashion", "art", "garden", "pets", "money", "jobs",
];

fn cmd(args: &[&str]) -> Cmd {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c
}

fn run(c: &mut Connection, args: &[&str]) -> redis::Value {
    cmd(args)
        .query(c)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Sends `cmds` in pipelines of `depth`.
fn pipelined(c: &mut Connection, cmds: impl Iterator<Item = Cmd>, depth: usize) {
    let mut pipe = redis::pipe();
    let mut n = 0;
    for command in cmds {
        pipe.add_command(command);
        n += 1;
        if n == depth {
            let _: redis::Value = pipe.query(c).expect("pipeline");
            pipe = redis::pipe();
            n = 0;
        }
    }
    if n > 0 {
        let _: redis::Value = pipe.query(c).expect("pipeline");
    }
}

/// `INFO commandstats` as name -> (calls, usec).
fn commandstats(c: &mut Connection) -> HashMap<String, (f64, f64)> {
    let info: String = cmd(&["INFO", "commandstats"]).query(c).expect("INFO");
    let mut out = HashMap::new();
    for line in info.lines() {
        let Some(rest) = line.strip_prefix("cmdstat_") else {
            continue;
        };
        let Some((name, fields)) = rest.split_once(':') else {
            continue;
        };
        let mut calls = 0.0;
        let mut usec = 0.0;
        for kv in fields.split(',') {
            match kv.split_once('=') {
                Some(("calls", v)) => calls = v.parse().unwrap_or(0.0),
                Some(("usec", v)) => usec = v.parse().unwrap_or(0.0),
                _ => {}
            }
        }
        out.insert(name.to_string(), (calls, usec));
    }
    out
}

/// Rounds of each alternating throughput measurement (module and baselines).
const ROUNDS: u64 = 5;

/// Adds the calls and microseconds between two `commandstats` snapshots to `into`.
fn add_delta(
    into: &mut HashMap<String, (f64, f64)>,
    before: &HashMap<String, (f64, f64)>,
    after: &HashMap<String, (f64, f64)>,
) {
    for (name, &(calls, usec)) in after {
        let (c0, u0) = before.get(name).copied().unwrap_or((0.0, 0.0));
        let e = into.entry(name.clone()).or_insert((0.0, 0.0));
        e.0 += calls - c0;
        e.1 += usec - u0;
    }
}

/// Microseconds per call of `name` in accumulated stats (0 when it was not called).
fn per_call(stats: &HashMap<String, (f64, f64)>, name: &str) -> f64 {
    stats.get(name).map_or(
        0.0,
        |&(calls, usec)| if calls > 0.0 { usec / calls } else { 0.0 },
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn reset_stats(c: &mut Connection) {
    run(c, &["CONFIG", "RESETSTAT"]);
}

/// Server microseconds per call of `name` since the last reset.
fn usec_per_call(c: &mut Connection, name: &str) -> f64 {
    match commandstats(c).get(name) {
        Some(&(calls, usec)) if calls > 0.0 => usec / calls,
        _ => f64::NAN,
    }
}

/// Operations per second with `THREADS` clients, each pipelining `DEPTH` operations at a time
/// (an operation is the group of commands `make` returns: a MULTI block is one operation).
fn throughput(server: &Server, ops: u64, make: &(dyn Fn(&mut StdRng) -> Vec<Cmd> + Sync)) -> f64 {
    blast::throughput(server.port(), THREADS, DEPTH, ops, make)
}

/// p50 and p99 round-trip latency in microseconds, one client, no pipelining.
fn latency(server: &Server, n: usize, make: &dyn Fn(&mut StdRng) -> Vec<Cmd>) -> (f64, f64) {
    let mut c = server.conn();
    let mut rng = StdRng::seed_from_u64(99);
    let mut samples: Vec<f64> = Vec::with_capacity(n);
    for _ in 0..n {
        let cmds = make(&mut rng);
        let start = Instant::now();
        if cmds.len() == 1 {
            let _: redis::Value = cmds[0].query(&mut c).expect("command");
        } else {
            let mut pipe = redis::pipe();
            for command in cmds {
                pipe.add_command(command);
            }
            let _: redis::Value = pipe.query(&mut c).expect("pipeline");
        }
        samples.push(start.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99))
}

fn item(rng: &mut StdRng, n: u64) -> String {
    format!("item:{}", rng.gen_range(0..n))
}

fn two_categories(rng: &mut StdRng) -> (&'static str, &'static str) {
    (
        CATEGORIES[rng.gen_range(0..20)],
        CATEGORIES[rng.gen_range(0..20)],
    )
}

/// The spec's reference session: 10 fields of 32 bytes, 100 events over 100 items, 20 categories.
fn reference_session(key: &str) -> Vec<Cmd> {
    let value = "v".repeat(32);
    let mut cmds = Vec::new();
    let mut set = cmd(&["SESSION.TOUCH", key, "SET", "10"]);
    for f in 0..10 {
        set.arg(format!("field_{f:02}")).arg(&value);
    }
    cmds.push(set);
    for i in 0..100 {
        let (a, b) = (CATEGORIES[i % 20], CATEGORIES[(i * 7 + 3) % 20]);
        cmds.push(cmd(&[
            "SESSION.TOUCH",
            key,
            "EVENT",
            &format!("item:{i}"),
            "CATEGORIES",
            "2",
            a,
            b,
        ]));
    }
    cmds
}

/// The same data in stock structures, as the published design keeps it.
fn reference_stock(prefix: &str) -> Vec<Cmd> {
    let value = "v".repeat(32);
    let mut cmds = Vec::new();
    let mut hset = cmd(&["HSET", &format!("{prefix}:data")]);
    for f in 0..10 {
        hset.arg(format!("field_{f:02}")).arg(&value);
    }
    cmds.push(hset);
    for i in 0..100 {
        let it = format!("item:{i}");
        cmds.push(cmd(&["SADD", &format!("{prefix}:seen"), &it]));
        cmds.push(cmd(&["PFADD", &format!("{prefix}:items"), &it]));
        let minute = (i * 7 % 1440).to_string();
        cmds.push(cmd(&["SETBIT", &format!("{prefix}:minutes"), &minute, "1"]));
        for c in [CATEGORIES[i % 20], CATEGORIES[(i * 7 + 3) % 20]] {
            cmds.push(cmd(&["ZINCRBY", &format!("{prefix}:interests"), "1", c]));
        }
    }
    cmds
}

fn memory_usage(c: &mut Connection, key: &str) -> f64 {
    let v: Option<i64> = cmd(&["MEMORY", "USAGE", key])
        .query(c)
        .expect("MEMORY USAGE");
    v.unwrap_or(0) as f64
}

/// The published page-view pattern for session `k`: the commands inside one MULTI block.
fn page_view_commands(k: u64, it: &str, minute: i64) -> Vec<Cmd> {
    let p = format!("pv:{k}");
    let bits = format!("{p}:minutes");
    let mut get = cmd(&["BITFIELD", &bits]);
    for back in 1..=5 {
        get.arg("GET").arg("u1").arg(format!("#{}", minute - back));
    }
    vec![
        cmd(&["PFADD", &format!("{p}:items"), it]),
        cmd(&["INCR", &format!("{p}:events")]),
        cmd(&["BITFIELD", &bits, "SET", "u1", &format!("#{minute}"), "1"]),
        get,
        cmd(&["PFCOUNT", &format!("{p}:items")]),
        cmd(&["SADD", &format!("{p}:seen"), it]),
        cmd(&["HSET", &format!("{p}:data"), "last", it]),
        cmd(&["EXPIRE", &format!("{p}:data"), "1800"]),
    ]
}

const PAGE_VIEW_LUA: &str = r#"
redis.call('PFADD', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[2])
redis.call('BITFIELD', KEYS[3], 'SET', 'u1', '#' .. ARGV[2], 1)
local m = tonumber(ARGV[2])
redis.call('BITFIELD', KEYS[3], 'GET', 'u1', '#' .. (m-1), 'GET', 'u1', '#' .. (m-2), 'GET', 'u1', '#' .. (m-3), 'GET', 'u1', '#' .. (m-4), 'GET', 'u1', '#' .. (m-5))
redis.call('PFCOUNT', KEYS[1])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[5], 'last', ARGV[1])
redis.call('EXPIRE', KEYS[5], 1800)
return 1
"#;

fn minute_now() -> i64 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        / 60
        % 1440) as i64
        + 10
}

fn touch_cmd(rng: &mut StdRng, sessions: u64) -> Cmd {
    touch_like(rng, sessions, "SESSION.TOUCH", "s")
}

/// TOUCH's arguments under another command name and key prefix (the API floor).
fn touch_like(rng: &mut StdRng, sessions: u64, name: &str, prefix: &str) -> Cmd {
    let k = rng.gen_range(0..sessions);
    let (a, b) = two_categories(rng);
    cmd(&[
        name,
        &format!("{prefix}:{k}"),
        "EVENT",
        &item(rng, 100),
        "CATEGORIES",
        "2",
        a,
        b,
    ])
}

/// Sessions `s:0..n` with a few fields and events (pipelined).
fn load_sessions(c: &mut Connection, from: u64, to: u64) {
    let cmds = (from..to).flat_map(|k| {
        let key = format!("s:{k}");
        let mut rng = StdRng::seed_from_u64(k);
        let mut v = vec![cmd(&[
            "SESSION.TOUCH",
            &key,
            "SET",
            "2",
            "user",
            &k.to_string(),
            "theme",
            "dark",
        ])];
        for _ in 0..3 {
            let (a, b) = two_categories(&mut rng);
            v.push(cmd(&[
                "SESSION.TOUCH",
                &key,
                "EVENT",
                &item(&mut rng, 100),
                "CATEGORIES",
                "2",
                a,
                b,
            ]));
        }
        v
    });
    pipelined(c, cmds, 1000);
}

fn load_catalog(c: &mut Connection, name: &str, n: u64) {
    let mut rng = StdRng::seed_from_u64(7);
    let cmds = (0..n).map(|i| {
        let score = format!("{:.4}", rng.gen::<f64>());
        let cat = CATEGORIES[rng.gen_range(0..20)];
        cmd(&[
            "SESSION.CATALOG",
            "ADD",
            name,
            &format!("item:{i}"),
            "SCORE",
            &score,
            "CATEGORIES",
            "1",
            cat,
        ])
    });
    pipelined(c, cmds, 1000);
}

/// Viewers with a planted favourite category: 100 events each.
fn load_viewers(c: &mut Connection, n: u64, catalog_size: u64) {
    let cmds = (0..n).flat_map(|u| {
        let key = format!("viewer:{u}");
        let mut rng = StdRng::seed_from_u64(1000 + u);
        let favourite = CATEGORIES[(u % 20) as usize];
        (0..100).map(move |_| {
            let cat = if rng.gen_bool(0.6) {
                favourite
            } else {
                CATEGORIES[rng.gen_range(0..20)]
            };
            let it = format!("item:{}", rng.gen_range(0..catalog_size));
            cmd(&["SESSION.TOUCH", &key, "EVENT", &it, "CATEGORIES", "1", cat])
        })
    });
    pipelined(c, cmds, 1000);
}

fn surface_cmd(rng: &mut StdRng, viewers: u64, catalog: &str) -> Cmd {
    let u = rng.gen_range(0..viewers);
    cmd(&[
        "SESSION.SURFACE",
        &format!("viewer:{u}"),
        "FROM",
        catalog,
        "COUNT",
        "10",
    ])
}

struct Measured {
    rows: Vec<Row>,
    touch_curve: Vec<(u64, f64)>,
    surface_curve: Vec<(u64, f64)>,
    notes: Vec<String>,
}

fn measure(server: &Server, sizes: &Sizes) -> Measured {
    let mut c = server.conn();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let n = sizes.sessions;

    // --- dispatch floor and module overhead -------------------------------------------------
    eprintln!("loading {n} sessions ...");
    load_sessions(&mut c, 0, n);
    // The machine is shared: each module figure and its baselines are measured in alternating
    // rounds, so that a burst of outside load hits all of them, and each reports its median
    // round (server time: its calls over all rounds).
    let minute = minute_now();
    let hset_op = |rng: &mut StdRng| {
        let k = rng.gen_range(0..n);
        vec![cmd(&["HSET", &format!("h:{k}"), &item(rng, 100), "v"])]
    };
    let touch_op = |rng: &mut StdRng| vec![touch_cmd(rng, n)];
    let multi_op = |rng: &mut StdRng| {
        let k = rng.gen_range(0..n);
        let it = item(rng, 100);
        let mut v = vec![cmd(&["MULTI"])];
        v.extend(page_view_commands(k, &it, minute));
        v.push(cmd(&["EXEC"]));
        v
    };
    // The API floor (bench/floor): TOUCH's arguments and reply, no session work.
    let floor_op = |rng: &mut StdRng| vec![touch_like(rng, n, "FLOOR.TOUCH", "f")];
    let with_floor = server.has_floor();
    // the transaction's and the floor's keys exist before the first round, as the sessions do
    throughput(server, sizes.ops / 8, &multi_op);
    if with_floor {
        throughput(server, sizes.ops / 4, &floor_op);
    }
    let ping = throughput(server, sizes.ops, &|_| vec![cmd(&["PING"])]);
    let (mut hsets, mut touches, mut multis, mut floors) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut hset_stats, mut touch_stats, mut multi_stats, mut floor_stats) = (
        HashMap::new(),
        HashMap::new(),
        HashMap::new(),
        HashMap::new(),
    );
    let per_round = (sizes.ops / ROUNDS).max(1);
    for _ in 0..ROUNDS {
        let s0 = commandstats(&mut c);
        hsets.push(throughput(server, per_round, &hset_op));
        let s1 = commandstats(&mut c);
        touches.push(throughput(server, per_round, &touch_op));
        let s2 = commandstats(&mut c);
        multis.push(throughput(server, (per_round / 4).max(1), &multi_op));
        let s3 = commandstats(&mut c);
        add_delta(&mut hset_stats, &s0, &s1);
        add_delta(&mut touch_stats, &s1, &s2);
        add_delta(&mut multi_stats, &s2, &s3);
        if with_floor {
            floors.push(throughput(server, per_round, &floor_op));
            let s4 = commandstats(&mut c);
            add_delta(&mut floor_stats, &s3, &s4);
        }
    }
    let (hset, touch, multi) = (median(hsets), median(touches), median(multis));
    let hset_us = per_call(&hset_stats, "hset");
    let touch_us = per_call(&touch_stats, "session.touch");
    let (touch_p50, touch_p99) = latency(server, sizes.latency_ops, &|rng| vec![touch_cmd(rng, n)]);
    let (hset_p50, hset_p99) = latency(server, sizes.latency_ops, &|rng| {
        vec![cmd(&[
            "HSET",
            &format!("h:{}", rng.gen_range(0..n)),
            &item(rng, 100),
            "v",
        ])]
    });
    rows.push(Row {
        what: "TOUCH ... EVENT ... CATEGORIES 2 throughput (pipelined)".into(),
        module: touch,
        baseline: hset,
        baseline_name: "HSET".into(),
        unit: "ops/s",
        target: ">= 0.6x HSET".into(),
        met: touch >= 0.6 * hset,
    });
    rows.push(Row {
        what: "TOUCH ... EVENT ... CATEGORIES 2 server time".into(),
        module: touch_us,
        baseline: hset_us,
        baseline_name: "HSET".into(),
        unit: "us/call",
        target: "<= 3 us".into(),
        met: touch_us <= 3.0,
    });
    rows.push(Row {
        what: "TOUCH latency p50 / p99 (one client)".into(),
        module: touch_p50,
        baseline: hset_p50,
        baseline_name: "HSET p50".into(),
        unit: "us",
        target: format!("(p99 {touch_p99:.0} us vs HSET p99 {hset_p99:.0} us)"),
        met: true,
    });
    if with_floor {
        let floor = median(floors);
        let floor_us = per_call(&floor_stats, "floor.touch");
        rows.push(Row {
            what: "API floor: FLOOR.TOUCH, TOUCH's arguments and reply with no session work (bench/floor), throughput".into(),
            module: floor,
            baseline: hset,
            baseline_name: "HSET".into(),
            unit: "ops/s",
            target: "(reference: what the module API alone costs for TOUCH's arguments and reply)".into(),
            met: true,
        });
        rows.push(Row {
            what: "TOUCH throughput against the API floor".into(),
            module: touch,
            baseline: floor,
            baseline_name: "FLOOR.TOUCH".into(),
            unit: "ops/s",
            target: "(reference)".into(),
            met: true,
        });
        notes.push(format!(
            "API floor (bench/floor, `FLOOR.TOUCH`): opens the key for writing, changes its value, sets its absolute expiry, notifies, marks the call for replication and writes TOUCH's 7-entry reply, with TOUCH's 8 arguments; {floor:.0} ops/s, {floor_us:.2} us/call server time ({:.2}x HSET's throughput). TOUCH: {touch:.0} ops/s, {touch_us:.2} us/call.",
            floor / hset
        ));
    } else {
        notes.push("API floor not measured: build it with `cargo build --release -p session-bench-floor` (make bench does).".into());
    }
    notes.push(format!(
        "PING (dispatch floor): {ping:.0} ops/s pipelined with the same clients."
    ));

    // --- the published page-view pattern ----------------------------------------------------
    eprintln!("page-view baselines ...");
    let per = |name: &str| per_call(&multi_stats, name);
    let exec_us = per("exec");
    let inner_us: f64 = ["pfadd", "incr", "pfcount", "sadd", "hset", "expire"]
        .iter()
        .map(|n| per(n))
        .sum::<f64>()
        + 2.0 * per("bitfield");
    // Redis 7 counts EXEC's own time with or without the queued commands depending on the
    // version; take whichever accounting covers the whole transaction.
    let multi_us = if exec_us >= inner_us {
        exec_us
    } else {
        exec_us + inner_us
    };
    notes.push(format!(
        "MULTI transaction server time: EXEC {exec_us:.2} us/call, inner commands {inner_us:.2} us; used {multi_us:.2} us."
    ));
    let sha: String = cmd(&["SCRIPT", "LOAD", PAGE_VIEW_LUA])
        .query(&mut c)
        .expect("SCRIPT LOAD");
    reset_stats(&mut c);
    let lua = throughput(server, sizes.ops / 4, &|rng| {
        let k = rng.gen_range(0..n);
        let p = format!("pv:{k}");
        let it = item(rng, 100);
        vec![cmd(&[
            "EVALSHA",
            &sha,
            "5",
            &format!("{p}:items"),
            &format!("{p}:events"),
            &format!("{p}:minutes"),
            &format!("{p}:seen"),
            &format!("{p}:data"),
            &it,
            &minute.to_string(),
        ])]
    });
    let lua_us = usec_per_call(&mut c, "evalsha");
    rows.push(Row {
        what: "page view: TOUCH EVENT vs MULTI transaction, throughput".into(),
        module: touch,
        baseline: multi,
        baseline_name: "MULTI (8 commands)".into(),
        unit: "views/s",
        target: ">= 3x".into(),
        met: touch >= 3.0 * multi,
    });
    rows.push(Row {
        what: "page view: TOUCH EVENT vs MULTI transaction, server time".into(),
        module: touch_us,
        baseline: multi_us,
        baseline_name: "MULTI (8 commands)".into(),
        unit: "us/view",
        target: "<= 0.5x".into(),
        met: touch_us <= 0.5 * multi_us,
    });
    rows.push(Row {
        what: "page view: TOUCH EVENT vs Lua script".into(),
        module: touch_us,
        baseline: lua_us,
        baseline_name: format!("EVALSHA ({lua:.0} views/s)"),
        unit: "us/view",
        target: "(reference)".into(),
        met: true,
    });

    if sizes.touch_only {
        rows.extend(with_replica(server, sizes, &mut notes));
        return Measured {
            rows,
            touch_curve: Vec::new(),
            surface_curve: Vec::new(),
            notes,
        };
    }

    // --- memory -------------------------------------------------------------------------------
    pipelined(&mut c, reference_session("ref:session").into_iter(), 100);
    pipelined(&mut c, reference_stock("ref:stock").into_iter(), 100);
    let module_mem = memory_usage(&mut c, "ref:session");
    let stock_mem: f64 = ["data", "seen", "items", "minutes", "interests"]
        .iter()
        .map(|s| memory_usage(&mut c, &format!("ref:stock:{s}")))
        .sum();
    rows.push(Row {
        what: "reference session memory (MEMORY USAGE)".into(),
        module: module_mem,
        baseline: stock_mem,
        baseline_name: "hash+set+HLL+zset+bitmap".into(),
        unit: "bytes",
        target: "<= 2048 and <= 0.5x".into(),
        met: module_mem <= 2048.0 && module_mem <= 0.5 * stock_mem,
    });

    // --- scaling: TOUCH as sessions grow ----------------------------------------------------
    let mut touch_curve = Vec::new();
    let mut loaded = n;
    for &size in &sizes.touch_scaling {
        if size > loaded {
            eprintln!("loading sessions up to {size} ...");
            load_sessions(&mut c, loaded, size);
            loaded = size;
        }
        reset_stats(&mut c);
        throughput(server, sizes.ops, &|rng| vec![touch_cmd(rng, size)]);
        touch_curve.push((size, usec_per_call(&mut c, "session.touch")));
    }
    run(&mut c, &["FLUSHALL"]);

    // --- SURFACE, and its scaling with the catalog --------------------------------------------
    let viewers = 200;
    let mut surface_curve = Vec::new();
    for &size in &sizes.surface_scaling {
        eprintln!("catalog of {size} items ...");
        let name = format!("cat{size}");
        load_catalog(&mut c, &name, size);
        load_viewers(&mut c, viewers, size);
        reset_stats(&mut c);
        let calls = (sizes.ops / 10).max(100);
        throughput(server, calls, &|rng| vec![surface_cmd(rng, viewers, &name)]);
        surface_curve.push((size, usec_per_call(&mut c, "session.surface")));
        run(&mut c, &["SESSION.CATALOG", "DROP", &name]);
        run(&mut c, &["FLUSHALL"]);
    }
    for (size, target) in [(10_000u64, 50.0), (100_000, 200.0)] {
        if let Some(&(_, us)) = surface_curve.iter().find(|(s, _)| *s == size) {
            rows.push(Row {
                what: format!("SURFACE FROM {size}-item catalog, COUNT 10, server time"),
                module: us,
                baseline: f64::NAN,
                baseline_name: "-".into(),
                unit: "us/call",
                target: format!("<= {target} us"),
                met: us <= target,
            });
        }
    }
    // client-side baseline on the largest catalog
    let size = *sizes.surface_scaling.last().unwrap_or(&1000);
    let (module_rt, client_rt, client_us) =
        surface_vs_client(server, &mut c, size, sizes.latency_ops.min(2000));
    rows.push(Row {
        what: format!("SURFACE vs client-side ranking ({size} items), round trip"),
        module: module_rt,
        baseline: client_rt,
        baseline_name: format!("ZREVRANGE+SMISMEMBER+HMGET+HGETALL, {client_us:.1} us server"),
        unit: "us/call",
        target: "(reference)".into(),
        met: true,
    });

    // --- group notifications ------------------------------------------------------------------
    eprintln!("groups of 10 and {} members ...", sizes.big_group);
    let small = 10u64;
    let join = |from: u64, to: u64, group: &'static str| {
        (from..to).flat_map(move |k| {
            let key = format!("m:{k}");
            [
                cmd(&["SESSION.TOUCH", &key]),
                cmd(&["SESSION.ENRICH", &key, "JOIN", "1", group]),
            ]
        })
    };
    pipelined(&mut c, join(0, small, "small"), 1000);
    pipelined(&mut c, join(small, small + sizes.big_group, "big"), 1000);
    let mut notify_us = Vec::new();
    for group in ["small", "big"] {
        reset_stats(&mut c);
        let cmds =
            (0..2000).map(|i| cmd(&["SESSION.NOTIFYGROUP", group, &format!("n{i}"), "payload"]));
        pipelined(&mut c, cmds, 100);
        notify_us.push(usec_per_call(&mut c, "session.notifygroup"));
    }
    rows.push(Row {
        what: format!("NOTIFYGROUP, group of 10 vs {} members", sizes.big_group),
        module: notify_us[1],
        baseline: notify_us[0],
        baseline_name: "same command, 10 members".into(),
        unit: "us/call",
        target: "the same".into(),
        met: notify_us[1] <= 2.0 * notify_us[0] + 1.0,
    });
    // fan-out on write: one LPUSH per member
    let fan = |members: u64, c: &mut Connection| {
        let start = Instant::now();
        let cmds = (0..members).map(|k| cmd(&["LPUSH", &format!("inbox:{k}"), "payload"]));
        pipelined(c, cmds, 1000);
        start.elapsed().as_secs_f64() * 1e6
    };
    reset_stats(&mut c);
    let fan_small = fan(small, &mut c);
    let fan_big = fan(sizes.big_group, &mut c);
    let lpush_us = usec_per_call(&mut c, "lpush");
    rows.push(Row {
        what: format!(
            "one notification to {} members: NOTIFYGROUP vs fan-out",
            sizes.big_group
        ),
        module: notify_us[1],
        baseline: lpush_us * sizes.big_group as f64,
        baseline_name: format!(
            "LPUSH per member ({:.0} ms wall; 10 members {fan_small:.0} us)",
            fan_big / 1000.0
        ),
        unit: "us server",
        target: "(reference)".into(),
        met: true,
    });
    // INBOX: sessions with pending notifications
    reset_stats(&mut c);
    let inbox_calls = sizes.sessions.min(10_000);
    let cmds = (small..small + inbox_calls.min(sizes.big_group))
        .map(|k| cmd(&["SESSION.INBOX", &format!("m:{k}"), "COUNT", "10"]));
    pipelined(&mut c, cmds, 100);
    let inbox_us = usec_per_call(&mut c, "session.inbox");
    rows.push(Row {
        what: "INBOX (10 pending notifications delivered)".into(),
        module: inbox_us,
        baseline: f64::NAN,
        baseline_name: "-".into(),
        unit: "us/call",
        target: "<= 10 us".into(),
        met: inbox_us <= 10.0,
    });
    // Last: once a replica has attached, the server keeps a backlog and propagates from then on.
    rows.extend(with_replica(server, sizes, &mut notes));

    Measured {
        rows,
        touch_curve,
        surface_curve,
        notes,
    }
}

/// Round-trip time of SURFACE against ranking in the client from stock structures.
/// TOUCH against HSET again with a replica attached, so that both propagate every write (a
/// server with no replica, backlog or AOF lets the module skip building its replicated effect,
/// see src/propagation.rs; production primaries usually have a replica).
fn with_replica(server: &Server, sizes: &Sizes, notes: &mut Vec<String>) -> Vec<Row> {
    let mut c = server.conn();
    let n = sizes.sessions;
    run(&mut c, &["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
    let replica = Server::start();
    let mut r = replica.conn();
    run(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &server.port().to_string()],
    );
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut r)
            .unwrap_or_default();
        if info.contains("master_link_status:up") && info.contains("master_sync_in_progress:0") {
            break;
        }
        assert!(Instant::now() < deadline, "the replica did not sync");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    eprintln!("with a replica attached ...");
    let (mut hsets, mut touches) = (Vec::new(), Vec::new());
    let (mut hset_stats, mut touch_stats) = (HashMap::new(), HashMap::new());
    let per_round = (sizes.ops / ROUNDS).max(1);
    for _ in 0..ROUNDS {
        let s0 = commandstats(&mut c);
        hsets.push(throughput(server, per_round, &|rng| {
            let k = rng.gen_range(0..n);
            vec![cmd(&["HSET", &format!("h:{k}"), &item(rng, 100), "v"])]
        }));
        let s1 = commandstats(&mut c);
        touches.push(throughput(server, per_round, &|rng| {
            vec![touch_cmd(rng, n)]
        }));
        let s2 = commandstats(&mut c);
        add_delta(&mut hset_stats, &s0, &s1);
        add_delta(&mut touch_stats, &s1, &s2);
    }
    let (hset, touch) = (median(hsets), median(touches));
    let hset_us = per_call(&hset_stats, "hset");
    let touch_us = per_call(&touch_stats, "session.touch");
    let keys: u64 = cmd(&["DBSIZE"]).query(&mut c).unwrap_or(0);
    notes.push(format!(
        "With a replica attached (measured last, {keys} keys in the keyspace): HSET {hset:.0} ops/s, {hset_us:.2} us/call; TOUCH {touch:.0} ops/s, {touch_us:.2} us/call."
    ));
    vec![
        Row {
            what: format!("with a replica attached, {keys} keys: TOUCH throughput"),
            module: touch,
            baseline: hset,
            baseline_name: "HSET".into(),
            unit: "ops/s",
            target: "(>= 0.6x HSET)".into(),
            met: touch >= 0.6 * hset,
        },
        Row {
            what: format!("with a replica attached, {keys} keys: TOUCH server time"),
            module: touch_us,
            baseline: hset_us,
            baseline_name: "HSET".into(),
            unit: "us/call",
            target: "(<= 3 us)".into(),
            met: touch_us <= 3.0,
        },
    ]
}

fn surface_vs_client(
    server: &Server,
    c: &mut Connection,
    size: u64,
    calls: usize,
) -> (f64, f64, f64) {
    let name = "catalog:bench";
    load_catalog(c, name, size);
    // the stock form: zset of scores, hash of categories, per-user seen set and interest hash
    let mut rng = StdRng::seed_from_u64(7);
    let stock = (0..size).flat_map(|i| {
        let score = format!("{:.4}", rng.gen::<f64>());
        let cat = CATEGORIES[rng.gen_range(0..20)];
        let it = format!("item:{i}");
        [
            cmd(&["ZADD", "stock:catalog", &score, &it]),
            cmd(&["HSET", "stock:itemcat", &it, cat]),
        ]
    });
    pipelined(c, stock, 1000);
    load_viewers(c, 50, size);
    for u in 0..50u64 {
        let favourite = CATEGORIES[(u % 20) as usize];
        let mut rng = StdRng::seed_from_u64(1000 + u);
        let mut sadd = cmd(&["SADD", &format!("stock:seen:{u}")]);
        for _ in 0..100 {
            sadd.arg(format!("item:{}", rng.gen_range(0..size)));
        }
        let _: redis::Value = sadd.query(c).expect("SADD");
        run(
            c,
            &[
                "HSET",
                &format!("stock:interests:{u}"),
                favourite,
                "0.6",
                "other",
                "0.4",
            ],
        );
    }
    let (module_p50, _) = latency(server, calls, &|rng| {
        let u = rng.gen_range(0..50);
        vec![cmd(&[
            "SESSION.SURFACE",
            &format!("viewer:{u}"),
            "FROM",
            name,
            "COUNT",
            "10",
            "NOMARK",
        ])]
    });
    reset_stats(c);
    let mut rng = StdRng::seed_from_u64(5);
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let u = rng.gen_range(0..50u64);
        let start = Instant::now();
        let top: Vec<(String, f64)> =
            cmd(&["ZREVRANGE", "stock:catalog", "0", "199", "WITHSCORES"])
                .query(c)
                .expect("ZREVRANGE");
        let mut smis = cmd(&["SMISMEMBER", &format!("stock:seen:{u}")]);
        let mut hmget = cmd(&["HMGET", "stock:itemcat"]);
        for (it, _) in &top {
            smis.arg(it);
            hmget.arg(it);
        }
        let seen: Vec<i64> = smis.query(c).expect("SMISMEMBER");
        let cats: Vec<Option<String>> = hmget.query(c).expect("HMGET");
        let interests: HashMap<String, f64> = cmd(&["HGETALL", &format!("stock:interests:{u}")])
            .query(c)
            .expect("HGETALL");
        let mut ranked: Vec<(f64, &str)> = top
            .iter()
            .zip(seen.iter().zip(cats.iter()))
            .filter(|(_, (s, _))| **s == 0)
            .map(|((it, score), (_, cat))| {
                let affinity = cat
                    .as_ref()
                    .and_then(|c| interests.get(c))
                    .copied()
                    .unwrap_or(0.0);
                (affinity + score, it.as_str())
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranked.truncate(10);
        std::hint::black_box(&ranked);
        samples.push(start.elapsed().as_secs_f64() * 1e6);
    }
    let stats = commandstats(c);
    let server_us: f64 = ["zrevrange", "smismember", "hmget", "hgetall"]
        .iter()
        .filter_map(|n| stats.get(*n))
        .map(|&(calls_n, usec)| usec / calls_n.max(1.0) * (calls_n / calls as f64))
        .sum();
    samples.sort_by(f64::total_cmp);
    let client_p50 = samples[samples.len() / 2];
    run(c, &["SESSION.CATALOG", "DROP", name]);
    run(c, &["FLUSHALL"]);
    (module_p50, client_p50, server_us)
}

fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| measure | module | baseline | ratio | target | met |\n|---|---:|---:|---:|---|:-:|\n",
    );
    for r in rows {
        let ratio = if r.baseline.is_nan() || r.baseline == 0.0 {
            "-".to_string()
        } else {
            format!("{:.2}x", r.module / r.baseline)
        };
        let _ = writeln!(
            out,
            "| {} | {} {} | {} ({}) | {} | {} | {} |",
            r.what,
            fmt_num(r.module),
            r.unit,
            fmt_num(r.baseline),
            r.baseline_name,
            ratio,
            r.target,
            if r.met { "yes" } else { "**no**" }
        );
    }
    out
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut sizes = if quick { Sizes::quick() } else { Sizes::full() };
    // `--touch`: the TOUCH and page-view rows only, printed and not written to docs/.
    sizes.touch_only = args.iter().any(|a| a == "--touch");
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let bench_md = docs.join("BENCHMARKS.md");
    let existing = std::fs::read_to_string(&bench_md).unwrap_or_default();
    let before = worst::before_section(&existing);
    // `--quality`: only the surfacing-quality table; printed, and spliced into docs/BENCHMARKS.md.
    if args.iter().any(|a| a == "--quality") {
        let report = quality::measure();
        let section = quality::section(&report);
        println!("{section}");
        if let Err(e) = std::fs::write(&bench_md, quality::splice(&existing, &section)) {
            eprintln!("could not write {}: {e}", bench_md.display());
        } else {
            println!("wrote the quality section of docs/BENCHMARKS.md");
        }
        return;
    }
    // `--worst`: only the worst-case table; printed, and spliced into docs/BENCHMARKS.md (the rest
    // of the file stays as the last full run wrote it).
    if args.iter().any(|a| a == "--worst") {
        let started = Instant::now();
        let rows = worst::measure(&if quick {
            worst::WorstSizes::quick()
        } else {
            worst::WorstSizes::full()
        });
        println!("{}", worst::table(&rows));
        println!(
            "bench --worst: ran in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        if !quick {
            let section = worst::section(&rows, before.as_deref());
            std::fs::write(&bench_md, worst::splice(&existing, &section))
                .expect("write docs/BENCHMARKS.md");
            println!("wrote the worst-case section of docs/BENCHMARKS.md");
        }
        return;
    }
    let server = Server::start();
    let version = server.version();
    let started = Instant::now();
    let m = measure(&server, &sizes);
    drop(server);
    let worst_rows = if sizes.touch_only {
        Vec::new()
    } else {
        worst::measure(&if quick {
            worst::WorstSizes::quick()
        } else {
            worst::WorstSizes::full()
        })
    };
    let elapsed = started.elapsed();
    let table = table(&m.rows);
    println!("{table}");
    if !worst_rows.is_empty() {
        println!("{}", worst::table(&worst_rows));
    }
    for n in &m.notes {
        println!("- {n}");
    }
    println!("TOUCH server time by sessions: {:?}", m.touch_curve);
    println!("SURFACE server time by catalog size: {:?}", m.surface_curve);
    if sizes.touch_only {
        println!("bench --touch: ran in {:.1}s", elapsed.as_secs_f64());
        return;
    }
    if quick {
        println!(
            "bench --quick: ran in {:.1}s (figures meaningless at these sizes)",
            elapsed.as_secs_f64()
        );
        return;
    }
    let png = docs.join("bench-scaling.png");
    if let Err(e) = chart::draw(&png, &m.touch_curve, &m.surface_curve) {
        eprintln!("chart not drawn: {e}");
    }
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(md, "Written by `make bench` (bench/src/main.rs) on {}; Redis {version}; {}; run took {:.0} s.\n", machine(), std::env::var("BENCH_DATE").unwrap_or_else(|_| "the date of the commit".into()), elapsed.as_secs_f64());
    let _ = writeln!(md, "Every figure is measured in the same run as its baseline, on a server the benchmark starts (no persistence). Throughput: {THREADS} client connections, each pipelining {DEPTH} operations, from pre-encoded requests (bench/src/blast.rs) so the client's CPU stays out of the figure. TOUCH, HSET and the MULTI page view run in {ROUNDS} alternating rounds and report their median round, so that outside load hits module and baselines alike. Server time: `INFO commandstats` usec per call. Latency: one client, no pipelining. The server has no replica, backlog or AOF except in the last rows (a replica attached), where both TOUCH and HSET propagate every write. The machine is shared and noisy: compare ratios, not absolute numbers, across runs.\n");
    md.push_str(&table);
    md.push_str("\nNotes:\n\n");
    for n in &m.notes {
        let _ = writeln!(md, "- {n}");
    }
    let _ = writeln!(md, "\nWhere the time goes for the targets not met, and what would close the gap: [PERFORMANCE.md](PERFORMANCE.md).");
    let _ = writeln!(md, "\n## Scaling\n\n![scaling](bench-scaling.png)\n");
    md.push_str("| sessions | TOUCH us/call |\n|---:|---:|\n");
    for (s, us) in &m.touch_curve {
        let _ = writeln!(md, "| {s} | {us:.2} |");
    }
    md.push_str("\n| catalog items | SURFACE us/call |\n|---:|---:|\n");
    for (s, us) in &m.surface_curve {
        let _ = writeln!(md, "| {s} | {us:.2} |");
    }
    md.push('\n');
    md.push_str(&worst::section(&worst_rows, before.as_deref()));
    md.push_str("\n## Reproduce\n\n```sh\nmake bench            # builds the module and the benchmark, writes this file and the chart\ncargo run --release -p session-bench -- --quick   # toy sizes, seconds\ncargo run --release -p session-bench -- --touch   # only the TOUCH and page-view rows, printed (~20 s)\nmake bench-worst      # only the worst-case table (a few minutes), spliced into this file\n```\n\nInstruction counts (repeatable on a noisy machine) and profiles: docs/PERFORMANCE.md, Method.\n");
    // Sections other runs write (`make bench-quality`, the web benchmark's summary) are kept.
    let existing = std::fs::read_to_string(&bench_md).unwrap_or_default();
    for head in ["## Surfacing quality", "## Web"] {
        if let Some(start) = existing.find(&format!("\n{head}")) {
            let body = &existing[start + 1..];
            let end = body[head.len()..]
                .find("\n## ")
                .map_or(body.len(), |e| head.len() + e + 1);
            md.push('\n');
            md.push_str(body[..end].trim_end_matches('\n'));
            md.push('\n');
        }
    }
    std::fs::write(&bench_md, md).expect("write docs/BENCHMARKS.md");
    println!("wrote docs/BENCHMARKS.md and docs/bench-scaling.png");
}
