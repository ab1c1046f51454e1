package tlsgen

import (
	"crypto/x509"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEnsureCreatesThenReuses(t *testing.T) {
	dir := t.TempDir()
	c1, created, err := Ensure(dir, []string{"gw.example"})
	require.NoError(t, err)
	require.True(t, created)
	require.NoError(t, c1.Leaf.VerifyHostname("gw.example"))
	require.NoError(t, c1.Leaf.VerifyHostname("127.0.0.1"))

	c2, created, err := Ensure(dir, []string{"gw.example"})
	require.NoError(t, err)
	require.False(t, created, "an existing valid certificate is reused")
	require.Equal(t, c1.Certificate[0], c2.Certificate[0])

	_, created, err = Ensure(dir, []string{"other.example"})
	require.NoError(t, err)
	require.True(t, created, "a certificate that does not cover the host is replaced")

	pool := x509.NewCertPool()
	pool.AddCert(c1.Leaf)
	_, err = c1.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"})
	require.NoError(t, err)
}
