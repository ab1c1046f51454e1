package pdk

import protowire "github.com/teragate/teragate/sdk/pdk/internal/wire"

// field is one decoded protobuf field: its number, wire type and either a varint or a
// length-delimited slice (fixed-width values are kept in v as well).
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

// nextField decodes the field at the start of b and returns it with the number of bytes it used,
// or n < 0 when b is malformed.
func nextField(b []byte) (f field, n int) {
	num, typ, tn := protowire.ConsumeTag(b)
	if tn < 0 {
		return f, -1
	}
	f.num, f.typ = num, typ
	rest := b[tn:]
	var m int
	switch typ {
	case protowire.VarintType:
		f.v, m = protowire.ConsumeVarint(rest)
	case protowire.BytesType:
		f.b, m = protowire.ConsumeBytes(rest)
	case protowire.Fixed32Type:
		var x uint32
		x, m = protowire.ConsumeFixed32(rest)
		f.v = uint64(x)
	case protowire.Fixed64Type:
		f.v, m = protowire.ConsumeFixed64(rest)
	default: // groups are not used by any teragate or OpenTera message
		m = -1
	}
	if m < 0 {
		return f, -1
	}
	return f, tn + m
}

// walk calls fn for every field of the message b, in order, and reports whether b was well formed.
func walk(b []byte, fn func(f *field)) bool {
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			return false
		}
		fn(&f)
		b = b[n:]
	}
	return true
}

// lastBytes returns the last length-delimited occurrence of field num in b (proto3: the last
// value wins), or nil.
func lastBytes(b []byte, num protowire.Number) []byte {
	var out []byte
	walk(b, func(f *field) {
		if f.num == num && f.typ == protowire.BytesType {
			out = f.b
		}
	})
	return out
}

// lastVarint returns the last varint occurrence of field num in b, or 0.
func lastVarint(b []byte, num protowire.Number) uint64 {
	var out uint64
	walk(b, func(f *field) {
		if f.num == num && f.typ == protowire.VarintType {
			out = f.v
		}
	})
	return out
}

// allBytes returns every length-delimited occurrence of field num in b (a repeated string or
// message), or nil.
func allBytes(b []byte, num protowire.Number) [][]byte {
	var out [][]byte
	walk(b, func(f *field) {
		if f.num == num && f.typ == protowire.BytesType {
			out = append(out, f.b)
		}
	})
	return out
}

// appendString appends field num as a string unless s is empty (proto3 default).
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendBytes appends field num as bytes unless v is empty.
func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// appendStrings appends every element of a repeated string field (empty strings included).
func appendStrings(b []byte, num protowire.Number, ss []string) []byte {
	for _, s := range ss {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	return b
}

// appendVarint appends field num as a varint unless v is zero.
func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendBool appends field num as a bool unless it is false.
func appendBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	return appendVarint(b, num, 1)
}

// appendMessage appends field num as an embedded message built by fn (always present, even when
// empty: presence matters for oneofs and for messages whose emptiness means something).
func appendMessage(b []byte, num protowire.Number, fn func(b []byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	// Reserve one length byte, the usual case; move the body when the length needs more.
	at := len(b)
	b = append(b, 0)
	b = fn(b)
	n := len(b) - at - 1
	if n < 0x80 {
		b[at] = byte(n)
		return b
	}
	size := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, size-1)...)
	copy(b[at+size:], b[at+1:at+1+n])
	protowire.AppendVarint(b[:at], uint64(n))
	return b
}
