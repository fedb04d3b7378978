# The two commands of the README:
#   make run    builds the module and starts redis-server with it on ./redis.conf
#   make test   builds the module and runs every test (unit + integration)
CARGO ?= cargo
MODULE := target/release/libsession_store.so

.PHONY: all deps build run test unit integration bench bench-quick lint fmt clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	$(CARGO) build --release -p session-store

run: build
	redis-server ./redis.conf

unit:
	$(CARGO) test -p session-core

integration: build
	$(CARGO) test --release -p session-integration -- --test-threads 4

test: build
	$(CARGO) test --release --workspace -- --test-threads 4
	$(CARGO) run --release -q -p session-bench -- --quick

# Every performance target of the spec against its baselines; writes docs/BENCHMARKS.md and
# docs/bench-scaling.png (a few minutes; never part of pass/fail).
bench: build
	$(CARGO) run --release -p session-bench

bench-quick: build
	$(CARGO) run --release -q -p session-bench -- --quick

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
