# roundhouse: `make run` starts the balancer, `make test` is what CI runs.
CARGO ?= cargo

.PHONY: run test fmt clippy

run:
	$(CARGO) run --release

test: fmt clippy
	$(CARGO) test --all-targets

fmt:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings
