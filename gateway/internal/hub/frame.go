package hub

import "encoding/binary"

// Websocket opcodes (RFC 6455 §5.2).
const (
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// Close codes teragate sends. 1000–1015 are RFC 6455's; 4000 is OpenTera's.
const (
	// CloseNormal ends a connection normally.
	CloseNormal = 1000
	// CloseGoingAway is sent to every client when the gateway shuts down.
	CloseGoingAway = 1001
	// CloseInternal is sent when the gateway hits an internal error for this connection.
	CloseInternal = 1011
	// CloseDisconnect is OpenTera's server-forced disconnect (CMD_CLIENT_DISCONNECT, logout, the
	// entity deleted or disabled). OpenTera's clients do not reconnect after it.
	CloseDisconnect = 4000
	// CloseSlowConsumer is sent when a client does not read fast enough and its outbound queue
	// overflows. Clients may reconnect (and should read faster).
	CloseSlowConsumer = 4001
)

// frame returns a complete unmasked server frame (FIN set) with the given opcode and payload.
func frame(op byte, payload []byte) []byte {
	n := len(payload)
	var hdr [10]byte
	hdr[0] = 0x80 | op
	h := 2
	switch {
	case n < 126:
		hdr[1] = byte(n)
	case n <= 0xFFFF:
		hdr[1] = 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(n))
		h = 4
	default:
		hdr[1] = 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(n))
		h = 10
	}
	out := make([]byte, h+n)
	copy(out, hdr[:h])
	copy(out[h:], payload)
	return out
}

// TextFrame returns a pre-framed text message.
func TextFrame(payload []byte) []byte { return frame(opText, payload) }

// BinaryFrame returns a pre-framed binary message.
func BinaryFrame(payload []byte) []byte { return frame(opBinary, payload) }

// closeFrame returns a close frame with code and reason (reason truncated to fit 125 bytes).
func closeFrame(code int, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	p := make([]byte, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code))
	copy(p[2:], reason)
	return frame(opClose, p)
}

var pingFrame = frame(opPing, []byte("teragate"))
