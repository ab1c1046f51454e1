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
# plugins/wat/*/<id>.wat is assembled with wat2wasm (Debian package wabt) into build/plugins/<id>.wasm.
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
	    echo "plugin $$id (wat)"; wat2wasm $$f -o $(PLUGINS)/$$id.wasm || exit 1; \
	  else echo "plugin $$id skipped: wat2wasm not found (apt-get install wabt)"; fi; \
	done

# make run: build and start the gateway on its embedded defaults (demo identities, in-memory bus,
# TLS with a self-signed certificate in ./data). Ctrl-C stops it gracefully.
run: build plugins
	./$(BIN) serve $(ARGS)

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
