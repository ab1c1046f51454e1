package auth_test

import (
	"context"
	"testing"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/directory"
)

// BenchmarkTokenLogin measures token authentication, which must be far cheaper than a bcrypt
// password check (see BenchmarkPasswordLogin).
func BenchmarkTokenLogin(b *testing.B) {
	e := newEnv(b, auth.Config{})
	ctx := context.Background()
	userJWT, err := e.auth.IssueToken(auth.Principal{Kind: directory.KindUser, UUID: aliceUUID})
	if err != nil {
		b.Fatal(err)
	}
	deviceJWT, err := e.auth.IssueToken(auth.Principal{Kind: directory.KindDevice, UUID: robotUUID})
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name string
		run  func() (auth.Principal, error)
	}{
		{"device-static", func() (auth.Principal, error) { return e.auth.Token(ctx, directory.KindDevice, robotToken) }},
		{"participant-static", func() (auth.Principal, error) { return e.auth.Token(ctx, directory.KindParticipant, patToken) }},
		{"service-static-any", func() (auth.Principal, error) { return e.auth.Any(ctx, svcToken) }},
		{"user-jwt", func() (auth.Principal, error) { return e.auth.Token(ctx, directory.KindUser, userJWT) }},
		{"device-jwt", func() (auth.Principal, error) { return e.auth.Token(ctx, directory.KindDevice, deviceJWT) }},
		{"user-jwt-any", func() (auth.Principal, error) { return e.auth.Any(ctx, userJWT) }},
		{"issue-user-jwt", func() (auth.Principal, error) {
			_, err := e.auth.IssueToken(auth.Principal{Kind: directory.KindUser, UUID: aliceUUID})
			return auth.Principal{}, err
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPasswordLogin is the reference point: one bcrypt check at the default cost (10).
func BenchmarkPasswordLogin(b *testing.B) {
	h, err := auth.HashPassword("bench-pw")
	if err != nil {
		b.Fatal(err)
	}
	s, err := directory.Parse([]byte("users: [{uuid: u1, username: bench, password_hash: '" + h + "'}]"))
	if err != nil {
		b.Fatal(err)
	}
	a, err := auth.New(auth.Config{MaxFailedAttempts: -1}, directory.NewStore(s))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Password(context.Background(), directory.KindUser, "bench", "bench-pw", "192.0.2.1:1234"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTickets measures one issue plus one redeem.
func BenchmarkTickets(b *testing.B) {
	tk := auth.NewMemoryTickets(0, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		t, err := tk.Issue(ctx, directory.KindUser, aliceUUID)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tk.Redeem(ctx, t, directory.KindUser); err != nil {
			b.Fatal(err)
		}
	}
}
