# Mylittleshopping — `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

TOOLS_BIN := $(shell scripts/tools.sh bindir)
export PATH := $(TOOLS_BIN):$(PATH)
# Every module of the workspace, from go.work. The e2e module is tested by
# `make e2e` only: it brings a whole cluster up.
MODULES := $(shell go list -m -f '{{.Dir}}' 2>/dev/null)
TEST_MODULES := $(filter-out $(CURDIR)/e2e,$(MODULES))
E2E_TIMEOUT ?= 30m
GO_TEST_FLAGS ?= -race -count=1 -timeout 20m

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: tools
tools: ## Install the pinned tools (Consul, Nomad, SeaweedFS, VictoriaLogs, VictoriaMetrics, the log collector from source, cached; Docker and other Debian packages when missing).
	@scripts/tools.sh

# The deployables: name=package. The aggregator joins once its main exists.
DEPLOYABLES := auth=./services/auth inventory=./services/inventory orders=./services/orders \
	payment=./services/payment sandbox-processor=./services/payment/cmd/sandbox-processor \
	mailsink=./services/platform/cmd/mailsink
ifneq ($(wildcard aggregator/main.go),)
DEPLOYABLES += aggregator=./aggregator
endif
ifneq ($(wildcard backup/main.go),)
DEPLOYABLES += backup=./backup
endif

.PHONY: build
build: ## Compile every deployable into bin/ (make images puts each in its image).
	@mkdir -p bin
	@for d in $(DEPLOYABLES); do \
		CGO_ENABLED=0 go build -trimpath -o bin/$${d%%=*} $${d#*=} || exit 1; \
	done
	@echo "build: $(foreach d,$(DEPLOYABLES),$(firstword $(subst =, ,$(d)))) in bin/"

.PHONY: images
images: tools build ## Build the Docker image of every deployable (cached by content: only what changed is built); manifest in .run/images/.
	@scripts/images.sh

.PHONY: up
up: tools build images ## Deploy the whole shop on a local cluster with Terraform and print its addresses.
	@scripts/tf-local.sh up

.PHONY: down
down: ## Stop everything `make up` started (terraform destroy, the agents, dockerd if it started it); the databases' data stays in .run/cluster/volumes.
	@scripts/tf-local.sh down

.PHONY: logs
logs: ## Query the cluster's logs (VictoriaLogs, LogsQL), oldest first: make logs Q='request_id:"…"' (SINCE=1h, LIMIT=500, RAW=1).
	@scripts/logs.sh "$$Q"

.PHONY: test
test: tools lint check-generated test-go test-cluster e2e ## Lint, check generated code, run every test with -race, then the e2e suite on a whole cluster.

.PHONY: test-go
test-go: ## Run the Go tests of every module (real PostgreSQL, real Consul); a skipped test fails the run.
	@scripts/gotest.sh $(GO_TEST_FLAGS) -- $(TEST_MODULES)

.PHONY: e2e
e2e: tools build images ## From nothing: make up on free ports, the journey through HAProxy and the operations checks, make down.
	@E2E_TIMEOUT=$(E2E_TIMEOUT) scripts/e2e.sh

.PHONY: test-cluster
test-cluster: images ## Bring a second dev cluster up and down on free ports; nothing may be left running.
	@scripts/test-devcluster.sh

.PHONY: bench
bench: ## Run the benchmarks of every module; targets are in each benchmark's comment.
	@for m in $(TEST_MODULES); do (cd $$m && go test -run '^$$' -bench . -skip '^BenchmarkCheckoutWrites$$' -benchmem ./...) || exit 1; done
	@# WAL archiving costs only when segments fill: 20 s runs fill a few.
	@cd backup && go test -run '^$$' -bench '^BenchmarkCheckoutWrites$$' -benchtime 20s ./internal/walbench

.PHONY: bench-mesh
bench-mesh: ## What the mesh costs: bench-system's browse and checkout with mTLS, redeployed without it, with it again (the shop ends as it was), each run after a probe of cached browses (CPU per request from the containers' cgroups, throughput, latency), then each hop timed alone, plain and mTLS side by side, times the hops of a traced operation; report in .run/bench/mesh-*/cost.md.
	@scripts/bench-compare.sh mesh

.PHONY: bench-logs
bench-logs: ## What info-level logs cost: bench-system as deployed, redeployed at LOG_LEVEL=warn, as deployed again; report in .run/bench/logs-*/.
	@scripts/bench-compare.sh logs

.PHONY: bench-system
bench-system: ## Benchmark the running `make up` shop through HAProxy against a reference (it does not bring one up); report in .run/bench/.
	@out=$$(scripts/tf-local.sh output 2>/dev/null) || { echo "bench-system: no shop is up: run make up first"; exit 1; }; \
	shop=$$(sed -n 's/^shop_url = "\(.*\)"$$/\1/p' <<<"$$out"); mail=$$(sed -n 's/^mailsink_url = "\(.*\)"$$/\1/p' <<<"$$out"); \
	cd bench && go run ./cmd/bench-system -shop "$${shop:-http://127.0.0.1:8080}" -mailsink "$${mail:-http://127.0.0.1:8025}" -out $(CURDIR)/.run/bench $(BENCH_FLAGS)

.PHONY: seed
seed: ## Load the deterministic demo catalogue into DATABASE_URL (inventory's database); idempotent.
	@go run ./services/inventory/cmd/seed -products $${PRODUCTS:-5000} -sellers $${SELLERS:-50} -seed $${SEED:-1}

.PHONY: lint
lint: ## gofmt, go vet, a build of every module without the workspace; nomad fmt/validate, haproxy -c, otelcol/vmalert/scrape checks, terraform fmt/validate.
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && go vet ./...) || exit 1; done
	@for m in $(MODULES); do (cd $$m && GOWORK=off go build ./...) || { echo "$$m does not build with GOWORK=off"; exit 1; }; done
	@scripts/lint-deploy.sh
	@echo "lint: ok"

.PHONY: generate
generate: ## Regenerate code from openapi/*.yaml (oapi-codegen, pinned in go.mod).
	@for m in $(MODULES); do (cd $$m && go generate ./...) || exit 1; done

.PHONY: check-generated
check-generated: ## Fail when code generated from openapi/*.yaml is stale.
	@scripts/check-generated.sh
