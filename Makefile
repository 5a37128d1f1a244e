# Gozer: the two commands that matter are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin
CONFIG ?= conf/gozer.yaml
DEMO_ADDR ?= 127.0.0.1:9000
FUZZTIME ?= 30s
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
H2SPEC := github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible
# `make run` and `make push-token` sign push tokens with this when GOZER_PUSH_SECRET
# is not set: fine on a laptop, never in production.
DEV_PUSH_SECRET := gozer-development-secret-not-for-production
# ... and sign forwards between push cluster nodes with this when GOZER_PUSH_CLUSTER_SECRET
# is not set (push.cluster.enabled needs a cluster secret).
DEV_PUSH_CLUSTER_SECRET := gozer-development-cluster-secret-not-for-production
CLIENT ?= dev1
TTL ?= 1h
# TOPICS (comma-separated) makes `make push-token` sign a token that subscribes to them.
TOPICS ?=

.PHONY: run push-token build test test-short bench bench-isolation bench-push fuzz lint deps clean dashboard-screenshot

# What `gozer -version` prints as the version: the nearest tag and the commit.
# (The commit is passed too: a build with -buildvcs=false has no VCS stamp.)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

## build: compile gozer and the demo origin into bin/
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/gozer ./gateway/cmd/gozer
	$(GO) build -o $(BIN)/demo-origin ./gateway/cmd/demo-origin

## run: start the demo origin and Gozer on the default config (Ctrl-C stops both)
run: build
	@$(BIN)/demo-origin -addr $(DEMO_ADDR) & demo=$$!; \
	trap 'kill $$demo 2>/dev/null' EXIT; \
	echo "gozer: proxy on :8080, HTTPS on :8443, admin on 127.0.0.1:8081 (try: curl -i localhost:8080/ and curl -i --cacert .gozer/dev-cert.pem https://localhost:8443/)"; \
	[ -n "$$GOZER_PUSH_SECRET" ] || echo "gozer: push tokens use a development secret (set GOZER_PUSH_SECRET for a real one)"; \
	[ -n "$$GOZER_PUSH_CLUSTER_SECRET" ] || echo "gozer: push cluster forwards (when push.cluster is on) are signed with a development secret (set GOZER_PUSH_CLUSTER_SECRET for a real one)"; \
	GOZER_PUSH_SECRET=$${GOZER_PUSH_SECRET:-$(DEV_PUSH_SECRET)} \
	GOZER_PUSH_CLUSTER_SECRET=$${GOZER_PUSH_CLUSTER_SECRET:-$(DEV_PUSH_CLUSTER_SECRET)} $(BIN)/gozer -config $(CONFIG)

## push-token: print a push token for CLIENT (default dev1, topics TOPICS) that `make run` accepts
push-token:
	@$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/gozer ./gateway/cmd/gozer
	@GOZER_PUSH_SECRET=$${GOZER_PUSH_SECRET:-$(DEV_PUSH_SECRET)} \
	GOZER_PUSH_CLUSTER_SECRET=$${GOZER_PUSH_CLUSTER_SECRET:-$(DEV_PUSH_CLUSTER_SECRET)} \
	$(BIN)/gozer push-token -config $(CONFIG) -client $(CLIENT) -ttl $(TTL) $(if $(TOPICS),-topics $(TOPICS))

## deps: what the test suite needs on a fresh machine (pinned Go modules, curl, redis-server and redis-cli (the Redis Cluster tests), chromium for the dashboard's browser test, nghttp2-client and h2spec for HTTP/2)
deps:
	$(GO) mod download
	@command -v nghttp >/dev/null && command -v h2load >/dev/null || { apt-get update -qq && apt-get install -y -qq nghttp2-client; }
	@command -v h2spec >/dev/null || test -x "$$($(GO) env GOPATH)/bin/h2spec" || $(GO) install $(H2SPEC)
	@command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
	@command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server; }
	@command -v redis-cli >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-tools; }
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }

## test: the whole suite (unit tests, end-to-end tests over real sockets), race detector on.
## ./test first: the end-to-end package is most of the time, and go test starts packages in the
## order given, so the unit packages run beside it instead of before it. -parallel 3: the
## end-to-end tests mostly wait (timers, slow clients, origins that stall), so with 2 at a time
## (the default on 2 cores) the machine sat half idle; 3 took ./test from ~550 s to ~425 s on
## this 2-core machine without slowing any one test by more than a few seconds.
TEST_FLAGS = -race -count=1 -parallel 3
test: deps
	$(GO) vet ./...
	$(GO) test $(TEST_FLAGS) -timeout 25m ./test/ ./...

## test-short: the suite without the 1 GiB transfers
test-short:
	$(GO) test $(TEST_FLAGS) -short ./test/ ./...

## dashboard-screenshot: docs/dashboard.png, the dashboard under the browser test's traffic
dashboard-screenshot: deps
	cd test && GOZER_SCREENSHOT=docs/dashboard.png $(GO) test -count=1 -run '^TestDashboard$$' .

## bench: Gozer side by side with nginx, HAProxy and Caddy (prints ratios) and its CPU/req with metrics on vs off, then the cost of a live config reload under load
bench:
	bash bench/run.sh
	bash bench/reload.sh

## bench-isolation: a healthy origin's latency with and without a sick neighbour
bench-isolation:
	bash bench/isolation.sh

## bench-push: websocket push vs nginx + nchan: memory per connection, push latency, broadcast time;
## then the push history: recovery of 10,000 devices at once, CPU per message with history on/off
bench-push:
	bash bench/push.sh
	bash bench/pushhist.sh

## bench-limits: CPU/req of one local and one cluster rate limit on every request (vs without, and nginx), then the cluster limit's admitted-rate error at 3 nodes
.PHONY: bench-limits
bench-limits:
	BENCH_SUITE=ratelimit BENCH_IDLE_CONNS=0 bash bench/run.sh
	bash bench/ratelimit-cluster.sh

## bench-h2: HTTP/2 over TLS vs nginx (h2load -c 64 -m 10): CPU µs per request, req/s, the ratio
.PHONY: bench-h2
bench-h2:
	bash bench/h2.sh

## bench-tls: TLS termination vs nginx and HAProxy: keep-alive HTTPS CPU/req, handshakes per core, idle TLS memory
.PHONY: bench-tls
bench-tls:
	bash bench/tls.sh

## bench-ws: websocket proxying vs nginx's: messages/s and the proxy's CPU µs per relayed message (issue 15: <= 1.0 x nginx)
.PHONY: bench-ws
bench-ws:
	bash bench/ws.sh

## bench-asyncwait: p99 of plain requests while 1,000 requests wait in an async filter (issue 13: <= 1.10 x a baseline whose load core holds as many at the side service)
.PHONY: bench-asyncwait
bench-asyncwait:
	bash bench/asyncwait.sh

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; \
	done

## lint: gofmt, go vet, staticcheck (pinned)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt wants: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf $(BIN)
