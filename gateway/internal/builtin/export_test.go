package builtin

// ReadFileForTest returns embed.FS.ReadFile's copy of module id.
func ReadFileForTest(id string) ([]byte, error) { return files.ReadFile("wasm/" + id + ".wasm") }
