package directory

import (
	"errors"
	"strings"
)

// Sentinel errors. Every validation problem that [Parse] reports wraps exactly one of ErrDuplicate,
// ErrMissing, ErrUnknownRef or ErrBadHash, and the returned error also matches ErrInvalid.
var (
	// ErrInvalid matches every error returned by [Parse] and [Load] for a file that was read but
	// rejected (malformed YAML or a validation problem).
	ErrInvalid = errors.New("directory: invalid identity file")
	// ErrSyntax is wrapped when the file is not valid YAML or a field has the wrong type.
	ErrSyntax = errors.New("directory: malformed yaml")
	// ErrDuplicate is wrapped when a uuid, username, token, site id or project id is used twice.
	ErrDuplicate = errors.New("directory: duplicate")
	// ErrMissing is wrapped when a required field is empty.
	ErrMissing = errors.New("directory: missing")
	// ErrUnknownRef is wrapped when an entry names a site, project or participant that does not exist.
	ErrUnknownRef = errors.New("directory: unknown")
	// ErrBadHash is wrapped when a password_hash is not a bcrypt hash ($2a$, $2b$ or $2y$, cost 04–31,
	// 60 characters).
	ErrBadHash = errors.New("directory: invalid bcrypt hash")
	// ErrEmpty is reported by [Store.Watch] for an identity file that is empty or only whitespace
	// (most likely caught between truncation and write; "{}" is the empty directory).
	ErrEmpty = errors.New("directory: identity file is empty")
)

// maxProblems bounds how many validation problems a [ValidationError] lists.
const maxProblems = 50

// ValidationError is returned by [Parse] when the file is well-formed YAML but breaks the rules.
// It lists every problem found (up to 50), each naming the offending entry, e.g.
//
//	users[1] "alice": directory: duplicate username "alice" (also users[0])
//
// errors.Is matches [ErrInvalid] and the sentinel of each listed problem.
type ValidationError struct {
	// Problems lists one error per problem, in file order.
	Problems []error
	// Truncated is true when more problems were found than Problems holds.
	Truncated bool
}

// Error joins the problems with "; ".
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalid.Error())
	b.WriteString(": ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Error())
	}
	if e.Truncated {
		b.WriteString("; …and more")
	}
	return b.String()
}

// Unwrap returns [ErrInvalid] followed by the problems, so errors.Is sees all of them.
func (e *ValidationError) Unwrap() []error {
	out := make([]error, 0, len(e.Problems)+1)
	out = append(out, ErrInvalid)
	return append(out, e.Problems...)
}
