package pdk

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/teragate/teragate/sdk/abi"
	protowire "github.com/teragate/teragate/sdk/pdk/internal/wire"

	"github.com/teragate/teragate/sdk/pdk/internal/hook"
)

func init() {
	hook.Init = dispatchInit
	hook.Filter = dispatchFilter
	hook.RPC = dispatchRPC
}

// out is the reusable result buffer: results stay valid until the next call, which is what the
// ABI asks (the host copies them out at once).
var out []byte

// fail returns err's text as an error result.
func fail(err error) ([]byte, bool) {
	out = append(out[:0], err.Error()...)
	return out, true
}

// guard turns a panic in a handler into an error result instead of a trap.
func guard(res *[]byte, failed *bool) {
	if p := recover(); p != nil {
		msg := "panic"
		switch x := p.(type) {
		case string:
			msg = "panic: " + x
		case error:
			msg = "panic: " + x.Error()
		}
		out = append(out[:0], msg...)
		*res, *failed = out, true
	}
}

// dispatchInit serves tg_init: InitRequest → InitResult.
func dispatchInit(req []byte) (res []byte, failed bool) {
	defer guard(&res, &failed)
	var id string
	var cfg []byte
	if !walk(req, func(f *field) {
		switch f.num {
		case 1:
			id = string(f.b)
		case 2:
			cfg = slices.Clone(f.b)
		}
	}) {
		return fail(ErrBadRequest)
	}
	reg.pluginID, reg.configRaw = id, cfg
	if reg.config != nil {
		if err := reg.config(id, cfg); err != nil {
			return fail(err)
		}
	}
	b := out[:0]
	b = appendString(b, 1, reg.name)
	b = appendString(b, 2, reg.version)
	if reg.filter != nil || reg.recipients != nil {
		kinds := reg.kinds
		if len(kinds) == 0 {
			kinds = []Kind{KindUser, KindParticipant, KindDevice}
		}
		for _, k := range kinds {
			b = appendString(b, 3, string(k))
		}
	}
	if reg.rpcModule != "" {
		b = appendString(b, 4, reg.rpcModule)
		methods := make([]string, 0, len(reg.rpc))
		for m := range reg.rpc {
			methods = append(methods, m)
		}
		slices.Sort(methods)
		b = appendStrings(b, 5, methods)
	}
	out = b
	return out, false
}

// filterReq is the reusable decoded FilterRequest.
var (
	filterEv   Event
	recipients []Recipient
)

// dispatchFilter serves tg_filter: FilterRequest → FilterResult.
func dispatchFilter(req []byte) (res []byte, failed bool) {
	defer guard(&res, &failed)
	ev := &filterEv
	*ev = Event{rewrite: ev.rewrite[:0]}
	rs := recipients[:0]
	withRecipients := false
	ok := walk(req, func(f *field) {
		if f.typ != protowire.BytesType {
			return
		}
		switch f.num {
		case 1:
			ev.Kind = Kind(f.b)
		case 2:
			ev.Topic = string(f.b)
		case 3:
			ev.Type = string(f.b)
		case 4:
			ev.raw = f.b
		case 5:
			withRecipients = true
			var r Recipient
			walk(f.b, func(g *field) {
				switch g.num {
				case 1:
					r.UUID = string(g.b)
				case 2:
					r.Admin = g.v != 0
				}
			})
			rs = append(rs, r)
		}
	})
	recipients = rs
	if !ok {
		return fail(ErrBadRequest)
	}
	if withRecipients {
		if reg.recipients == nil {
			return fail(ErrNoHandler)
		}
		vs := reg.recipients(ev, rs)
		if len(vs) != len(rs) {
			return fail(ErrVerdicts)
		}
		out = appendMessage(out[:0], 3, func(b []byte) []byte { return appendVerdicts(b, ev, vs) })
		return out, false
	}
	var r Result
	switch {
	case reg.filter != nil:
		r = reg.filter(ev)
	case reg.recipients != nil:
		r = NeedRecipients()
	default:
		return fail(ErrNoHandler)
	}
	if r.need {
		if reg.recipients == nil {
			return fail(ErrNoHandler)
		}
		out = appendBool(out[:0], 2, true)
		return out, false
	}
	out = appendMessage(out[:0], 1, r.appendRule)
	return out, false
}

// appendVerdicts appends a Verdicts message body: two bitmaps plus the rewrite.
func appendVerdicts(b []byte, ev *Event, vs []Verdict) []byte {
	n := (len(vs) + 7) / 8
	deliver := slices.Grow(verdictBits[:0], 2*n)[:2*n]
	clear(deliver)
	rewrite := deliver[n:]
	deliver = deliver[:n]
	anyRewrite := false
	for i, v := range vs {
		switch v {
		case Keep:
			deliver[i/8] |= 1 << (i % 8)
		case Rewritten:
			deliver[i/8] |= 1 << (i % 8)
			rewrite[i/8] |= 1 << (i % 8)
			anyRewrite = true
		}
	}
	verdictBits = deliver[:0]
	b = appendBytes(b, 1, deliver)
	if anyRewrite {
		b = appendBytes(b, 2, rewrite)
		b = appendString(b, 3, ev.rewriteType)
		b = appendBytes(b, 4, ev.rewrite)
	}
	return b
}

var verdictBits []byte

// dispatchRPC serves tg_rpc: RPCCall → RPCResult.
func dispatchRPC(req []byte) (res []byte, failed bool) {
	defer guard(&res, &failed)
	var method string
	var argsJSON []byte
	var who Caller
	ok := walk(req, func(f *field) {
		switch f.num {
		case 1:
			method = string(f.b)
		case 2:
			argsJSON = f.b
		case 3:
			walk(f.b, func(sf *field) {
				switch sf.num {
				case 1:
					who.Kind = Kind(sf.b)
				case 2:
					who.UUID = string(sf.b)
				}
			})
		case 4:
			who.Admin = f.v != 0
		}
	})
	if !ok {
		return fail(ErrBadRequest)
	}
	caller = who
	defer func() { caller = Caller{} }()
	if reg.rpc == nil {
		return fail(ErrNoHandler)
	}
	fn, ok := reg.rpc[method]
	if !ok {
		return fail(errors.New(ErrUnknownMethod.Error() + ": " + strconv.Quote(method)))
	}
	var args []any
	if len(argsJSON) > 0 {
		v, err := ParseJSON(argsJSON)
		if err != nil {
			return fail(err)
		}
		a, ok := v.([]any)
		if !ok {
			return fail(ErrBadRequest)
		}
		args = a
	}
	ret, err := fn(args)
	if err != nil {
		if errors.Is(err, ErrForbidden) && !strings.HasPrefix(err.Error(), abi.ForbiddenPrefix) {
			err = fmt.Errorf("%s%w", abi.ForbiddenPrefix, err)
		}
		return fail(err)
	}
	body, err := AppendJSON(jsonBuf[:0], ret)
	if err != nil {
		return fail(err)
	}
	jsonBuf = body
	out = appendBytes(out[:0], 1, body)
	if len(body) == 0 { // never: JSON text is at least "null"
		out = out[:0]
	}
	return out, false
}

var jsonBuf []byte
