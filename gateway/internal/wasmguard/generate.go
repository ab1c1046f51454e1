package wasmguard

// The test modules are hand-written WAT, assembled with Debian's wabt (apt-get install wabt). The
// .wasm outputs are committed so tests run without wabt. --no-check: some are invalid on purpose.
// ($DOLLAR is go generate's "$".)
//go:generate sh -c "cd testdata && for f in *.wat; do wat2wasm --no-check --enable-tail-call --enable-threads --debug-names $DOLLAR{f} -o $DOLLAR{f%.wat}.wasm || exit 1; done"
