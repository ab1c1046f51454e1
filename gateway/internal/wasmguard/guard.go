// Package wasmguard makes a WebAssembly module stoppable at a deadline without wazero's
// termination checks.
//
// wazero's WithCloseOnContextDone compiles, at every loop header, an indirect call to a trampoline
// that checks an exit code: about 38 ns per loop iteration, and Go's wasm backend runs every
// function that makes calls through a loop. [Instrument] rewrites the binary instead: it adds a
// mutable i32 global (a countdown) and one imported function, [ImportModule].[ImportName], and
// at every countdown point subtracts the point's weight from the countdown; when the countdown
// reaches zero it is reset to [Budget] and the import is called. The host's [tick] (see
// [Instantiate]) checks the call's context and aborts the call when it is done.
//
// Bulk memory and table instructions (memory.fill, memory.copy, memory.init, table.fill,
// table.copy, table.init) do work proportional to their length operand, not to their size in the
// code: before each, the rewriter charges the countdown one unit per 64 bytes (8 table elements)
// of that length, through a second added global that holds the operand meanwhile. A loop of 64 MiB
// fills thus reaches the import at every iteration instead of once per 16,384 iterations.
//
// Countdown points are every loop header and the entry of every function that makes a call but
// does not start with a loop (a loop-free call tree can do exponential work without passing a
// loop). Between two consecutive points of one frame execution only moves forward, so it runs at
// most the code of the region the point guards; a point's weight is one plus that region's size
// in 64-byte units (the loop's body, or the function's body at entry). The import is thus called
// at least once per [Budget] units, about 1 MiB of straight-line guest code, plus whatever
// loop-free leaf functions are called in between. That bounds how long a guest runs between two
// returns to Go: the goroutine running compiled guest code cannot be preempted, so a guest that
// never returned to Go would block the next stop-the-world garbage collection forever; the host
// call is a preemption point.
//
// Adding an imported function shifts the index of every function the module defines by one: the
// rewriter renumbers every call, return_call and ref.func, element segments, global, element
// and data initialisers, exports, the start function and the "name" section (DWARF sections,
// whose code offsets no longer hold, are dropped). It decodes every instruction of WebAssembly
// 2.0 (MVP, sign extension, saturating conversions, bulk memory, reference types, multi-value,
// SIMD) and tail calls; anything else (threads, exception handling, GC, multi-memory, a module
// already importing [ImportModule], malformed input) is an error, and the host should run that
// module with wazero's checks instead. So is a type or global index past the input's own: it was
// invalid, and would now name the added type or the countdown (a guest that could set the
// countdown would never be stopped). The guest cannot reach the import either: no renumbered
// index lands on it.
package wasmguard

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

const (
	// ImportModule and ImportName name the function the instrumented module imports, of type
	// () -> ().
	ImportModule = "teragate_guard"
	ImportName   = "tick"
	// Budget is the countdown's start value, in units of 64 bytes of guest code.
	Budget = 1 << 14
	// unitShift: a point's weight is 1 + (bytes it guards) >> unitShift.
	unitShift = 6
)

// ErrUnsupported is returned (wrapped) for a module Instrument cannot rewrite: malformed, or
// using a feature it does not decode.
var ErrUnsupported = errors.New("wasmguard: cannot instrument")

// Instantiate instantiates the host module [ImportModule] in rt. Its tick panics with a
// *sys.ExitError (ExitCodeDeadlineExceeded, or ExitCodeContextCanceled) when the context of the
// call it runs in is done; wazero returns that error from the guest call, unwrapped.
func Instantiate(ctx context.Context, rt wazero.Runtime) error {
	_, err := rt.NewHostModuleBuilder(ImportModule).
		NewFunctionBuilder().WithGoFunction(api.GoFunc(tick), nil, nil).Export(ImportName).
		Instantiate(ctx)
	return err
}

// tick is called by a guest about once per Budget units of work. It must stay cheap when ctx is
// not done: a non-blocking receive.
func tick(ctx context.Context, _ []uint64) {
	select {
	case <-ctx.Done():
	default:
		return
	}
	code := sys.ExitCodeContextCanceled
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		code = sys.ExitCodeDeadlineExceeded
	}
	panic(sys.NewExitError(code))
}

// Section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
)

// rank orders the known sections (the binary format requires this order); 0 for unknown ids.
func rank(id byte) int {
	switch id {
	case secType, secImport, secFunction, secTable, secMemory, secGlobal, secExport, secStart, secElement:
		return int(id) * 2
	case secDataCount:
		return secElement*2 + 1
	case secCode, secData:
		return int(id) * 2
	}
	return 0
}

// failure is the panic value used inside the rewriter; Instrument recovers it as an error.
type failure struct{ err error }

func fail(format string, args ...any) {
	panic(failure{fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)})
}

// module holds what the rewrite needs to know across sections.
type module struct {
	out         []byte
	typeIdx     uint32 // the () -> () type
	funcImports uint32 // the tick function's index; defined functions shift up by one
	globalIdx   uint32 // the countdown
	haveType    bool
	haveImport  bool
	haveGlobal  bool
	w           walker
	scratch     []byte
}

// Instrument returns the instrumented copy of wasm (see the package documentation), or an error
// wrapping [ErrUnsupported]. wasm itself is not modified.
func Instrument(wasm []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(failure)
			if !ok {
				panic(r)
			}
			out, err = nil, f.err
		}
	}()
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" || string(wasm[4:8]) != "\x01\x00\x00\x00" {
		fail("not a WebAssembly 1.0 binary")
	}
	m := &module{out: make([]byte, 0, len(wasm)+len(wasm)/8+64)}
	m.out = append(m.out, wasm[:8]...)
	r := reader{b: wasm, p: 8}
	last := 0
	for r.p < len(r.b) {
		id := r.byte()
		size := r.u32()
		if uint64(size) > uint64(len(r.b)-r.p) {
			fail("section %d: size %d past the end", id, size)
		}
		body := r.b[r.p : r.p+int(size)]
		r.p += int(size)
		if id == secCustom {
			m.custom(body)
			continue
		}
		rk := rank(id)
		if rk == 0 {
			fail("unsupported section id %d", id)
		}
		if rk <= last {
			fail("section %d out of order", id)
		}
		last = rk
		m.addMissing(rk)
		switch id {
		case secType:
			m.types(body)
		case secImport:
			m.imports(body)
		case secGlobal:
			m.globals(body)
		case secExport:
			m.exports(body)
		case secStart:
			m.start(body)
		case secElement:
			m.elements(body)
		case secCode:
			m.code(body)
		case secData:
			m.data(body)
		case secTable:
			m.tables(body)
		case secFunction:
			m.functions(body)
		case secMemory, secDataCount:
			m.section(id, body)
		}
	}
	m.addMissing(math.MaxInt)
	return m.out, nil
}

// addMissing emits the type, import and global sections the module lacks, before the first
// section that must follow them (rk is that section's rank).
func (m *module) addMissing(rk int) {
	if !m.haveType && rk > rank(secType) {
		m.types([]byte{0})
	}
	if !m.haveImport && rk > rank(secImport) {
		m.imports([]byte{0})
	}
	if !m.haveGlobal && rk > rank(secGlobal) {
		m.globals([]byte{0})
	}
}

// section appends a section with the given content.
func (m *module) section(id byte, content []byte) {
	m.out = append(m.out, id)
	m.out = appendU32(m.out, uint32(len(content)))
	m.out = append(m.out, content...)
}

// rewritten applies the walker's edits to content and appends it as section id.
func (m *module) rewritten(id byte, content []byte) {
	m.scratch = m.w.apply(m.scratch[:0], content)
	m.section(id, m.scratch)
}

func (m *module) countEdit(r *reader, add uint32) uint32 {
	at := r.p
	n := r.u32()
	if n > math.MaxUint32-add {
		fail("count overflow")
	}
	m.w.edits = append(m.w.edits, edit{at: at, n: r.p - at, kind: editU32, val: n + add})
	return n
}

func (m *module) types(b []byte) {
	m.haveType = true
	m.w.reset(b)
	r := &m.w.r
	n := m.countEdit(r, 1)
	for range n {
		if r.byte() != 0x60 {
			fail("type section: only function types are supported")
		}
		for range 2 {
			for range r.u32() {
				r.valtype()
			}
		}
	}
	r.end("type section")
	m.typeIdx = n
	m.w.types = n
	m.w.edits = append(m.w.edits, edit{at: len(b), kind: editRaw, raw: []byte{0x60, 0, 0}})
	m.rewritten(secType, b)
}

func (m *module) imports(b []byte) {
	m.haveImport = true
	m.w.reset(b)
	r := &m.w.r
	n := m.countEdit(r, 1)
	var funcs, globals uint32
	for range n {
		mod := r.name()
		r.name()
		if mod == ImportModule {
			fail("the module already imports from %q", ImportModule)
		}
		switch kind := r.byte(); kind {
		case 0x00:
			m.w.typeIdx()
			funcs++
		case 0x01:
			r.reftype()
			r.limits()
		case 0x02:
			r.limits()
		case 0x03:
			r.valtype()
			r.byte()
			globals++
		default:
			fail("import kind %#x", kind)
		}
	}
	r.end("import section")
	m.funcImports = funcs
	m.globalIdx = globals // plus the defined globals, counted by globals()
	m.w.globals = globals
	m.w.shiftFrom = funcs
	imp := appendName(nil, ImportModule)
	imp = appendName(imp, ImportName)
	imp = append(imp, 0x00)
	imp = appendU32(imp, m.typeIdx)
	m.w.edits = append(m.w.edits, edit{at: len(b), kind: editRaw, raw: imp})
	m.rewritten(secImport, b)
}

func (m *module) globals(b []byte) {
	m.haveGlobal = true
	m.w.reset(b)
	r := &m.w.r
	n := m.countEdit(r, 2)
	if n > math.MaxUint32-2-m.globalIdx {
		fail("too many globals")
	}
	m.w.globals = m.globalIdx + n
	for range n {
		r.valtype()
		r.byte()
		m.w.constExpr()
	}
	r.end("global section")
	m.globalIdx += n
	g := []byte{0x7f, 0x01, 0x41}
	g = appendS32(g, Budget)
	g = append(g, 0x0b)
	g = append(g, 0x7f, 0x01, 0x41, 0x00, 0x0b) // the scratch global of bulk-operation charges
	m.w.edits = append(m.w.edits, edit{at: len(b), kind: editRaw, raw: g})
	m.rewritten(secGlobal, b)
}

// functions copies the function section, checking its type indices.
func (m *module) functions(b []byte) {
	m.w.reset(b)
	for range m.w.r.u32() {
		m.w.typeIdx()
	}
	m.w.r.end("function section")
	m.section(secFunction, b)
}

// tables copies the table section, refusing initialiser expressions (typed function references).
func (m *module) tables(b []byte) {
	r := reader{b: b}
	for range r.u32() {
		r.reftype()
		r.limits()
	}
	r.end("table section")
	m.section(secTable, b)
}

func (m *module) exports(b []byte) {
	m.w.reset(b)
	r := &m.w.r
	for range r.u32() {
		r.name()
		switch kind := r.byte(); kind {
		case 0x00:
			m.w.funcIdx()
		case 0x01, 0x02:
			r.u32()
		case 0x03:
			m.w.globalIdx()
		default:
			fail("export kind %#x", kind)
		}
	}
	r.end("export section")
	m.rewritten(secExport, b)
}

func (m *module) start(b []byte) {
	m.w.reset(b)
	m.w.funcIdx()
	m.w.r.end("start section")
	m.rewritten(secStart, b)
}

func (m *module) elements(b []byte) {
	m.w.reset(b)
	r := &m.w.r
	for range r.u32() {
		flags := r.u32()
		if flags > 7 {
			fail("element segment flags %d", flags)
		}
		if flags&3 == 2 { // explicit table index
			r.u32()
		}
		if flags&1 == 0 { // active: offset
			m.w.constExpr()
		}
		exprs := flags&4 != 0
		if flags&3 != 0 { // elemkind or reftype
			if exprs {
				r.reftype()
			} else if k := r.byte(); k != 0x00 {
				fail("element kind %#x", k)
			}
		}
		for range r.u32() {
			if exprs {
				m.w.constExpr()
			} else {
				m.w.funcIdx()
			}
		}
	}
	r.end("element section")
	m.rewritten(secElement, b)
}

func (m *module) data(b []byte) {
	m.w.reset(b)
	r := &m.w.r
	for range r.u32() {
		switch flags := r.u32(); flags {
		case 0:
			m.w.constExpr()
		case 1:
		case 2:
			r.u32()
			m.w.constExpr()
		default:
			fail("data segment flags %d", flags)
		}
		r.skip(int(r.u32()))
	}
	r.end("data section")
	m.rewritten(secData, b)
}

// code rewrites every function body, each with its new size.
func (m *module) code(b []byte) {
	r := reader{b: b}
	n := r.u32()
	start := len(m.out)
	m.out = append(m.out, secCode, 0, 0, 0, 0, 0) // size patched below, padded to 5 bytes
	m.out = appendU32(m.out, n)
	for range n {
		size := r.u32()
		if uint64(size) > uint64(len(b)-r.p) {
			fail("function body past the end of the code section")
		}
		body := b[r.p : r.p+int(size)]
		r.p += int(size)
		m.w.reset(body)
		m.w.function(m.globalIdx, m.funcImports)
		m.scratch = m.w.apply(m.scratch[:0], body)
		m.out = appendU32(m.out, uint32(len(m.scratch)))
		m.out = append(m.out, m.scratch...)
	}
	r.end("code section")
	size := len(m.out) - start - 6
	if size > math.MaxUint32 {
		fail("code section too large")
	}
	putPaddedU32(m.out[start+1:start+6], uint32(size))
}

// custom keeps custom sections, renumbers the "name" section (or drops it if it does not
// decode) and drops DWARF sections.
func (m *module) custom(b []byte) {
	r := reader{b: b}
	name := r.name()
	switch {
	case len(name) > 7 && name[:7] == ".debug_":
		return
	case name == "name":
		if nb, ok := m.names(b, r.p); ok {
			m.section(secCustom, nb)
		}
		return
	}
	m.section(secCustom, b)
}

// names renumbers the function names (subsection 1), local names (2) and label names (3, of the
// extended name section) of a name section whose
// content starts at p in b. It reports false if the section does not decode, or if it comes
// before the import section (it must follow the data section).
func (m *module) names(b []byte, p int) (out []byte, ok bool) {
	if !m.haveImport {
		return nil, false
	}
	defer func() {
		if r := recover(); r != nil {
			if _, isFailure := r.(failure); !isFailure {
				panic(r)
			}
			out, ok = nil, false
		}
	}()
	out = append([]byte(nil), b[:p]...)
	r := reader{b: b, p: p}
	for r.p < len(b) {
		id := r.byte()
		size := r.u32()
		if uint64(size) > uint64(len(b)-r.p) {
			fail("name subsection past the end")
		}
		sub := b[r.p : r.p+int(size)]
		r.p += int(size)
		if id == 1 || id == 2 || id == 3 { // function, local and label names, by function index
			var w walker
			w.reset(sub)
			w.shiftFrom = m.funcImports
			for range w.r.u32() {
				w.funcIdx()
				if id == 1 {
					w.r.name()
					continue
				}
				for range w.r.u32() {
					w.r.u32()
					w.r.name()
				}
			}
			w.r.end("name subsection")
			sub = w.apply(nil, sub)
		}
		out = append(out, id)
		out = appendU32(out, uint32(len(sub)))
		out = append(out, sub...)
	}
	return out, true
}
