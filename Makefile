# roundhouse: `make run` starts the balancer, `make test` is what CI runs.
CARGO ?= cargo

.PHONY: run test fmt clippy experiment bench bench-compare bench-bounds c10k bench-tls

run:
	$(CARGO) run --release

test: fmt clippy
	$(CARGO) test --all-targets
	# Simulator checks that need millions of requests run only in release builds.
	$(CARGO) test --release --test simulate

fmt:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

# Fuzz the calculator parser for FUZZ_SECONDS (not part of `make test` or CI). Needs a
# nightly toolchain (`rustup toolchain list`) and cargo-fuzz, installed on first use.
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	$(CARGO) +nightly fuzz run calc_parser -- -max_total_time=$(FUZZ_SECONDS)

# Little's law as a picture: throughput and latency for 1..128 workers, 64 clients,
# 10 s each (about 90 s). Writes docs/img/workers-vs-*.svg and the data table.
.PHONY: experiment
experiment:
	$(CARGO) run --release -- experiment --out docs/img

# --- simulate: the strategies at scale, in virtual time (docs/simulate.md) ---
.PHONY: simulate-plot

# Mean time in system against load for random, p2c, least-conn and round-robin at
# n = 1000: measured points over the queueing-theory curves. Takes a few minutes.
simulate-plot:
	$(CARGO) run --release --example strategies_vs_load -- docs/img/strategies-vs-load.svg

# Every benchmark of the project: roundhouse against nginx and HAProxy, then the
# slow-backend bounds and memory (speed lives here, never in the tests).
bench: bench-compare bench-bounds c10k bench-tls

# roundhouse next to nginx and HAProxy (installs them and wrk if missing; a few minutes).
# BENCH_ARGS="--long" for 10 s runs, "--baseline REV" to add an older build, "--record"
# to append the table to bench/RESULTS.md.
bench-compare:
	bash bench/compare.sh $(BENCH_ARGS)

# Slow-backend throughput against its bound, and RSS with 2,000 keep-alive clients.
bench-bounds:
	bash bench/bounds.sh $(BENCH_ARGS)

# The C10k experiment: both fronts at 100, 1,000 and 10,000 connections (threads, memory,
# req/s, context switches, predicted and measured), the event loop's bounds, the
# descriptor limit and slowloris; draws docs/img/c10k-*.svg (about 6 minutes).
c10k:
	bash bench/c10k.sh --plot docs/img $(BENCH_ARGS)

# HTTPS requests/s and handshakes/s next to nginx with the same certificate (2.5 min).
bench-tls:
	bash bench/tls.sh
