package pluginhost

// The hostile and scripted test guests are hand-written WAT, assembled with Debian's wabt
// (apt-get install wabt). The .wasm outputs are committed so tests run without wabt.
//go:generate sh -c "cd testdata && for f in *.wat; do wat2wasm $f -o ${f%.wat}.wasm; done"
