package wire

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// FuzzMatchesProtowire checks the subset against protowire on arbitrary input.
func FuzzMatchesProtowire(f *testing.F) {
	f.Add([]byte{0x0a, 0x03, 'a', 'b', 'c'}, uint64(300))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, uint64(1<<63))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, v uint64) {
		v1, n1 := ConsumeVarint(b)
		v2, n2 := protowire.ConsumeVarint(b)
		if (n1 < 0) != (n2 < 0) || (n1 >= 0 && (v1 != v2 || n1 != n2)) {
			t.Fatalf("varint %x: %d,%d vs %d,%d", b, v1, n1, v2, n2)
		}
		num1, typ1, m1 := ConsumeTag(b)
		num2, typ2, m2 := protowire.ConsumeTag(b)
		// Stricter than protowire (numbers above 2^29-1 are rejected); never laxer.
		if m1 >= 0 && (m2 < 0 || int32(num1) != int32(num2) || int8(typ1) != int8(typ2) || m1 != m2) {
			t.Fatalf("tag %x: %d,%d,%d vs %d,%d,%d", b, num1, typ1, m1, num2, typ2, m2)
		}
		bb1, k1 := ConsumeBytes(b)
		bb2, k2 := protowire.ConsumeBytes(b)
		if (k1 < 0) != (k2 < 0) || (k1 >= 0 && (string(bb1) != string(bb2) || k1 != k2)) {
			t.Fatalf("bytes %x", b)
		}
		if string(AppendVarint(nil, v)) != string(protowire.AppendVarint(nil, v)) || SizeVarint(v) != protowire.SizeVarint(v) {
			t.Fatalf("append %d", v)
		}
	})
}
