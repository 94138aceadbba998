# roundhouse: `make run` starts the balancer, `make test` is what CI runs.
CARGO ?= cargo

.PHONY: run test fmt clippy bench-compare bench-bounds

run:
	$(CARGO) run --release

test: fmt clippy
	$(CARGO) test --all-targets

fmt:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

# roundhouse next to nginx and HAProxy (installs them and wrk if missing; a few minutes).
# BENCH_ARGS="--long" for 10 s runs, "--baseline REV" to add an older build, "--record"
# to append the table to bench/RESULTS.md.
bench-compare:
	bash bench/compare.sh $(BENCH_ARGS)

# Slow-backend throughput against its bound, and RSS with 2,000 keep-alive clients.
bench-bounds:
	bash bench/bounds.sh $(BENCH_ARGS)
