# Homeostat. `make help` lists the targets.

IMG ?= homeostat:dev
GO ?= go
TOOLS := bash hack/tools.sh
CONTROLLER_GEN = $(shell $(TOOLS) path controller-gen)
# envtest and the e2e suites find kube-apiserver and etcd here; built once into the cache.
ENVTEST_ASSETS = $(shell $(TOOLS) envtest-dir)
# The pinned kubectl, built once into the cache; the tests run it (`kubectl kustomize`).
KUBECTL = $(shell $(TOOLS) path kubectl)
# Go test flags; e.g. make test GOTEST_FLAGS='-run TestPlan -v'
GOTEST_FLAGS ?=
# Fuzz time per target in `make test`.
FUZZTIME ?= 10s
# devcluster flags for `make run`; e.g. make run DEVCLUSTER_FLAGS=--prometheus-address=127.0.0.1:19090
DEVCLUSTER_FLAGS ?=

.DEFAULT_GOAL := help
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: tools
tools: ## Build every pinned tool into the cache outside the clone (once; about 7 minutes cold).
	$(TOOLS) all

.PHONY: manifests
manifests: ## Generate the CRDs, RBAC and webhook configuration from the markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd webhook paths="./api/..." paths="./controllers/..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac \
		output:webhook:artifacts:config=config/webhook
	$(MAKE) --no-print-directory docs

.PHONY: docs
docs: ## Generate docs/api.md, the API reference, from the CRDs.
	$(GO) run ./hack/apidocs -crds config/crd/bases -out docs/api.md

.PHONY: generate
generate: ## Generate the DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

# The Helm chart, and the files of config/ it reads (charts/homeostat/files/).
CHART := charts/homeostat

.PHONY: chart
chart: manifests ## Copy into charts/homeostat/files/ what the chart reads from config/: the CRDs, RBAC roles, webhook configuration and monitoring files.
	rm -rf $(CHART)/files/crds $(CHART)/files/rbac $(CHART)/files/webhook
	mkdir -p $(CHART)/files/crds $(CHART)/files/rbac $(CHART)/files/webhook
	cp config/crd/bases/*.yaml $(CHART)/files/crds/
	cp config/rbac/*role.yaml $(CHART)/files/rbac/
	cp config/webhook/manifests.yaml $(CHART)/files/webhook/
	if [ -d config/monitoring ]; then \
		rm -rf $(CHART)/files/dashboards && mkdir -p $(CHART)/files/dashboards; \
		cp config/monitoring/dashboards/*.json $(CHART)/files/dashboards/; \
		cp config/monitoring/prometheus-rules.yaml $(CHART)/files/prometheus-rules.yaml; \
	else \
		echo "config/monitoring does not exist: keeping the placeholder dashboards and rules in $(CHART)/files/"; \
	fi

.PHONY: helm-lint
helm-lint: ## helm lint --strict of the chart, with its defaults and with every value set (the Helm SDK; no helm binary needed).
	$(GO) test ./test/chart/ -run '^TestChartLintsCleanWithDefaultAndEveryValueSet$$' -count=1 -v

.PHONY: fmt
fmt: ## go fmt.
	$(GO) fmt ./...

.PHONY: vet
vet: ## go vet.
	$(GO) vet ./...

.PHONY: lint
lint: ## golangci-lint (built from the module proxy into the cache on first use).
	$$($(TOOLS) path golangci-lint) run ./...

.PHONY: test
test: manifests generate chart fmt vet ## Unit tests, envtest suites, the admission suite, brief fuzzing and the e2e suite on the local control plane.
	test -x "$(KUBECTL)" || { echo "No kubectl: run 'bash hack/tools.sh kubernetes'." >&2; exit 1; }
	# Prometheus and promtool (Debian's package): cmd/devcluster runs make run's demo, and
	# config/monitoring checks and unit-tests the alerts.
	$(TOOLS) prometheus promtool >/dev/null
	PATH="$(dir $(KUBECTL)):$$PATH" KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" $(GO) test $(GOTEST_FLAGS) ./api/... ./cmd/... ./config/... ./controllers/... ./hack/... ./internal/... ./test/admission/... ./test/bench/... ./test/chart/...
	$(MAKE) fuzz
	$(MAKE) test-e2e

.PHONY: fuzz
fuzz: ## Run each fuzz target briefly on top of its committed corpus.
	$(GO) test ./internal/analyze/ -run '^$$' -fuzz '^FuzzCompile$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/plan/ -run '^$$' -fuzz '^FuzzRemediate$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/plan/ -run '^$$' -fuzz '^FuzzAutoscale$$' -fuzztime $(FUZZTIME)

.PHONY: test-e2e
test-e2e: ## End-to-end suite against the local control plane with kwok nodes (no Docker needed).
	$(TOOLS) cluster >/dev/null
	$(TOOLS) prometheus
	test -x "$(KUBECTL)" || { echo "No kubectl: run 'bash hack/tools.sh kubernetes'." >&2; exit 1; }
	PATH="$(dir $(KUBECTL)):$$PATH" $(GO) test ./test/e2e/... -timeout 40m -count=1 -v -ginkgo.v $(GOTEST_FLAGS)

.PHONY: test-e2e-kind
test-e2e-kind: ## The e2e specs that need no kwok (manager, autoscaling, Fallback) against a kind cluster (needs Docker).
	$(TOOLS) prometheus
	test -x "$(KUBECTL)" || { echo "No kubectl: run 'bash hack/tools.sh kubernetes'." >&2; exit 1; }
	mkdir -p bin
	kind create cluster --name homeostat-e2e --wait 2m --kubeconfig bin/kind.kubeconfig
	PATH="$(dir $(KUBECTL)):$$PATH" HOMEOSTAT_E2E_KUBECONFIG=$(CURDIR)/bin/kind.kubeconfig $(GO) test ./test/e2e/... -timeout 40m -count=1 -v -ginkgo.v \
		-ginkgo.label-filter='!kwok' $(GOTEST_FLAGS); \
		rc=$$?; kind delete cluster --name homeostat-e2e; exit $$rc

.PHONY: bench
bench: ## Benchmarks on the local control plane; writes bench/report.md and bench/report.json.
	$(TOOLS) cluster >/dev/null
	HOMEOSTAT_BENCH=1 $(GO) test ./test/bench/... -timeout 120m -count=1 -v

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager binary into bin/.
	$(GO) build -o bin/manager .

# The plugin's version, stamped into `kubectl homeostat --version` and the krew archives.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PLUGIN_LDFLAGS = -X github.com/homeostat-dev/homeostat/internal/cli.Version=$(VERSION)
# The platforms of the krew archives.
PLUGIN_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64

.PHONY: plugin
plugin: ## Build the kubectl plugin into bin/kubectl-homeostat; with bin/ on PATH, `kubectl homeostat` runs it.
	$(GO) build -ldflags "$(PLUGIN_LDFLAGS)" -o bin/kubectl-homeostat ./cmd/kubectl-homeostat

.PHONY: plugin-dist
plugin-dist: ## Build the plugin's krew archives into dist/ and dist/homeostat.yaml, the krew manifest with their sha256.
	rm -rf dist && mkdir -p dist
	for p in $(PLUGIN_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		d=dist/kubectl-homeostat_$${os}_$${arch}; mkdir -p $$d; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(PLUGIN_LDFLAGS)" -o $$d/kubectl-homeostat$$ext ./cmd/kubectl-homeostat; \
		tar -C $$d -czf $$d.tar.gz .; rm -rf $$d; \
	done
	$(GO) run ./hack/krew -template config/krew/homeostat.yaml -version $(VERSION) -dist dist > dist/homeostat.yaml

.PHONY: run
run: manifests generate ## Run the manager here (webhooks off): against KUBECONFIG's cluster if reachable, else a local control plane it starts, with the samples and the demo that serves their sensors (Prometheus on 127.0.0.1:9090).
	$(TOOLS) cluster
	@$(TOOLS) prometheus || echo "make run: the demo of a local cluster needs Prometheus; devcluster will say so if it starts one" >&2
	$(GO) build -o bin/manager .
	$(GO) build -o bin/devcluster ./cmd/devcluster
	bin/devcluster run $(DEVCLUSTER_FLAGS) --manager bin/manager -- --zap-devel --health-probe-bind-address=127.0.0.1:8081 --metrics-bind-address=127.0.0.1:8080 --metrics-secure=false --egress-allow-cidrs=127.0.0.0/8,::1/128

# The image's OCI annotations: where its source is, and the commit and time it was built
# from (SOURCE_DATE_EPOCH, if set, for a reproducible build).
IMAGE_SOURCE ?= https://github.com/homeostat-dev/homeostat
IMAGE_REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
IMAGE_CREATED ?= $(shell date -u $${SOURCE_DATE_EPOCH:+-d @$$SOURCE_DATE_EPOCH} +%Y-%m-%dT%H:%M:%SZ)

.PHONY: docker-build
docker-build: ## Build the manager image, labelled with its version, revision, source and build time.
	docker build -t $(IMG) \
		--build-arg VERSION=$(VERSION) \
		--build-arg REVISION=$(IMAGE_REVISION) \
		--build-arg CREATED=$(IMAGE_CREATED) \
		--build-arg SOURCE=$(IMAGE_SOURCE) \
		.

##@ Deployment

.PHONY: install
install: manifests ## Install the CRDs into KUBECONFIG's cluster.
	kubectl apply --server-side -k config/crd

.PHONY: uninstall
uninstall: manifests ## Remove the CRDs (and every Homeostat object) from KUBECONFIG's cluster.
	kubectl delete --ignore-not-found -k config/crd

.PHONY: deploy
deploy: manifests ## Deploy the manager (image IMG) into KUBECONFIG's cluster.
	cd config/manager && kubectl kustomize . >/dev/null
	kubectl kustomize config/default | sed "s#image: homeostat:dev#image: $(IMG)#" | kubectl apply --server-side -f -

.PHONY: undeploy
undeploy: ## Remove the manager from KUBECONFIG's cluster.
	kubectl kustomize config/default | kubectl delete --ignore-not-found -f -
