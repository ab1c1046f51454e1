package gateway_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/testutil"
)

// BenchmarkRoomsStatusHTTP measures status updates sustained against a real gateway over HTTP
// keep-alive: 64 link-clickers in 16 rooms, 16 client goroutines on the same machine, with the
// rooms in memory and in Redis (a real redis-server on the same machine). It reports updates/s
// (server, Redis and client share the cores).
func BenchmarkRoomsStatusHTTP(b *testing.B) {
	b.Run("store=memory", func(b *testing.B) { benchRoomsStatusHTTP(b, "") })
	b.Run("store=redis", func(b *testing.B) { benchRoomsStatusHTTP(b, testutil.StartRedis(b).URL) })
}

func benchRoomsStatusHTTP(b *testing.B, redisURL string) {
	// The clickers share one source and each updates as fast as it can: no rate limit.
	gw, err := gateway.New(gateway.Config{Listen: "127.0.0.1:0", Insecure: true, DataDir: b.TempDir(), Logger: hclog.NewNullLogger(),
		Redis: redisURL, Rooms: gateway.RoomsConfig{RequestBurst: -1}})
	if err != nil {
		b.Fatal(err)
	}
	if err := gw.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	post := func(path, authz, body string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodPost, gw.URL()+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	type clicker struct{ path, authz string }
	var clickers []clicker
	for range 16 {
		code, out := post("/rooms", "OpenTera "+serviceToken, `{"roomName":"Load","roomOwner":"Bench","maxSize":5}`)
		if code != http.StatusCreated {
			b.Fatalf("create: %d %s", code, out)
		}
		var room struct{ RoomToken string }
		_ = json.Unmarshal(out, &room)
		for range 4 {
			code, out := post("/rooms/"+room.RoomToken, "", `{"action":"join","displayName":"G","clientMaxSize":5}`)
			if code != http.StatusOK {
				b.Fatalf("join: %d %s", code, out)
			}
			var j struct{ SessionToken string }
			_ = json.Unmarshal(out, &j)
			clickers = append(clickers, clicker{"/rooms/" + room.RoomToken, "Basic " + base64.StdEncoding.EncodeToString([]byte(j.SessionToken+":"))})
		}
	}
	const body = `{"action":"status","event":"Session.streamCreated","state":"sendrecv","connections":2,"sendStreams":1,"recvStreams":1}`
	next := make(chan clicker, 64)
	for _, c := range clickers {
		next <- c
	}
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c := <-next
		for pb.Next() {
			if code, out := post(c.path, c.authz, body); code != http.StatusNoContent {
				b.Errorf("status: %d %s", code, out)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "updates/s")
}
