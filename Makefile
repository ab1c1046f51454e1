# teragate — the two commands a newcomer needs are `make run` and `make test`.
GO        ?= go
BIN       := build/teragate
PLUGINS   := build/plugins
GOFLAGS_TEST ?= -race -count=1 -timeout 15m

.PHONY: all build run test test-short proto plugins fuzz vet fmt check clean bench

all: build

build:
	$(GO) build -o $(BIN) ./gateway/cmd/teragate

# Plugins: every Go plugin under plugins/ (a directory with a main.go; plugins/filter/user is
# filter.user) becomes build/plugins/<id>.wasm, a wasip1 reactor; every WebAssembly-text guest
# plugins/wat/*/<id>.wat is assembled with wat2wasm (Debian package wabt) into build/plugins-extra/
# (samples proving the ABI is language-neutral; not loaded by `make run`).
plugins:
	@mkdir -p $(PLUGINS)
	@for f in $$(find plugins -name main.go | sort); do \
	  d=$$(dirname $$f); id=$$(echo $${d#plugins/} | tr / .); \
	  echo "plugin $$id"; \
	  GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -o $(PLUGINS)/$$id.wasm ./$$d || exit 1; \
	done
	@for f in $$(find plugins -name '*.wat' | sort); do \
	  id=$$(basename $$f .wat); \
	  if command -v wat2wasm >/dev/null 2>&1; then \
	    mkdir -p $(PLUGINS)-extra; echo "plugin $$id (wat) -> $(PLUGINS)-extra"; wat2wasm $$f -o $(PLUGINS)-extra/$$id.wasm || exit 1; \
	  else echo "plugin $$id skipped: wat2wasm not found (apt-get install wabt)"; fi; \
	done

# make run: build the binary and the plugins, and start the gateway on its embedded defaults (demo
# identities, in-memory bus, TLS with a self-signed certificate in ./data) with the first-party
# plugins of build/plugins (the OpenTera filter table as Wasm, rpc.sessions), hot-reloaded.
# Ctrl-C stops it gracefully.
run: build plugins
	./$(BIN) serve --plugins $(PLUGINS) $(ARGS)

# make test: the whole suite, race detector on.
test: build
	$(GO) vet ./...
	$(GO) test $(GOFLAGS_TEST) ./...

test-short:
	$(GO) test -short -count=1 ./...

proto:
	bash proto/generate.sh

FUZZTIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzTeraEventDecode$$' -fuzztime $(FUZZTIME) ./proto/opentera
	$(GO) test -run '^$$' -fuzz '^FuzzMatch$$' -fuzztime $(FUZZTIME) ./gateway/internal/bus
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeTeraEvent$$' -fuzztime $(FUZZTIME) ./gateway/internal/api
	$(GO) test -run '^$$' -fuzz '^FuzzRouteBusPayload$$' -fuzztime $(FUZZTIME) ./gateway/internal/hub
	$(GO) test -run '^$$' -fuzz '^FuzzParseDirectory$$' -fuzztime $(FUZZTIME) ./gateway/internal/directory
	$(GO) test -run '^$$' -fuzz '^FuzzUnpack$$' -fuzztime $(FUZZTIME) ./sdk/abi
	$(GO) test -run '^$$' -fuzz '^FuzzApplyResult$$' -fuzztime $(FUZZTIME) ./gateway/internal/pluginhost
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRequest$$' -fuzztime $(FUZZTIME) ./gateway/internal/rpc
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeHTTPRequest$$' -fuzztime $(FUZZTIME) ./gateway/internal/rpc
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBody$$' -fuzztime $(FUZZTIME) ./gateway/internal/rooms
	$(GO) test -run '^$$' -fuzz '^FuzzParseHawkHeader$$' -fuzztime $(FUZZTIME) ./gateway/internal/rooms
	$(GO) test -run '^$$' -fuzz '^FuzzParseJSON$$' -fuzztime $(FUZZTIME) ./sdk/pdk

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./gateway/...

vet:
	$(GO) vet ./...

fmt:
	gofmt -s -w gateway proto sdk plugins examples 2>/dev/null || gofmt -s -w gateway proto

check: fmt vet proto
	git diff --exit-code

clean:
	rm -rf build
