package rpc

import (
	"strconv"
)

// Reply statuses, the values of a reply's "status" key (OpenTera's).
const (
	ReplyOK    = "OK"
	ReplyError = "Error"
)

// AppendReply appends the JSON reply of a call, byte-compatible with OpenTera's:
//
//	{"method": <method>, "id": <id>, "pattern": <pattern>, "status": "OK", "return_value": <value>}
//
// When callErr is not nil, or value cannot be encoded, it appends the error form, with status
// "Error", a null return_value and a "reason" key. It returns the buffer and the error that made
// it an error reply (nil for an OK reply).
func AppendReply(dst []byte, method string, id uint64, pattern string, value any, callErr error) ([]byte, error) {
	dst = appendReplyHead(dst, method, id, pattern)
	if callErr == nil {
		n := len(dst)
		dst = append(dst, `"OK", "return_value": `...)
		var err error
		if dst, err = AppendJSON(dst, value); err == nil {
			return append(dst, '}'), nil
		}
		callErr = err
		dst = dst[:n]
	}
	dst = append(dst, `"Error", "return_value": null, "reason": `...)
	dst = AppendString(dst, callErr.Error())
	return append(dst, '}'), callErr
}

func appendReplyHead(dst []byte, method string, id uint64, pattern string) []byte {
	dst = append(dst, `{"method": `...)
	dst = AppendString(dst, method)
	dst = append(dst, `, "id": `...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `, "pattern": `...)
	dst = AppendString(dst, pattern)
	return append(dst, `, "status": `...)
}
