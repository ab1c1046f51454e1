package wasmguard

import "math"

// reader decodes the binary format; every error panics with a failure.
type reader struct {
	b []byte
	p int
}

func (r *reader) byte() byte {
	if r.p < len(r.b) {
		c := r.b[r.p]
		r.p++
		return c
	}
	r.eof()
	return 0
}

//go:noinline
func (r *reader) eof() { fail("unexpected end of input at %d", r.p) }

func (r *reader) skip(n int) {
	if n < 0 || n > len(r.b)-r.p {
		fail("unexpected end of input at %d", r.p)
	}
	r.p += n
}

func (r *reader) u32() uint32 {
	if r.p < len(r.b) && r.b[r.p] < 0x80 { // one byte: most immediates
		c := r.b[r.p]
		r.p++
		return uint32(c)
	}
	return r.u32Long()
}

func (r *reader) u32Long() uint32 {
	var v uint32
	for shift := uint(0); ; shift += 7 {
		c := r.byte()
		if shift == 28 && c > 0x0f {
			fail("u32 out of range at %d", r.p)
		}
		v |= uint32(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
}

// sleb skips a signed LEB128 of at most max bytes.
func (r *reader) sleb(max int) {
	for i := 0; i < max && r.p < len(r.b); i++ {
		c := r.b[r.p]
		r.p++
		if c < 0x80 {
			return
		}
	}
	fail("bad integer at %d", r.p)
}

// s33 decodes a block type's type index (a signed 33-bit integer).
func (r *reader) s33() int64 {
	var v int64
	for shift := uint(0); ; {
		c := r.byte()
		v |= int64(c&0x7f) << shift
		shift += 7
		if c < 0x80 {
			if c&0x40 != 0 {
				v |= -1 << shift
			}
			return v
		}
		if shift >= 35 {
			fail("block type too long at %d", r.p)
		}
	}
}

func (r *reader) name() string {
	n := int(r.u32())
	start := r.p
	r.skip(n)
	return string(r.b[start:r.p])
}

func (r *reader) valtype() {
	switch c := r.byte(); c {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
	default:
		fail("value type %#x", c)
	}
}

func (r *reader) reftype() {
	if c := r.byte(); c != 0x70 && c != 0x6f {
		fail("reference type %#x", c)
	}
}

func (r *reader) limits() {
	flags := r.byte()
	if flags > 1 {
		fail("limits flags %#x (shared or 64-bit memory)", flags)
	}
	r.u32()
	if flags == 1 {
		r.u32()
	}
}

func (r *reader) memarg() {
	if align := r.u32(); align >= 0x40 {
		fail("memory argument with a memory index (multi-memory)")
	}
	r.u32()
}

// blockType decodes a block type; a type index must name one of the module's own types.
func (w *walker) blockType() {
	r := &w.r
	if r.p < len(r.b) {
		switch r.b[r.p] {
		case 0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
			r.p++
			return
		}
	}
	if v := r.s33(); v < 0 || v >= int64(w.types) {
		fail("block type %d out of range", v)
	}
}

func (r *reader) end(what string) {
	if r.p != len(r.b) {
		fail("%s: %d trailing bytes", what, len(r.b)-r.p)
	}
}

type editKind uint8

const (
	editNone      editKind = iota
	editU32                // replace n bytes by val as an unsigned LEB128
	editRaw                // replace n bytes by raw
	editCountdown          // insert a countdown of weight val
	editCharge             // insert a charge of the length operand on the stack, shifted right by val
)

// edit replaces b[at:at+n] of the walked bytes.
type edit struct {
	at, n int
	kind  editKind
	val   uint32
	raw   []byte
}

// frame is an open block: the index of its countdown edit (-1 but for loops) and where it starts.
type frame struct{ edit, start int }

// walker decodes one section's content or one function body and records its edits.
type walker struct {
	r         reader
	edits     []edit
	stack     []frame
	shiftFrom uint32 // function indices from here shift up by one
	// types and globals count the input's types and globals: an index at or past them was
	// invalid in the input and would name the type or the countdown the rewriter adds.
	types, globals uint32
	global         uint32 // the countdown
	tick           uint32 // the imported tick function
}

func (w *walker) reset(b []byte) {
	w.r = reader{b: b}
	w.edits = w.edits[:0]
	w.stack = w.stack[:0]
}

// funcIdx decodes a function index and renumbers it.
func (w *walker) funcIdx() {
	at := w.r.p
	i := w.r.u32()
	if i >= w.shiftFrom {
		if i == math.MaxUint32 {
			fail("function index out of range")
		}
		w.edits = append(w.edits, edit{at: at, n: w.r.p - at, kind: editU32, val: i + 1})
	}
}

// typeIdx decodes a type index, which must name one of the input's types.
func (w *walker) typeIdx() {
	if i := w.r.u32(); i >= w.types {
		fail("type index %d out of range", i)
	}
}

// globalIdx decodes a global index, which must name one of the input's globals: the guest must
// never reach the countdown.
func (w *walker) globalIdx() {
	if i := w.r.u32(); i >= w.globals {
		fail("global index %d out of range", i)
	}
}

// constExpr decodes a constant expression (a global, element or data initialiser).
func (w *walker) constExpr() {
	r := &w.r
	for {
		switch op := r.byte(); op {
		case 0x0b:
			return
		case 0x41:
			r.sleb(5)
		case 0x42:
			r.sleb(10)
		case 0x43:
			r.skip(4)
		case 0x44:
			r.skip(8)
		case 0x23:
			w.globalIdx()
		case 0xd0:
			r.reftype()
		case 0xd2:
			w.funcIdx()
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended constant expressions
		case 0xfd:
			if r.u32() != 0x0c {
				fail("vector instruction in a constant expression")
			}
			r.skip(16)
		default:
			fail("opcode %#x in a constant expression", op)
		}
	}
}

func weight(n int) uint32 { return uint32(min(1+n>>unitShift, Budget)) }

// function decodes a function body (locals, then instructions), recording the renumbered
// function indices and the countdowns to insert.
func (w *walker) function(global, tick uint32) {
	r := &w.r
	w.global, w.tick = global, tick
	for range r.u32() {
		r.u32()
		r.valtype()
	}
	entry := r.p
	w.edits = append(w.edits, edit{at: entry, kind: editCountdown}) // dropped if not needed
	// prologue: no instruction that can branch or call has run yet (entered blocks aside).
	hasCall, prologue, loopFirst := false, true, false
	b := r.b
	for {
		if r.p >= len(b) {
			r.eof()
		}
		op := b[r.p]
		r.p++
		class := opClass[op]
		if class&opControl != 0 {
			prologue = false
		}
		switch class &^ opControl {
		case immNone:
		case immU32:
			if r.p < len(b) && b[r.p] < 0x80 { // the common one-byte case, inlined by hand
				r.p++
			} else {
				r.u32()
			}
		case immMemarg:
			if r.p+1 < len(b) && b[r.p] < 0x40 && b[r.p+1] < 0x80 {
				r.p += 2
			} else {
				r.memarg()
			}
		case immBlock: // block, if
			w.blockType()
			w.stack = append(w.stack, frame{edit: -1})
		case immLoop:
			start := r.p - 1
			w.blockType()
			w.stack = append(w.stack, frame{edit: len(w.edits), start: start})
			w.edits = append(w.edits, edit{at: r.p, kind: editCountdown})
			loopFirst = loopFirst || prologue
			prologue = false
		case immEnd:
			if len(w.stack) == 0 {
				r.end("function body")
				if hasCall && !loopFirst {
					w.edits[0].val = weight(len(r.b) - entry)
				} else {
					w.edits[0].kind = editNone
				}
				return
			}
			f := w.stack[len(w.stack)-1]
			w.stack = w.stack[:len(w.stack)-1]
			if f.edit >= 0 {
				w.edits[f.edit].val = weight(r.p - f.start)
			}
		case immBrTable:
			for range r.u32() {
				r.u32()
			}
			r.u32()
		case immCall: // call, return_call
			w.funcIdx()
			hasCall = true
		case immCallIndirect: // call_indirect, return_call_indirect
			w.typeIdx()
			r.u32()
			hasCall = true
		case immSelect: // select t*
			for range r.u32() {
				r.valtype()
			}
		case immS32:
			if r.p < len(b) && b[r.p] < 0x80 {
				r.p++
			} else {
				r.sleb(5)
			}
		case immS64:
			r.sleb(10)
		case immF32:
			r.skip(4)
		case immF64:
			r.skip(8)
		case immGlobal:
			w.globalIdx()
		case immRefType:
			r.reftype()
		case immRefFunc:
			w.funcIdx()
		case immMisc:
			at := r.p - 1
			switch w.misc() {
			case 8, 10, 11: // memory.init, memory.copy, memory.fill: length in bytes
				w.edits = append(w.edits, edit{at: at, kind: editCharge, val: unitShift})
			case 12, 14, 17: // table.init, table.copy, table.fill: length in elements
				w.edits = append(w.edits, edit{at: at, kind: editCharge, val: 3})
			}
		case immVector:
			w.vector()
		default:
			fail("opcode %#x at %d", op, r.p-1)
		}
	}
}

// Instruction classes by opcode: how to decode the immediates, plus opControl for instructions
// that can branch or call (they end a function's prologue).
const (
	immInvalid = iota
	immNone
	immU32
	immMemarg
	immBlock
	immLoop
	immEnd
	immBrTable
	immCall
	immCallIndirect
	immSelect
	immS32
	immS64
	immF32
	immF64
	immGlobal
	immRefType
	immRefFunc
	immMisc
	immVector

	opControl = 0x80
)

var opClass = func() (t [256]uint8) {
	set := func(class uint8, ops ...int) {
		for _, op := range ops {
			t[op] = class
		}
	}
	for op := 0x45; op <= 0xc4; op++ { // numeric instructions, sign extension included
		t[op] = immNone
	}
	set(immNone, 0x1a, 0x1b, 0xd1)                        // drop, select, ref.is_null
	set(immNone|opControl, 0x00, 0x05, 0x0f)              // unreachable, else, return
	set(immNone, 0x01)                                    // nop
	set(immBlock, 0x02)                                   // block
	set(immLoop, 0x03)                                    // loop
	set(immBlock|opControl, 0x04)                         // if
	set(immEnd|opControl, 0x0b)                           // end
	set(immU32|opControl, 0x0c, 0x0d)                     // br, br_if
	set(immBrTable|opControl, 0x0e)                       // br_table
	set(immCall|opControl, 0x10, 0x12)                    // call, return_call
	set(immCallIndirect|opControl, 0x11, 0x13)            // call_indirect, return_call_indirect
	set(immSelect, 0x1c)                                  // select t*
	set(immU32, 0x20, 0x21, 0x22, 0x25, 0x26, 0x3f, 0x40) // locals, table.get/set, memory.size/grow
	set(immGlobal, 0x23, 0x24)                            // global.get/set
	for op := 0x28; op <= 0x3e; op++ {                    // loads and stores
		t[op] = immMemarg
	}
	set(immS32, 0x41)
	set(immS64, 0x42)
	set(immF32, 0x43)
	set(immF64, 0x44)
	set(immRefType, 0xd0)
	set(immRefFunc, 0xd2)
	set(immMisc, 0xfc)
	set(immVector, 0xfd)
	return t
}()

// misc decodes the 0xfc instructions: saturating conversions, bulk memory and tables. It returns
// the sub-opcode.
func (w *walker) misc() uint32 {
	r := &w.r
	sub := r.u32()
	switch sub {
	case 0, 1, 2, 3, 4, 5, 6, 7:
	case 9, 11, 13, 15, 16, 17: // data.drop, memory.fill, elem.drop, table.grow/size/fill
		r.u32()
	case 8, 10, 12, 14: // memory.init, memory.copy, table.init, table.copy
		r.u32()
		r.u32()
	default:
		fail("opcode 0xfc %d", sub)
	}
	return sub
}

// vector decodes the 0xfd (SIMD) instructions.
func (w *walker) vector() {
	r := &w.r
	switch sub := r.u32(); {
	case sub <= 0x0b, sub == 0x5c, sub == 0x5d: // loads, store, load_zero
		r.memarg()
	case sub == 0x0c, sub == 0x0d: // v128.const, i8x16.shuffle
		r.skip(16)
	case sub >= 0x15 && sub <= 0x22: // extract/replace lane
		r.skip(1)
	case sub >= 0x54 && sub <= 0x5b: // load/store lane
		r.memarg()
		r.skip(1)
	case sub <= 0xff:
	default:
		fail("opcode 0xfd %d", sub)
	}
}

// apply appends src with the walker's edits (in order of position) to dst.
func (w *walker) apply(dst, src []byte) []byte {
	last := 0
	for i := range w.edits {
		e := &w.edits[i]
		if e.kind == editNone {
			continue
		}
		dst = append(dst, src[last:e.at]...)
		switch e.kind {
		case editU32:
			dst = appendU32(dst, e.val)
		case editRaw:
			dst = append(dst, e.raw...)
		case editCountdown:
			dst = w.countdown(dst, e.val)
		case editCharge:
			dst = w.charge(dst, e.val)
		}
		last = e.at + e.n
	}
	return append(dst, src[last:]...)
}

// countdown appends:
//
//	global.get $g  i32.const weight  i32.sub  global.set $g
//	global.get $g  i32.const 0  i32.le_s
//	if  i32.const Budget  global.set $g  call $tick  end
func (w *walker) countdown(dst []byte, weight uint32) []byte {
	dst = append(dst, 0x23)
	dst = appendU32(dst, w.global)
	dst = append(dst, 0x41)
	dst = appendS32(dst, int32(weight))
	dst = append(dst, 0x6b, 0x24)
	dst = appendU32(dst, w.global)
	return w.check(dst)
}

// check appends the test of the countdown and the reset and tick when it ran out:
//
//	global.get $g  i32.const 0  i32.le_s  if  i32.const Budget  global.set $g  call $tick  end
func (w *walker) check(dst []byte) []byte {
	dst = append(dst, 0x23)
	dst = appendU32(dst, w.global)
	dst = append(dst, 0x41, 0x00, 0x4c, 0x04, 0x40, 0x41)
	dst = appendS32(dst, Budget)
	dst = append(dst, 0x24)
	dst = appendU32(dst, w.global)
	dst = append(dst, 0x10)
	dst = appendU32(dst, w.tick)
	return append(dst, 0x0b)
}

// charge appends, before a bulk instruction whose length operand n is on top of the stack:
//
//	global.set $s  global.get $g  global.get $s  i32.const shift  i32.shr_u  i32.sub  global.set $g
//	global.get $g  i32.const 0  i32.le_s
//	if  i32.const Budget  global.set $g  call $tick  end
//	global.get $s
//
// n is unsigned: a length of 4 GiB - 1 charges 2^26 units, and the countdown (at most Budget)
// cannot wrap around to a positive value.
func (w *walker) charge(dst []byte, shift uint32) []byte {
	s := w.global + 1
	dst = append(dst, 0x24)
	dst = appendU32(dst, s)
	dst = append(dst, 0x23)
	dst = appendU32(dst, w.global)
	dst = append(dst, 0x23)
	dst = appendU32(dst, s)
	dst = append(dst, 0x41)
	dst = appendS32(dst, int32(shift))
	dst = append(dst, 0x76, 0x6b, 0x24) // i32.shr_u, i32.sub, global.set
	dst = appendU32(dst, w.global)
	dst = w.check(dst)
	dst = append(dst, 0x23)
	return appendU32(dst, s)
}

func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// putPaddedU32 writes v as a 5-byte LEB128 (a valid, non-minimal encoding) into b[:5].
func putPaddedU32(b []byte, v uint32) {
	for i := range 4 {
		b[i] = byte(v)&0x7f | 0x80
		v >>= 7
	}
	b[4] = byte(v)
}

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}
