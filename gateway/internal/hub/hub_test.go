package hub

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/metrics"
)

// readFrame reads one unmasked server frame.
func readFrame(r *bufio.Reader) (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(r, h[:]); err != nil {
		return
	}
	op = h[0] & 0x0f
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err = io.ReadFull(r, b[:]); err != nil {
			return
		}
		n = int(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err = io.ReadFull(r, b[:]); err != nil {
			return
		}
		n = int(binary.BigEndian.Uint64(b[:]))
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(r, payload)
	return
}

func newTestHub(t *testing.T, cfg Config) *Hub {
	t.Helper()
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	return New(cfg)
}

func TestFrameEncoding(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 200000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(i)
			}
			op, got, err := readFrame(bufio.NewReader(bytesReader(TextFrame(p))))
			require.NoError(t, err)
			require.Equal(t, byte(opText), op)
			require.Equal(t, p, got)
		})
	}
	op, got, err := readFrame(bufio.NewReader(bytesReader(closeFrame(4000, "CMD_CLIENT_DISCONNECT"))))
	require.NoError(t, err)
	require.Equal(t, byte(opClose), op)
	require.Equal(t, uint16(4000), binary.BigEndian.Uint16(got))
	require.Equal(t, "CMD_CLIENT_DISCONNECT", string(got[2:]))
}

type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func bytesReader(b []byte) io.Reader { return &byteReader{b: b} }

func TestSendOrderAndClose(t *testing.T) {
	h := newTestHub(t, Config{})
	srv, cli := net.Pipe()
	c := h.Register(srv, directory.KindUser, "u1", FormatJSON, directory.Access{})
	r := bufio.NewReader(cli)
	go func() {
		for i := 0; i < 500; i++ {
			c.Send(TextFrame([]byte(fmt.Sprint(i))))
		}
		c.Close(CloseDisconnect, "CMD_CLIENT_DISCONNECT", metrics.DisconnectCommand)
	}()
	for i := 0; i < 500; i++ {
		op, p, err := readFrame(r)
		require.NoError(t, err)
		require.Equal(t, byte(opText), op)
		require.Equal(t, fmt.Sprint(i), string(p))
	}
	op, p, err := readFrame(r)
	require.NoError(t, err)
	require.Equal(t, byte(opClose), op)
	require.Equal(t, uint16(CloseDisconnect), binary.BigEndian.Uint16(p))
	require.False(t, c.Send(TextFrame([]byte("late"))), "nothing is accepted after close")
	require.Equal(t, metrics.DisconnectCommand, c.CloseReason())
	require.Equal(t, 1, h.Count(directory.KindUser))
	require.True(t, h.Remove(c))
	require.False(t, h.Remove(c))
	require.Equal(t, 0, h.Count(0))
}

// TestSlowConsumer: a client that never reads is disconnected once its queue overflows, and a
// client sharing the hub keeps receiving everything.
func TestSlowConsumer(t *testing.T) {
	h := newTestHub(t, Config{MaxQueueFrames: 16, CloseGrace: 50 * time.Millisecond})
	slowSrv, slowCli := net.Pipe()
	defer slowCli.Close()
	fastSrv, fastCli := net.Pipe()
	slow := h.Register(slowSrv, directory.KindUser, "slow", FormatJSON, directory.Access{})
	fast := h.Register(fastSrv, directory.KindUser, "fast", FormatJSON, directory.Access{})

	const n = 200
	got := make(chan int, 1)
	go func() {
		r := bufio.NewReader(fastCli)
		i := 0
		for ; i < n; i++ {
			if _, _, err := readFrame(r); err != nil {
				break
			}
		}
		got <- i
	}()
	accepted := 0
	for i := 0; i < n; i++ {
		f := TextFrame([]byte(fmt.Sprint(i)))
		if slow.Send(f) {
			accepted++
		}
		require.True(t, fast.Send(f))
		if i%8 == 0 {
			time.Sleep(time.Millisecond) // let the fast reader keep up
		}
	}
	require.Equal(t, n, <-got, "the fast client got every frame")
	require.Less(t, accepted, n)
	require.Equal(t, metrics.DisconnectSlowConsumer, slow.CloseReason())
	// The stuck write is abandoned after the close grace and the connection torn down.
	_, err := slowSrv.Write([]byte{0})
	require.Eventually(t, func() bool { _, err = slowSrv.Write([]byte{0}); return err != nil }, 5*time.Second, 10*time.Millisecond)
}

func TestPingAndPongTimeout(t *testing.T) {
	h := newTestHub(t, Config{PingInterval: 50 * time.Millisecond, PongTimeout: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)

	// alive answers (Touch), silent never does.
	aliveSrv, aliveCli := net.Pipe()
	silentSrv, silentCli := net.Pipe()
	alive := h.Register(aliveSrv, directory.KindDevice, "alive", FormatJSON, directory.Access{})
	silent := h.Register(silentSrv, directory.KindDevice, "silent", FormatJSON, directory.Access{})
	var pings sync.WaitGroup
	pings.Add(1)
	go func() {
		r := bufio.NewReader(aliveCli)
		first := true
		for {
			op, _, err := readFrame(r)
			if err != nil {
				return
			}
			if op == opPing {
				alive.Touch()
				if first {
					first = false
					pings.Done()
				}
			}
		}
	}()
	go func() { _, _ = io.Copy(io.Discard, silentCli) }()
	pings.Wait()
	require.Eventually(t, func() bool { return silent.CloseReason() == metrics.DisconnectPongTimeout }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(400 * time.Millisecond)
	require.Equal(t, metrics.DisconnectClient, alive.CloseReason(), "a client answering pings stays")
}

// TestHubHammer registers, looks up and removes connections from many goroutines.
func TestHubHammer(t *testing.T) {
	h := newTestHub(t, Config{})
	p, n := 8, 500
	if testing.Short() {
		n = 100
	}
	var wg sync.WaitGroup
	for g := 0; g < p; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var scratch []*Conn
			for i := 0; i < n; i++ {
				srv, cli := net.Pipe()
				uuid := fmt.Sprintf("u%d", i%17)
				c := h.Register(srv, directory.Kind(1+i%3), uuid, FormatJSON, directory.Access{})
				scratch = h.AppendKind(scratch[:0], directory.Kind(1+i%3))
				scratch = h.AppendEntity(scratch[:0], 0, uuid)
				require.NotEmpty(t, scratch)
				require.True(t, h.Remove(c))
				srv.Close()
				cli.Close()
			}
		}(g)
	}
	wg.Wait()
	require.Equal(t, 0, h.Count(0))
}
