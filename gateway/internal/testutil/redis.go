package testutil

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RequireRedisEnv is the environment variable that turns a missing redis-server into a test
// failure instead of a skip.
const RequireRedisEnv = "TERAGATE_REQUIRE_REDIS"

// RedisServer is a redis-server process started by [StartRedis] for one test.
type RedisServer struct {
	// Addr is host:port of the server.
	Addr string
	// URL is redis://Addr/0.
	URL string

	bin string
	dir string
	cmd *exec.Cmd
}

// StartRedis starts `redis-server --port N --save "" --appendonly no` on a free port in a temp
// dir and stops it at the end of the test. Without redis-server in PATH the test is skipped,
// or failed when TERAGATE_REQUIRE_REDIS=1.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(RequireRedisEnv) == "1" {
			t.Fatalf("redis-server not found in PATH and %s=1: %v", RequireRedisEnv, err)
		}
		t.Skipf("redis-server not found in PATH (apt-get install redis-server; %s=1 makes this a failure)", RequireRedisEnv)
	}
	r := &RedisServer{bin: bin, dir: t.TempDir()}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		r.Addr = "127.0.0.1:" + strconv.Itoa(port)
		r.URL = "redis://" + r.Addr + "/0"
		if lastErr = r.start(); lastErr == nil {
			t.Cleanup(r.Stop)
			return r
		}
	}
	t.Fatalf("starting redis-server: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (r *RedisServer) start() error {
	_, port, _ := net.SplitHostPort(r.Addr)
	cmd := exec.Command(r.bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.dir)
	cmd.Dir = r.dir
	log, err := os.Create(r.dir + "/redis.log")
	if err != nil {
		return err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(r.Addr) == nil {
			r.cmd = cmd
			go func() { <-exited }()
			return nil
		}
		select {
		case err := <-exited:
			out, _ := os.ReadFile(r.dir + "/redis.log")
			return fmt.Errorf("redis-server exited (%v): %s", err, out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return fmt.Errorf("redis-server on %s did not answer PING", r.Addr)
		}
	}
}

// ping sends PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("redis: unexpected reply %q", line)
	}
	return nil
}

// Stop kills the server (SIGKILL: nothing is saved) and waits until its port is closed. It is
// safe to call more than once.
func (r *RedisServer) Stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	for i := 0; i < 500 && ping(r.Addr) == nil; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	r.cmd = nil
}

// Restart stops the server and starts a new one, empty, on the same port.
func (r *RedisServer) Restart(t testing.TB) {
	t.Helper()
	r.Stop()
	var err error
	for range 50 { // the port may linger for a moment
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("restarting redis-server: %v", err)
}
