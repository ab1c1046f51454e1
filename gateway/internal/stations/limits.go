package stations

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Bounds on what a station (or an admin edit) may make the manager store, push and fan out. A
// station is a device: authenticated, but not trusted with the manager's memory or the other
// clients' sockets.
const (
	// MaxConfigBytes bounds a station's whole role configuration, as JSON: a Register whose merged
	// configuration (or an edit whose result) is larger is refused. It keeps every
	// UpdateConfiguration frame far below the station protocol's 4 MiB frame limit.
	MaxConfigBytes = 256 << 10
	// MaxInstancesPerRole bounds the uuids of one role.
	MaxInstancesPerRole = 256
	// MaxRoles bounds the roles of one station.
	MaxRoles = 64
	// MaxStatusBytes bounds one role status; a larger one is dropped (and counted as a bad frame).
	MaxStatusBytes = 16 << 10
	// MaxStationStatusBytes bounds the station's device status (every role status together), which
	// presence publishes to every client that may see the station: an update that would exceed
	// it is dropped.
	MaxStationStatusBytes = 64 << 10
	// MaxBadFrames bad frames (undecodable, text, oversized status, invalid or concurrent
	// Register) on one connection close it with 1008 (policy violation).
	MaxBadFrames = 20
)

// ErrTooLarge is wrapped by the refusals of [checkRoles] for size.
var ErrTooLarge = errors.New("stations: configuration too large")

// checkRoles applies the rules of an admin edit to any configuration (a station's Register
// included): role names as the API accepts them, uuids non-empty, at most 200 bytes of UTF-8
// without control characters, options JSON objects, and the bounds above.
func checkRoles(r Roles) error {
	if len(r) > MaxRoles {
		return fmt.Errorf("%w: %w: %d roles, at most %d", ErrBadConfig, ErrTooLarge, len(r), MaxRoles)
	}
	for role, us := range r {
		if !roleName.MatchString(role) {
			return fmt.Errorf("%w: bad role name %s", ErrBadConfig, jsonQuote(role))
		}
		if len(us) > MaxInstancesPerRole {
			return fmt.Errorf("%w: %w: role %s has %d uuids, at most %d", ErrBadConfig, ErrTooLarge, role, len(us), MaxInstancesPerRole)
		}
		for uuid, in := range us {
			if !validUUID(uuid) {
				return fmt.Errorf("%w: bad uuid %s in role %s", ErrBadConfig, jsonQuote(truncate(uuid, 64)), role)
			}
			if len(in.Options) > 0 && string(in.Options) != "null" {
				var obj map[string]any
				if json.Unmarshal(in.Options, &obj) != nil {
					return fmt.Errorf("%w: options of %s/%s must be a JSON object", ErrBadConfig, role, uuid)
				}
			}
		}
	}
	if b, err := json.Marshal(r); err != nil {
		return fmt.Errorf("%w: %v", ErrBadConfig, err)
	} else if len(b) > MaxConfigBytes {
		return fmt.Errorf("%w: %w: %d bytes, at most %d", ErrBadConfig, ErrTooLarge, len(b), MaxConfigBytes)
	}
	return nil
}

func validUUID(s string) bool {
	if s == "" || len(s) > 200 || !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
