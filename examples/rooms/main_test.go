package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func Test_main(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(&out, nil))
	require.Equal(t, `owner alice logged in
room created: 201
joined: 200 expires=300
status waiting: 204
status starting: 204
status sending: 204
status sendrecv: 204
owner sees states: {"sendrecv":1}
refresh: 200
leave: 204
token after leave: 401 errno=110 Invalid token; it may have expired.
`, out.String())
}
