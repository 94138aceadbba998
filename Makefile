# roundhouse: `make run` starts the balancer, `make test` is what CI runs.
CARGO ?= cargo

.PHONY: run test fmt clippy experiment

run:
	$(CARGO) run --release

test: fmt clippy
	$(CARGO) test --all-targets

fmt:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

# Little's law as a picture: throughput and latency for 1..128 workers, 64 clients,
# 10 s each (about 90 s). Writes docs/img/workers-vs-*.svg and the data table.
experiment:
	$(CARGO) run --release -- experiment --out docs/img
