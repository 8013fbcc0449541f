# Mylittleshopping — `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

TOOLS_BIN := $(shell scripts/tools.sh bindir)
export PATH := $(TOOLS_BIN):$(PATH)
# Every module of the workspace, from go.work.
MODULES := $(shell go list -m -f '{{.Dir}}' 2>/dev/null)
GO_TEST_FLAGS ?= -race -count=1 -timeout 20m

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: tools
tools: ## Install the pinned tools (Consul, Nomad from source, cached; Debian packages when missing).
	@scripts/tools.sh

.PHONY: up
up: tools ## Start the local cluster (Consul + Nomad dev agents on loopback) and print its addresses.
	@scripts/devcluster.sh up

.PHONY: down
down: ## Stop everything `make up` started.
	@scripts/devcluster.sh down

.PHONY: test
test: tools lint check-generated test-go test-cluster ## Lint, check generated code, run every test with -race.

.PHONY: test-go
test-go: ## Run the Go tests of every module (real PostgreSQL, real Consul); a skipped test fails the run.
	@scripts/gotest.sh $(GO_TEST_FLAGS) -- $(MODULES)

.PHONY: test-cluster
test-cluster: ## Bring a second dev cluster up and down on free ports; nothing may be left running.
	@scripts/test-devcluster.sh

.PHONY: bench
bench: ## Run the benchmarks of every module; targets are in each benchmark's comment.
	@for m in $(MODULES); do (cd $$m && go test -run '^$$' -bench . -benchmem ./...) || exit 1; done

.PHONY: seed
seed: ## Load the deterministic demo catalogue into DATABASE_URL (inventory's database); idempotent.
	@go run ./services/inventory/cmd/seed -products $${PRODUCTS:-5000} -sellers $${SELLERS:-50} -seed $${SEED:-1}

.PHONY: lint
lint: ## gofmt, go vet, and a build of every module without the workspace.
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && go vet ./...) || exit 1; done
	@for m in $(MODULES); do (cd $$m && GOWORK=off go build ./...) || { echo "$$m does not build with GOWORK=off"; exit 1; }; done
	@echo "lint: ok"

.PHONY: generate
generate: ## Regenerate code from openapi/*.yaml (oapi-codegen, pinned in go.mod).
	@for m in $(MODULES); do (cd $$m && go generate ./...) || exit 1; done

.PHONY: check-generated
check-generated: ## Fail when code generated from openapi/*.yaml is stale.
	@scripts/check-generated.sh
