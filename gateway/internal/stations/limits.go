package stations

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	stationv1 "github.com/teragate/teragate/proto/station/v1"
	stationsdk "github.com/teragate/teragate/sdk/station"
)

// Limits bound what a station device (and an admin edit) may make the manager store, push and
// fan out. A station is a device of the directory, not an operator: whatever it reports is
// checked like an admin edit, and the work it can cause is bounded per connection. Zero fields
// take their defaults.
type Limits struct {
	// MaxConfigBytes bounds a station's role config, measured as the encoded UpdateConfiguration
	// the manager pushes (scripts filled in). A register whose merged config, or an admin edit
	// whose result, is larger is refused. Default 1 MiB.
	MaxConfigBytes int
	// MaxRoles bounds the roles of a station's config (and its blocked roles). Default 100.
	MaxRoles int
	// MaxInstancesPerRole bounds the uuids of one role. Default 100.
	MaxInstancesPerRole int
	// MaxStatusBytes bounds one role status a station reports (the agent keeps its statuses
	// under the same bound). A larger one is an invalid frame. Default 16 KiB.
	MaxStatusBytes int
	// MaxDeviceStatusBytes bounds the station device's aggregate status set in presence (and
	// fanned out to every client allowed to see the device), as POST /api/device/status bounds a
	// device's body. A status that would make it larger is refused. Default 64 KiB.
	MaxDeviceStatusBytes int
	// MaxInvalidFrames is how many invalid frames (undecodable, text, empty, invalid register or
	// status, a second register while one is in flight, …) one connection may send: the last
	// closes it with 1008 "too many invalid frames". (A frame over MaxConfigBytes + 64 KiB
	// closes it at once with 1009.) Default 10.
	MaxInvalidFrames int
}

func (l Limits) withDefaults() Limits {
	if l.MaxConfigBytes <= 0 {
		l.MaxConfigBytes = 1 << 20
	}
	if l.MaxRoles <= 0 {
		l.MaxRoles = 100
	}
	if l.MaxInstancesPerRole <= 0 {
		l.MaxInstancesPerRole = 100
	}
	if l.MaxStatusBytes <= 0 {
		l.MaxStatusBytes = 16 << 10
	}
	if l.MaxDeviceStatusBytes <= 0 {
		l.MaxDeviceStatusBytes = 64 << 10
	}
	if l.MaxInvalidFrames <= 0 {
		l.MaxInvalidFrames = 10
	}
	return l
}

// readLimit is the largest frame a station may send: a register carrying a full config plus its
// other fields.
func (l Limits) readLimit() int64 { return int64(l.MaxConfigBytes) + 64<<10 }

// Bounds of the other strings a station reports.
const (
	maxUUIDLen     = 200
	maxHostnameLen = 255
	maxAddrLen     = 100  // MAC, IP
	maxTextLen     = 4096 // a job's program and error, a result's message: longer is cut
)

// badConfig is an invalid role configuration; it wraps [ErrBadConfig] and names the offending
// roles.
type badConfig struct {
	reason string
	roles  []string
}

func (e *badConfig) Error() string { return ErrBadConfig.Error() + ": " + e.reason }
func (e *badConfig) Unwrap() error { return ErrBadConfig }

func badf(roles []string, format string, args ...any) error {
	return &badConfig{reason: fmt.Sprintf(format, args...), roles: roles}
}

// configResult is the answer to a register refused for err.
func configResult(err error) *stationv1.ConfigResult {
	res := &stationv1.ConfigResult{Code: stationv1.ErrorCode_INVALID_CONFIGURATION, Message: err.Error()}
	var bc *badConfig
	if errors.As(err, &bc) {
		res.Roles = bc.roles
	}
	return res
}

// quote returns s JSON-quoted, cut to 64 bytes (an error message must stay readable whatever
// the name).
func quote(s string) string {
	if len(s) > 64 {
		s = strings.ToValidUTF8(s[:64], "") + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// checkRole checks a role name.
func checkRole(role string) error {
	if !ValidRoleName(role) {
		return badf(nil, "bad role name %s (want 1 to 100 of A-Z a-z 0-9 _ -)", quote(role))
	}
	return nil
}

// checkUUID checks an instance uuid of role: 1 to 200 bytes of printable UTF-8.
func checkUUID(role, uuid string) error {
	if uuid == "" || len(uuid) > maxUUIDLen || !utf8.ValidString(uuid) || strings.ContainsFunc(uuid, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return badf([]string{role}, "bad uuid %s in role %s (want 1 to %d bytes of printable UTF-8)", quote(uuid), role, maxUUIDLen)
	}
	return nil
}

// checkOptions checks an instance's options: absent, null or a JSON object.
func checkOptions(role, uuid string, opts []byte) error {
	if len(opts) == 0 || string(opts) == "null" {
		return nil
	}
	var obj map[string]json.RawMessage
	if !utf8.Valid(opts) || json.Unmarshal(opts, &obj) != nil || obj == nil {
		return badf([]string{role}, "options of %s/%s must be a JSON object", role, quote(uuid))
	}
	return nil
}

// checkRoles checks every name and option of r and the counts (not the encoded size: see
// [Limits.checkSize]).
func (l Limits) checkRoles(r Roles) error {
	if len(r) > l.MaxRoles {
		return badf(nil, "%d roles, the limit is %d", len(r), l.MaxRoles)
	}
	for _, role := range r.Names() {
		if err := checkRole(role); err != nil {
			return err
		}
		us := r[role]
		if len(us) > l.MaxInstancesPerRole {
			return badf([]string{role}, "%d uuids in role %s, the limit is %d", len(us), role, l.MaxInstancesPerRole)
		}
		for uuid, in := range us {
			if err := checkUUID(role, uuid); err != nil {
				return err
			}
			if err := checkOptions(role, uuid, in.Options); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkSize checks r's counts and its encoded size as pushed.
func (l Limits) checkSize(r Roles) error {
	if len(r) > l.MaxRoles {
		return badf(nil, "%d roles, the limit is %d", len(r), l.MaxRoles)
	}
	for _, role := range r.Names() {
		if n := len(r[role]); n > l.MaxInstancesPerRole {
			return badf([]string{role}, "%d uuids in role %s, the limit is %d", n, role, l.MaxInstancesPerRole)
		}
	}
	if n := configSize(r); n > l.MaxConfigBytes {
		return badf(nil, "the configuration is too large: %d bytes, the limit is %d", n, l.MaxConfigBytes)
	}
	return nil
}

// configSize is the size of the UpdateConfiguration carrying r.
func configSize(r Roles) int {
	return proto.Size(&stationv1.UpdateConfiguration{Roles: r.ToProto()})
}

// checkRegister checks a station's Register as an admin edit is checked: role names, uuids,
// options (JSON objects), counts and size of the reported config, and the reported host fields.
func (l Limits) checkRegister(reg *stationv1.Register) error {
	switch {
	case len(reg.Hostname) > maxHostnameLen || !utf8.ValidString(reg.Hostname):
		return badf(nil, "bad hostname (want at most %d bytes of UTF-8)", maxHostnameLen)
	case len(reg.Mac) > maxAddrLen || !utf8.ValidString(reg.Mac):
		return badf(nil, "bad mac (want at most %d bytes of UTF-8)", maxAddrLen)
	case len(reg.Ip) > maxAddrLen || !utf8.ValidString(reg.Ip):
		return badf(nil, "bad ip (want at most %d bytes of UTF-8)", maxAddrLen)
	case len(reg.BlockedRoles) > l.MaxRoles:
		return badf(nil, "%d blocked roles, the limit is %d", len(reg.BlockedRoles), l.MaxRoles)
	}
	for _, role := range reg.BlockedRoles {
		if err := checkRole(role); err != nil {
			return err
		}
	}
	if len(reg.Roles) > l.MaxRoles {
		return badf(nil, "%d roles, the limit is %d", len(reg.Roles), l.MaxRoles)
	}
	for _, role := range slices.Sorted(maps.Keys(reg.Roles)) {
		if err := checkRole(role); err != nil {
			return err
		}
		ins := reg.Roles[role].GetInstances()
		if len(ins) > l.MaxInstancesPerRole {
			return badf([]string{role}, "%d uuids in role %s, the limit is %d", len(ins), role, l.MaxInstancesPerRole)
		}
		for uuid, in := range ins {
			if err := checkUUID(role, uuid); err != nil {
				return err
			}
			if err := checkOptions(role, uuid, []byte(in.GetOptions())); err != nil {
				return err
			}
		}
	}
	return l.checkSize(stationsdk.RolesFromProto(reg.Roles))
}

// cut returns s cut to maxTextLen bytes of valid UTF-8.
func cut(s string) string {
	if len(s) <= maxTextLen {
		return s
	}
	return strings.ToValidUTF8(s[:maxTextLen], "") + "…"
}
