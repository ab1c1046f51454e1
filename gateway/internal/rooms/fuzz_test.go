package rooms_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/rooms"
)

// FuzzDecodeBody: any bytes either decode to an object or fail with a 4xx *Error; the values
// then go through the integer parser without panicking.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"action":"join","displayName":"A","clientMaxSize":3}`,
		`{"action":"status","event":"Session.connectionCreated","state":"waiting","connections":"3abc","sendStreams":1.7,"recvStreams":"0x1f"}`,
		`{"context":{"value":"v","alg":"a","wrappedKey":"k"},"roomOwner":"A","maxSize":2}`,
		`{"deleteRoomTokens":["a","b"]}`, `{"domains":[{"domain":"a.com","count":1}]}`,
		`[1,2]`, `{"a":`, `null`, `"str"`, `{"n":1e400}`, `{"n":-9007199254740993}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := rooms.DecodeBody(data, 1<<16)
		if err != nil {
			var e *rooms.Error
			require.True(t, errors.As(err, &e))
			require.True(t, e.Code >= 400 && e.Code < 500, "code %d", e.Code)
			return
		}
		require.NotNil(t, m)
		for _, v := range m {
			if n, ok := rooms.ParseIntJS(v); ok {
				require.Less(t, n, int64(1)<<53)
				require.Greater(t, n, -(int64(1) << 53))
			}
			_ = json.Valid(v)
		}
	})
}

// FuzzParseHawkHeader: the parser never panics, and what it accepts has the required attributes
// and no quote or backslash in any value.
func FuzzParseHawkHeader(f *testing.F) {
	for _, s := range []string{
		`Hawk id="dh37", ts="1353832234", nonce="j4h3g2", hash="Yi9L", ext="x", mac="6R4r"`,
		`Hawk id="a", ts="1", nonce="n", mac="m", app="x", dlg="y"`,
		`Hawk id="a"`, `Hawk`, `Hawk id=`, `Hawk ="x"`, `Hawk id="a",,`, `Hawk id="a\"b"`, "Hawk id=\"\xff\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		a, err := rooms.ParseHawkHeader(h)
		if err != nil {
			return
		}
		require.NotEmpty(t, a.ID)
		require.NotEmpty(t, a.TS)
		require.NotEmpty(t, a.Nonce)
		require.NotEmpty(t, a.MAC)
		for _, v := range []string{a.ID, a.TS, a.Nonce, a.MAC, a.Hash, a.Ext, a.App, a.Dlg} {
			require.NotContains(t, v, `"`)
			require.NotContains(t, v, `\`)
		}
	})
}

func TestParseIntJS(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{`3`, 3, true}, {`3.9`, 3, true}, {`-2`, -2, true}, {`"3abc"`, 3, true}, {`"  7"`, 7, true},
		{`"0x1f"`, 31, true}, {`"-4"`, -4, true}, {`"abc"`, 0, false}, {`null`, 0, false}, {`true`, 0, false},
		{`[]`, 0, false}, {`""`, 0, false}, {`1e300`, 0, false}, {`"99999999999999999999"`, 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := rooms.ParseIntJS(json.RawMessage(tc.in))
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}
