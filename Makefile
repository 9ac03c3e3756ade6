# Everything a developer or CI runs goes through here.
GO        ?= go
BIN       := $(CURDIR)/bin
TOOLS     := $(BIN)/tools
PROVIDERS := $(notdir $(wildcard cmd/twofactor-provider-*))
DEV_CONFIG ?= .dev/twofactor.yaml
# make run LISTEN=127.0.0.1:8741 serves on another address (the default,
# from the dev config, is 127.0.0.1:8740); a dev config written by that
# run listens there too, and its first-run hints name it.
LISTEN ?=

# twofactor version names the release and the commit. Go's build info
# carries the commit only when built in a plain git clone (not a worktree,
# not with -buildvcs=false), so the build stamps both from git.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS  := -X github.com/twofactor/twofactor/internal/buildinfo.Version=$(VERSION) -X github.com/twofactor/twofactor/internal/buildinfo.Revision=$(REVISION)

.PHONY: all build run test vet lint-api axe fuzz bench chaos proto clean print-%

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...
	cd examples/provider-hotp && $(GO) build -o $(BIN)/ .

# First run writes a dev config with a fresh encryption key and API keys
# (printed once); later runs reuse it.
run: build
	$(BIN)/twofactor init --config $(DEV_CONFIG) --plugins-dir $(BIN) $(if $(LISTEN),--listen $(LISTEN))
	$(BIN)/twofactor serve --config $(DEV_CONFIG) $(if $(LISTEN),--listen $(LISTEN))

# Every test of the three modules (host, SDK, HOTP example provider), with
# the race detector (after installing the API linter and axe-core when npm
# is there), then the chaos tests in their short form (3 faults
# each, under a minute). Plain `go test` runs every fuzz target on its seed
# corpus and on the finds committed under testdata/fuzz/, so they are
# regression tests here; random exploration is `make fuzz`'s job, not
# CI's: CI must be a function of the commit (issue 12).
test: vet
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory lint-api axe; \
	else echo "lint-api and axe skipped: npm is not installed (apt-get install npm); CI runs them"; fi
	$(GO) test -race -count=1 -timeout 30m ./...
	$(GO) test -tags bench -race -count=1 -run '^Test' ./bench/
	cd sdk && $(GO) test -race -count=1 ./...
	cd examples/provider-hotp && $(GO) test -race -count=1 ./...
	CHAOS_ROUNDS=3 $(GO) test -tags chaos -race -count=1 -run '^TestChaos' ./host/

# Lints the HTTP API's OpenAPI document (host/api/openapi.yaml) with
# Redocly's recommended rules (host/api/redocly.yaml). The linter comes from
# the npm registry, pinned, installed once under bin/npm (a few seconds);
# the lint itself takes about a second.
REDOCLY_VERSION := 2.77.0
REDOCLY := $(BIN)/npm/node_modules/.bin/redocly
lint-api:
	@test -x $(REDOCLY) && $(REDOCLY) --version 2>/dev/null | grep -qx '$(REDOCLY_VERSION)' || \
		npm install --silent --no-audit --no-fund --prefix $(BIN)/npm @redocly/cli@$(REDOCLY_VERSION)
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		$(REDOCLY) lint --config host/api/redocly.yaml host/api/openapi.yaml

# axe-core, the accessibility engine the web UI's browser tests (host/ui)
# run on every page they see, light and dark: from the npm registry,
# pinned, installed once under bin/npm beside Redocly. Without it those
# tests skip, saying so.
AXE_VERSION := 4.14.1
AXE_DIR := $(BIN)/npm/node_modules/axe-core
axe:
	@test -f $(AXE_DIR)/axe.min.js && grep -q '"version": "$(AXE_VERSION)"' $(AXE_DIR)/package.json || \
		npm install --silent --no-audit --no-fund --prefix $(BIN)/npm axe-core@$(AXE_VERSION)

# Faults under a steady verify load, 20 of each kind (a minute or so per
# test): the TOTP plugin SIGKILLed; one of two replicas on PostgreSQL
# SIGKILLed and restarted (needs TEST_POSTGRES_DSN, else skipped); Duo
# answering 500s and timing out. No code accepted twice, no 500, no
# enrollment lost, throughput back within 10% within 5 s of each fault, no
# orphan plugin (host/chaos_test.go).
chaos:
	CHAOS_ROUNDS=20 $(GO) test -tags chaos -race -count=1 -v -run '^TestChaos' ./host/

# Random exploration, outside CI: run before a release and after touching
# a parser. Every fuzz target, each for FUZZTIME, one after another: the
# parsers at a boundary (codes, API bodies and the UI's tokens and forms, the config
# file, import files, providers' opaque state, Duo's responses). A failing
# input is written to the package's testdata/fuzz/TARGET/; commit it with
# the fix. The SDK and the HOTP example are modules of their own, fuzzed
# from their folders. One target alone: its line of `make -n fuzz`.
FUZZTIME ?= 10s
fuzz1 = cd $(1) && $(GO) test -run '^$$' -fuzz '^$(3)$$' -fuzztime $(FUZZTIME) $(2)
fuzz:
	$(call fuzz1,.,./providers/totp/,FuzzNormalizeCode)
	$(call fuzz1,.,./providers/totp/,FuzzVerify)
	$(call fuzz1,.,./providers/totp/,FuzzParseState)
	$(call fuzz1,.,./providers/duo/,FuzzParseState)
	$(call fuzz1,.,./providers/duo/,FuzzNormalizePasscode)
	$(call fuzz1,.,./providers/duo/internal/authapi/,FuzzDecode)
	$(call fuzz1,.,./providers/duo/internal/authapi/,FuzzCanonParams)
	$(call fuzz1,.,./framework/config/,FuzzLoad)
	$(call fuzz1,.,./internal/totpfile/,FuzzRead)
	$(call fuzz1,.,./host/apifuzz/,FuzzVerifyRequestBody)
	$(call fuzz1,.,./host/apifuzz/,FuzzEnrollRequestBody)
	$(call fuzz1,.,./host/apifuzz/,FuzzConfirmRequestBody)
	$(call fuzz1,.,./host/apifuzz/,FuzzChallengeRequestBody)
	$(call fuzz1,.,./host/apifuzz/,FuzzUILinkRequestBody)
	$(call fuzz1,.,./host/apifuzz/,FuzzUIToken)
	$(call fuzz1,.,./host/apifuzz/,FuzzUIForm)
	$(call fuzz1,.,./host/api/,FuzzCheckKeys)
	$(call fuzz1,sdk,.,FuzzDecodeState)
	$(call fuzz1,examples/provider-hotp,.,FuzzParseState)
	$(call fuzz1,examples/provider-hotp,.,FuzzVerify)

vet:
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt needed on the files above" && exit 1)
	$(GO) vet ./...
	$(GO) vet -tags bench ./bench/...
	$(GO) vet -tags chaos ./host/
	cd sdk && $(GO) vet ./...
	cd examples/provider-hotp && $(GO) vet ./...

# The whole benchmark suite (issues 7 and 16), in about 10 minutes: the
# micro benchmarks, the plugin-call baseline (bench/plugincall), then the
# driver (bench/): first-use logins (every request a login that writes
# state; 400,000 users imported) on SQLite at concurrency 1, 8 and 32 and on
# PostgreSQL at 32, against the bare baseline (bench/bare: net/http +
# pquerna/otp from memory), wrong codes and replays as labelled rows, with
# CPU per request and issue 16's goals; BENCH_FLAGS=-cpuprofile=FILE writes
# the SQLite login host's CPU profile, and its TOTP plugin's as
# FILE-twofactor-provider-totp-PID.prof. Then, issue 7's tables: HTTP verify
# of the freshest code (mostly replays) through a real `twofactor serve` driven by
# cmd/twofactor-load on SQLite and PostgreSQL at concurrency 1, 8 and 32,
# startup, verify against 1,000 to 1,000,000 users filled in through
# `twofactor import` (the scale table), memory idle and after 100,000 users
# and 60 s of load, and the goals. It prints Markdown for BENCHMARKS.md and
# keeps it in bin/bench/tables.md. PostgreSQL rows need TEST_POSTGRES_DSN
# (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable); without
# it they are skipped with a message. A failing benchmark does not stop the
# suite: the driver lists it, with its message, under the micro tables.
BENCH_DIR := $(BIN)/bench
BENCH_FLAGS ?=
bench:
	@mkdir -p $(BENCH_DIR)
	-$(GO) test -run '^$$' -bench . -benchmem -count 5 ./framework/ ./providers/totp/ > $(BENCH_DIR)/micro.txt 2>&1
	-$(GO) test -tags bench -run '^$$' -bench . -benchmem -count 5 ./bench/plugincall/ > $(BENCH_DIR)/plugincall.txt 2>&1
	$(GO) run -tags bench ./bench -micro $(BENCH_DIR)/micro.txt,$(BENCH_DIR)/plugincall.txt -out $(BENCH_DIR)/tables.md $(BENCH_FLAGS)

# Regenerates the wire code. protoc is Debian's protobuf-compiler; the Go
# generators are pinned in tools/go.mod so they stay out of the SDK's go.mod.
proto:
	cd tools && $(GO) build -o $(TOOLS)/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc
	cd sdk/internal/pb && protoc --plugin=protoc-gen-go=$(TOOLS)/protoc-gen-go \
		--plugin=protoc-gen-go-grpc=$(TOOLS)/protoc-gen-go-grpc \
		--go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative \
		provider.proto

clean:
	rm -rf $(BIN)

# make print-VAR prints a variable (tests read LDFLAGS through it).
print-%:
	@echo '$($*)'

