# Everything a developer or CI runs goes through here.
GO        ?= go
BIN       := $(CURDIR)/bin
TOOLS     := $(BIN)/tools
PROVIDERS := $(notdir $(wildcard cmd/twofactor-provider-*))
DEV_CONFIG ?= .dev/twofactor.yaml

.PHONY: all build run test test-short vet fmt fuzz bench proto clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# First run writes a dev config with a fresh encryption key and API keys
# (printed once); later runs reuse it.
run: build
	$(BIN)/twofactor init --config $(DEV_CONFIG) --plugins-dir $(BIN)
	$(BIN)/twofactor serve --config $(DEV_CONFIG)

# Every test of both modules, with the race detector, then a short run of
# each fuzz target so their seed corpora and invariants stay honest.
test: vet
	$(GO) test -race -count=1 ./...
	cd sdk && $(GO) test -race -count=1 ./...
	$(MAKE) fuzz FUZZTIME=5s

FUZZTIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzNormalizeCode$$' -fuzztime $(FUZZTIME) ./providers/totp/
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) ./providers/totp/
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyRequestBody$$' -fuzztime $(FUZZTIME) ./host/

vet:
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt needed on the files above" && exit 1)
	$(GO) vet ./...
	cd sdk && $(GO) vet ./...

bench: build
	$(GO) test -run '^$$' -bench 'Verify' -benchmem -count 5 ./framework/ ./providers/totp/

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
