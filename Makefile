# roundhouse: `make run` starts the balancer, `make test` is what CI runs.
CARGO ?= cargo

.PHONY: run test fmt clippy

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

# --- simulate: the strategies at scale, in virtual time (docs/simulate.md) ---
.PHONY: simulate-plot

# Mean time in system against load for random, p2c, least-conn and round-robin at
# n = 1000: measured points over the queueing-theory curves. Takes a few minutes.
simulate-plot:
	$(CARGO) run --release --example strategies_vs_load -- docs/img/strategies-vs-load.svg
