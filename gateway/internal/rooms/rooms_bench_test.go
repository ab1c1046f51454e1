package rooms_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/rooms"
)

// serve runs one request through the handler without a network and decodes a JSON answer.
func serve(tb testing.TB, h http.Handler, method, path, body, authz string) map[string]any {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code >= 300 {
		tb.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body.String())
	}
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return out
}

func benchService(store rooms.Store) (*rooms.Service, http.Handler) {
	// One owner and one source make everything: the caps and rate limits are off.
	svc := rooms.New(rooms.Config{Authenticate: func(*http.Request) (auth.Principal, error) {
		return auth.Principal{Kind: directory.KindUser, UUID: "00000000-0000-4000-8000-000000000002"}, nil
	}, MaxRoomsPerOwner: -1, RequestBurst: -1, RegistrationBurst: -1, Store: store})
	return svc, svc.Handler()
}

// BenchmarkRoomMemory reports the live heap per room holding 5 participants (4 link-clickers
// that each reported a status, plus the owner), over 10,000 rooms created through the API
// handlers. Run with -benchtime=1x.
func BenchmarkRoomMemory(b *testing.B) {
	const nRooms = 10_000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		svc, h := benchService(nil)
		for range nRooms {
			tok := serve(b, h, http.MethodPost, "/rooms", `{"roomName":"Room","roomOwner":"Owner","maxSize":5}`, "Bearer owner")["roomToken"].(string)
			for p := range 4 {
				st := serve(b, h, http.MethodPost, "/rooms/"+tok, `{"action":"join","displayName":"Guest `+strconv.Itoa(p)+`","clientMaxSize":5}`, "")["sessionToken"].(string)
				serve(b, h, http.MethodPost, "/rooms/"+tok,
					`{"action":"status","event":"Session.streamCreated","state":"sendrecv","connections":5,"sendStreams":1,"recvStreams":4}`,
					"Basic "+base64.StdEncoding.EncodeToString([]byte(st+":")))
			}
			serve(b, h, http.MethodPost, "/rooms/"+tok, `{"action":"join","displayName":"Owner","clientMaxSize":5}`, "Bearer owner")
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/nRooms, "bytes/room")
		runtime.KeepAlive(svc)
	}
}

// BenchmarkStatusUpdate is one status action through the handler (no HTTP network), parallel
// over 64 rooms with one link-clicker each, with the memory store and with the Redis store (a
// real redis-server on this machine). It reports updates/s.
func BenchmarkStatusUpdate(b *testing.B) {
	for _, sk := range []storeKind{memoryStore, redisStore} {
		b.Run("store="+string(sk), func(b *testing.B) { benchStatusUpdate(b, newStore(b, sk)) })
	}
}

func benchStatusUpdate(b *testing.B, store rooms.Store) {
	_, h := benchService(store)
	var creds []string
	var toks []string
	for range 64 {
		tok := serve(b, h, http.MethodPost, "/rooms", `{"roomName":"Room","roomOwner":"Owner","maxSize":5}`, "Bearer owner")["roomToken"].(string)
		st := serve(b, h, http.MethodPost, "/rooms/"+tok, `{"action":"join","displayName":"G","clientMaxSize":5}`, "")["sessionToken"].(string)
		toks = append(toks, tok)
		creds = append(creds, "Basic "+base64.StdEncoding.EncodeToString([]byte(st+":")))
	}
	const body = `{"action":"status","event":"Session.streamCreated","state":"sendrecv","connections":2,"sendStreams":1,"recvStreams":1}`
	b.ReportAllocs()
	var next = make(chan int, 64)
	for i := range 64 {
		next <- i
	}
	b.SetParallelism(8) // 16 clients on 2 cores: Redis round trips overlap, as with many clients
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := <-next
		for pb.Next() {
			serve(b, h, http.MethodPost, "/rooms/"+toks[i], body, creds[i])
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "updates/s")
}
