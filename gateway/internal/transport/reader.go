package transport

import (
	"encoding/binary"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/teragate/teragate/gateway/internal/hub"
	"github.com/teragate/teragate/gateway/internal/metrics"
)

// Reading a client's frames. gorilla/websocket upgrades the connection; its frames are then read
// here, straight from the net.Conn, for the sake of an idle connection's memory: its one
// goroutine waits for the next frame header in a shallow call (readFrames → need → the
// connection's Read), so its stack stays at the runtime's 2 KiB minimum, where waiting inside
// gorilla's NextReader (advanceFrame, bufio, then the same Read) needed 4 KiB stacks. Pongs, the
// only frames an idle client sends, are handled in that same frame too.
//
// The checks are those gorilla makes on a server connection (RFC 6455 §5): the client must mask,
// no extension is negotiated (no RSV bit may be set), control frames are final and at most 125
// bytes, continuation frames continue a message, close codes and close texts are valid. A
// problem is answered with a close frame 1002 carrying the same texts gorilla sends; a data
// message longer than the read limit with 1009; a client's close is echoed with its code.

// Websocket opcodes a client may send.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// readBufSize holds one whole control frame: a 2-byte header, a 4-byte mask key and at most 125
// bytes of payload. Data frames are read through it in chunks.
const readBufSize = 144

// controlWait bounds the write of a close frame the reader answers with (gorilla's writeWait).
const controlWait = time.Second

// errLength is returned for a frame length with its most significant bit set (gorilla answers
// it with its read-limit error, without a close frame).
var errLength = websocket.ErrReadLimit

// frameReader buffers the bytes read from a client's connection: buf[r:w] are read and not
// consumed yet.
type frameReader struct {
	nc   net.Conn
	buf  []byte
	r, w int
}

// need reads until at least n (≤ len(buf)) bytes are buffered.
func (f *frameReader) need(n int) error {
	for f.w-f.r < n {
		if f.r > 0 {
			f.w = copy(f.buf, f.buf[f.r:f.w])
			f.r = 0
		}
		m, err := f.nc.Read(f.buf[f.w:])
		f.w += m
		if err != nil && f.w-f.r < n {
			return err
		}
	}
	return nil
}

// take consumes and unmasks up to n (> 0) bytes of a frame's payload whose first pos bytes were
// consumed already; it returns at least one byte.
func (f *frameReader) take(n int64, key [4]byte, pos int64) ([]byte, error) {
	if f.w == f.r {
		if err := f.need(1); err != nil {
			return nil, err
		}
	}
	m := int(min(int64(f.w-f.r), n))
	p := f.buf[f.r : f.r+m]
	f.r += m
	unmask(key, pos, p)
	return p, nil
}

func unmask(key [4]byte, pos int64, p []byte) {
	k := int(pos & 3)
	for i := range p {
		p[i] ^= key[k]
		k = (k + 1) & 3
	}
}

// readFrames reads and answers the client's frames until the connection ends, and returns why.
func (t *Transport) readFrames(f *frameReader, c *hub.Conn) error {
	// inMsg: a data message was started and its final frame is still to come; msgOp its opcode,
	// msgLen its length so far, text its bytes so far when it is a text message.
	var (
		inMsg  bool
		msgOp  byte
		msgLen int64
		text   []byte
	)
	for {
		// An idle connection waits here.
		if err := f.need(2); err != nil {
			return err
		}
		b0, b1 := f.buf[f.r], f.buf[f.r+1]
		f.r += 2
		op, fin := b0&0xf, b0&0x80 != 0
		n := int64(b1 & 0x7f)
		if b0&0x70 != 0 || b1&0x80 == 0 || !headerValid(op, fin, n, inMsg) {
			return protocolError(f.nc, headerProblems(b0, b1, inMsg))
		}
		switch n {
		case 126:
			if err := f.need(2); err != nil {
				return err
			}
			n = int64(binary.BigEndian.Uint16(f.buf[f.r:]))
			f.r += 2
		case 127:
			if err := f.need(8); err != nil {
				return err
			}
			u := binary.BigEndian.Uint64(f.buf[f.r:])
			f.r += 8
			if u>>63 != 0 {
				return errLength
			}
			n = int64(u)
		}
		if err := f.need(4); err != nil {
			return err
		}
		var key [4]byte
		copy(key[:], f.buf[f.r:f.r+4])
		f.r += 4

		if op >= opClose {
			if err := f.need(int(n)); err != nil {
				return err
			}
			p := f.buf[f.r : f.r+int(n)]
			f.r += int(n)
			unmask(key, 0, p)
			if op == opClose {
				return closeReceived(f.nc, p)
			}
			c.Touch()
			if op == opPing {
				c.Pong(p)
			}
			continue
		}

		// A data frame.
		if op != opContinuation {
			inMsg, msgOp, msgLen = true, op, 0
		}
		msgLen += n
		if msgLen < 0 || msgLen > t.cfg.ReadLimit {
			if msgLen >= 0 {
				writeClose(f.nc, websocket.CloseMessageTooBig, "")
			}
			return websocket.ErrReadLimit
		}
		for pos := int64(0); pos < n; {
			p, err := f.take(n-pos, key, pos)
			if err != nil {
				return err
			}
			if msgOp == opText {
				text = append(text, p...)
			}
			pos += int64(len(p))
		}
		if !fin {
			continue
		}
		inMsg = false
		c.Touch()
		valid := msgOp != opText || utf8.Valid(text)
		text = nil
		if !valid {
			// Reading goes on until the client answers the close (or the hub gives up on it).
			c.Close(websocket.CloseInvalidFramePayloadData, "text message is not UTF-8", metrics.DisconnectProtocol)
			continue
		}
		c.Send(notAllowedFrame)
	}
}

// headerValid reports whether a frame's opcode, FIN bit and 7-bit length fit the message in
// progress (inMsg).
func headerValid(op byte, fin bool, n int64, inMsg bool) bool {
	switch op {
	case opClose, opPing, opPong:
		return n <= 125 && fin
	case opText, opBinary:
		return !inMsg
	case opContinuation:
		return inMsg
	}
	return false
}

// headerProblems lists everything wrong with a frame's first two bytes, as gorilla words it.
func headerProblems(b0, b1 byte, inMsg bool) string {
	var ps []string
	for i, bit := range []byte{0x40, 0x20, 0x10} {
		if b0&bit != 0 {
			ps = append(ps, "RSV"+strconv.Itoa(i+1)+" set")
		}
	}
	op, fin := b0&0xf, b0&0x80 != 0
	switch op {
	case opClose, opPing, opPong:
		if b1&0x7f > 125 {
			ps = append(ps, "len > 125 for control")
		}
		if !fin {
			ps = append(ps, "FIN not set on control")
		}
	case opText, opBinary:
		if inMsg {
			ps = append(ps, "data before FIN")
		}
	case opContinuation:
		if !inMsg {
			ps = append(ps, "continuation after FIN")
		}
	default:
		ps = append(ps, "bad opcode "+strconv.Itoa(int(op)))
	}
	if b1&0x80 == 0 {
		ps = append(ps, "bad MASK")
	}
	return strings.Join(ps, ", ")
}

// closeReceived answers a client's close frame (payload p, unmasked) by echoing its code, or a
// malformed one with 1002, and returns the error that ends the read loop.
func closeReceived(nc net.Conn, p []byte) error {
	code, text := websocket.CloseNoStatusReceived, ""
	if len(p) >= 2 {
		code = int(binary.BigEndian.Uint16(p))
		if !validCloseCode(code) {
			return protocolError(nc, "bad close code "+strconv.Itoa(code))
		}
		text = string(p[2:])
		if !utf8.ValidString(text) {
			return protocolError(nc, "invalid utf8 payload in close frame")
		}
	}
	writeClose(nc, code, "")
	return &websocket.CloseError{Code: code, Text: text}
}

// validCloseCode reports whether a client may send code in a close frame (RFC 6455 §7.4).
func validCloseCode(code int) bool {
	switch code {
	case websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseProtocolError,
		websocket.CloseUnsupportedData, websocket.CloseInvalidFramePayloadData,
		websocket.ClosePolicyViolation, websocket.CloseMessageTooBig, websocket.CloseMandatoryExtension,
		websocket.CloseInternalServerErr, websocket.CloseServiceRestart, websocket.CloseTryAgainLater:
		return true
	}
	return code >= 3000 && code <= 4999
}

// protocolError answers a protocol violation with a close frame 1002 and returns the error.
func protocolError(nc net.Conn, message string) error {
	writeClose(nc, websocket.CloseProtocolError, message)
	return errors.New("websocket: " + message)
}

// writeClose writes a close frame with code and text (no payload for 1005, "no status"), within
// controlWait. The connection ends right after: the frame does not go through the hub's queue.
func writeClose(nc net.Conn, code int, text string) {
	fr := make([]byte, 2, 2+125)
	if code != websocket.CloseNoStatusReceived {
		fr = binary.BigEndian.AppendUint16(fr, uint16(code))
		fr = append(fr, text...)
		fr = fr[:min(len(fr), 2+125)]
	}
	fr[0], fr[1] = 0x80|opClose, byte(len(fr)-2)
	_ = nc.SetWriteDeadline(time.Now().Add(controlWait))
	_, _ = nc.Write(fr)
}
