package auth

import (
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// dummyHash is compared against when the username is unknown, so that an unknown username takes
// as long as a known one. It is a bcrypt hash at [bcrypt.DefaultCost], the cost [HashPassword] uses.
var dummyHash = "$2a$10$AvnRt3243u32p/wH4ibJW.Rf1/9WUe99IjXctF..iS5A.lbpfmNau"

// HashPassword returns the bcrypt hash of password at bcrypt's default cost (10), in the format
// the identity file's password_hash expects. It fails for an empty password ([ErrEmptyPassword])
// and for one longer than 72 bytes (bcrypt's limit).
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", ErrEmptyPassword
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword reports whether password matches the bcrypt hash. A malformed hash never matches.
func CheckPassword(hash, password string) bool {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}
