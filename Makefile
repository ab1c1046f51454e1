# teragate — the two commands a newcomer needs are `make run` and `make test`.
GO        ?= go
BIN       := build/teragate
PLUGINS   := build/plugins
BUILTIN   := gateway/internal/builtin/wasm
GOFLAGS_TEST ?= -race -count=1 -timeout 15m

.PHONY: all build run test test-short proto plugins fuzz vet fmt check clean bench

all: build

# build: the plugins first, because the binary embeds them (gateway/internal/builtin).
build: plugins
	$(GO) build -o $(BIN) ./gateway/cmd/teragate

# Plugins: every Go plugin under plugins/ (a directory with a main.go; plugins/filter/user is
# filter.user) becomes build/plugins/<id>.wasm, a wasip1 reactor, copied into $(BUILTIN) for the
# binary to embed as its built-in plugins; every WebAssembly-text guest
# plugins/wat/*/<id>.wat is assembled with wat2wasm (Debian package wabt) into build/plugins-extra/
# (samples proving the ABI is language-neutral; not loaded by `make run`). Role plugins
# (plugins/role/<name> → build/plugins/role.<name>.wasm) run on stations, not in the gateway, so
# they are not embedded: copy one into the manager's roles directory as <name>.wasm.
plugins:
	@mkdir -p $(PLUGINS)
	@rm -f $(BUILTIN)/*.wasm
	@for f in $$(find plugins -name main.go | sort); do \
	  d=$$(dirname $$f); id=$$(echo $${d#plugins/} | tr / .); \
	  echo "plugin $$id"; \
	  GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -o $(PLUGINS)/$$id.wasm ./$$d || exit 1; \
	  case $$id in role.*) continue;; esac; \
	  cp $(PLUGINS)/$$id.wasm $(BUILTIN)/$$id.wasm || exit 1; \
	done
	@for f in $$(find plugins -name '*.wat' | sort); do \
	  id=$$(basename $$f .wat); \
	  if command -v wat2wasm >/dev/null 2>&1; then \
	    mkdir -p $(PLUGINS)-extra; echo "plugin $$id (wat) -> $(PLUGINS)-extra"; wat2wasm $$f -o $(PLUGINS)-extra/$$id.wasm || exit 1; \
	  else echo "plugin $$id skipped: wat2wasm not found (apt-get install wabt)"; fi; \
	done

# make run: build the plugins and the binary, and start the gateway on its embedded defaults (demo
# identities, in-memory bus, TLS with a self-signed certificate in ./data, the built-in plugins:
# OpenTera's filter table as Wasm and rpc.sessions). ./data/plugins is watched: an <id>.wasm
# dropped there replaces or adds a plugin live. Ctrl-C stops it gracefully.
run: build
	./$(BIN) serve $(ARGS)

# make test: the whole suite, race detector on.
test: build
	$(GO) vet ./...
	TERAGATE_REQUIRE_BUILTINS=1 $(GO) test $(GOFLAGS_TEST) ./...

test-short:
	$(GO) test -short -count=1 ./...

proto:
	bash proto/generate.sh

FUZZTIME ?= 10s
# Each target runs once more if the fuzzing engine itself fails (it sometimes reports "context
# deadline exceeded" on a loaded machine); a real crasher is written to testdata/fuzz and fails
# the retry too, since the seed corpus runs first.
FUZZ = $(GO) test -run '^$$' -fuzztime $(FUZZTIME) -fuzz
fuzz:
	$(FUZZ) '^FuzzTeraEventDecode$$' ./proto/opentera || $(FUZZ) '^FuzzTeraEventDecode$$' ./proto/opentera
	$(FUZZ) '^FuzzMatch$$' ./gateway/internal/bus || $(FUZZ) '^FuzzMatch$$' ./gateway/internal/bus
	$(FUZZ) '^FuzzDecodeTeraEvent$$' ./gateway/internal/api || $(FUZZ) '^FuzzDecodeTeraEvent$$' ./gateway/internal/api
	$(FUZZ) '^FuzzRouteBusPayload$$' ./gateway/internal/hub || $(FUZZ) '^FuzzRouteBusPayload$$' ./gateway/internal/hub
	$(FUZZ) '^FuzzParseDirectory$$' ./gateway/internal/directory || $(FUZZ) '^FuzzParseDirectory$$' ./gateway/internal/directory
	$(FUZZ) '^FuzzUnpack$$' ./sdk/abi || $(FUZZ) '^FuzzUnpack$$' ./sdk/abi
	$(FUZZ) '^FuzzApplyResult$$' ./gateway/internal/pluginhost || $(FUZZ) '^FuzzApplyResult$$' ./gateway/internal/pluginhost
	$(FUZZ) '^FuzzInstrument$$' ./gateway/internal/wasmguard || $(FUZZ) '^FuzzInstrument$$' ./gateway/internal/wasmguard
	$(FUZZ) '^FuzzDecodeRequest$$' ./gateway/internal/rpc || $(FUZZ) '^FuzzDecodeRequest$$' ./gateway/internal/rpc
	$(FUZZ) '^FuzzDecodeHTTPRequest$$' ./gateway/internal/rpc || $(FUZZ) '^FuzzDecodeHTTPRequest$$' ./gateway/internal/rpc
	$(FUZZ) '^FuzzDecodeBody$$' ./gateway/internal/rooms || $(FUZZ) '^FuzzDecodeBody$$' ./gateway/internal/rooms
	$(FUZZ) '^FuzzParseHawkHeader$$' ./gateway/internal/rooms || $(FUZZ) '^FuzzParseHawkHeader$$' ./gateway/internal/rooms
	$(FUZZ) '^FuzzParseJSON$$' ./sdk/pdk || $(FUZZ) '^FuzzParseJSON$$' ./sdk/pdk
	$(FUZZ) '^FuzzStationMessage$$' ./gateway/internal/stations || $(FUZZ) '^FuzzStationMessage$$' ./gateway/internal/stations
	$(FUZZ) '^FuzzManagerMessage$$' ./sdk/station || $(FUZZ) '^FuzzManagerMessage$$' ./sdk/station

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./gateway/...

vet:
	$(GO) vet ./...

fmt:
	gofmt -s -w gateway proto sdk plugins examples 2>/dev/null || gofmt -s -w gateway proto

check: fmt vet proto
	git diff --exit-code

clean:
	rm -rf build $(BUILTIN)/*.wasm
