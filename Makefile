# flmngr — thin targets over the go tool. `make help` lists them.

GO      ?= go
BIN     ?= bin/flmngr
DATA    ?= flmngr-data
LISTEN  ?= 127.0.0.1:4222
BENCHTIME ?= 1s

.PHONY: help build run test bench lint clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-6s %s\n", $$1, $$2}'

build: ## build bin/flmngr
	$(GO) build -o $(BIN) ./cmd/flmngr

run: build ## the main job: embedded deployment, two clients, a FedAvg run on MNIST (data in ./flmngr-data)
	$(BIN) demo --data $(DATA) --listen $(LISTEN) $(DEMOFLAGS)

test: ## run every test: unit, adapter, acceptance (godog) and crash tests
	$(GO) vet ./...
	$(GO) test -count=1 ./...

bench: ## run the benchmarks one package at a time and print their figures (BENCHTIME=1s by default; -short skips the 1M-event rebuild)
	$(GO) test -p 1 -run '^$$' -bench . -benchtime $(BENCHTIME) $(BENCHFLAGS) ./...

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt-ed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean: ## remove the binary (not the data)
	rm -rf bin
