package gateway_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/proto/opentera"
)

// dbEvent encodes what OpenTera's database manager publishes when a record changes: a TeraEvent
// on module.TeraServer.DatabaseModule.events.<object> holding one DatabaseEvent whose
// object_value is the record's JSON (to_json_update_event / to_json_delete_event).
func dbEvent(t *testing.T, object string, typ opentera.DatabaseEvent_EventType, record string) (string, []byte) {
	t.Helper()
	topic := "module.TeraServer.DatabaseModule.events." + object
	te := &opentera.TeraEvent{Header: &opentera.TeraEvent_Header{Version: 1, Time: 1700000000.5, Topic: topic}}
	te.Events = append(te.Events, anyOf(t, &opentera.DatabaseEvent{Type: typ, ObjectType: object, ObjectValue: record}))
	b, err := proto.Marshal(te)
	require.NoError(t, err)
	return topic, b
}

// TestDatabaseEvents: a user disabled, a participant soft-deleted, a device deleted in OpenTera's
// database have their sockets closed with 4000 and their logins refused, until a later event
// re-enables them.
func TestDatabaseEvents(t *testing.T) {
	robot1Token := demoToken(directory.KindDevice, robot1)
	tests := []struct {
		name, object, cred string
		kind               directory.Kind
		block              func() (string, []byte)
		unblock            func() (string, []byte)
	}{
		{"user disabled", "user", "alice:alice-demo", directory.KindUser,
			func() (string, []byte) {
				return dbEvent(t, "user", opentera.DatabaseEvent_DB_UPDATE, `{"id_user": 2, "user_uuid": "`+alice+`", "user_enabled": false, "user_firstname": "Alice"}`)
			},
			func() (string, []byte) {
				return dbEvent(t, "user", opentera.DatabaseEvent_DB_UPDATE, `{"id_user": 2, "user_uuid": "`+alice+`", "user_enabled": true}`)
			}},
		{"participant soft-deleted", "participant", "pat:pat-demo", directory.KindParticipant,
			func() (string, []byte) {
				return dbEvent(t, "participant", opentera.DatabaseEvent_DB_UPDATE, `{"id_participant": 1, "participant_uuid": "`+pat+`", "participant_enabled": true, "deleted_at": "2026-12-04T10:00:00"}`)
			},
			func() (string, []byte) {
				return dbEvent(t, "participant", opentera.DatabaseEvent_DB_CREATE, `{"id_participant": 1, "participant_uuid": "`+pat+`", "participant_enabled": true}`)
			}},
		{"device deleted", "device", robot1Token, directory.KindDevice,
			func() (string, []byte) {
				return dbEvent(t, "device", opentera.DatabaseEvent_DB_DELETE, `{"id_device": 1, "device_uuid": "`+robot1+`"}`)
			},
			func() (string, []byte) {
				return dbEvent(t, "device", opentera.DatabaseEvent_DB_UPDATE, `{"id_device": 1, "device_uuid": "`+robot1+`", "device_enabled": true}`)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startGateway(t, nil)
			s := e.connect(tt.kind, tt.cred)
			topic, payload := tt.block()
			require.NoError(t, e.gw.Publish(context.Background(), topic, payload))
			s.expectClose(4000)
			code, _ := e.login(tt.kind, tt.cred, "")
			require.Equal(t, http.StatusUnauthorized, code, "a blocked entity cannot log in")
			topic, payload = tt.unblock()
			require.NoError(t, e.gw.Publish(context.Background(), topic, payload))
			require.Eventually(t, func() bool { code, _ := e.login(tt.kind, tt.cred, ""); return code == http.StatusOK }, 15*time.Second, 20*time.Millisecond)
		})
	}
}

// TestRedisDatabaseEvents: the event published on Redis by OpenTera closes the user's socket on
// the other node and refuses its logins on every node.
func TestRedisDatabaseEvents(t *testing.T) {
	nodes, srv := startRedisNodesOn(t, 2)
	s := nodes[1].connect(directory.KindUser, "alice:alice-demo")
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close() })
	topic, payload := dbEvent(t, "user", opentera.DatabaseEvent_DB_UPDATE, `{"id_user": 2, "user_uuid": "`+alice+`", "user_enabled": false}`)
	require.NoError(t, client.Publish(context.Background(), topic, payload).Err())
	s.expectClose(4000)
	for _, n := range nodes {
		require.Eventually(t, func() bool {
			code, _ := n.login(directory.KindUser, "alice:alice-demo", "")
			return code == http.StatusUnauthorized
		}, 15*time.Second, 20*time.Millisecond)
	}
}

// TestIdentityFileDisables: disabling an entity with open sockets in the identity file closes
// them with 4000 and refuses its logins; enabling it again lets it in. A database block is lifted
// when the operator edits the entity's record in the file.
func TestIdentityFileDisables(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identities.yaml")
	demo := string(directory.DemoYAML)
	write := func(content string) {
		tmp := path + ".tmp"
		require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
		require.NoError(t, os.Rename(tmp, path))
	}
	write(demo)
	e := startGateway(t, func(c *gateway.Config) { c.Identities = path })
	s := e.connect(directory.KindUser, "bob:bob-demo")
	disabled := strings.Replace(demo, "    username: bob\n", "    username: bob\n    enabled: false\n", 1)
	require.NotEqual(t, demo, disabled)
	write(disabled)
	s.expectClose(4000)
	code, _ := e.login(directory.KindUser, "bob:bob-demo", "")
	require.Equal(t, http.StatusUnauthorized, code)
	write(demo)
	require.Eventually(t, func() bool { code, _ := e.login(directory.KindUser, "bob:bob-demo", ""); return code == http.StatusOK }, 10*time.Second, 20*time.Millisecond)

	// Blocked by the database, then the operator edits bob's record: the file decides again.
	topic, payload := dbEvent(t, "user", opentera.DatabaseEvent_DB_DELETE, `{"id_user": 3, "user_uuid": "`+bob+`"}`)
	require.NoError(t, e.gw.Publish(context.Background(), topic, payload))
	require.Eventually(t, func() bool {
		code, _ := e.login(directory.KindUser, "bob:bob-demo", "")
		return code == http.StatusUnauthorized
	}, 15*time.Second, 20*time.Millisecond)
	write(strings.Replace(demo, "fullname: Bob Demo", "fullname: Bob Again", 1))
	require.Eventually(t, func() bool { code, _ := e.login(directory.KindUser, "bob:bob-demo", ""); return code == http.StatusOK }, 10*time.Second, 20*time.Millisecond)
}
