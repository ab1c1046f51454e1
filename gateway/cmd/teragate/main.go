// Command teragate is the teragate gateway and its tools.
//
//	teragate serve          run the gateway (embedded defaults with no flags)
//	teragate publish        publish a TeraEvent through POST /api/events
//	teragate rpc            call an RPC method and print the reply JSON
//	teragate hash-password  print a bcrypt hash for the identity file
//	teragate ws             open a websocket_url and print its frames
//	teragate station        run a station agent (role plugins configured by the manager)
//	teragate bench          load-test a gateway (or the bare baseline) and report figures
//	teragate version        print the version
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func usage() {
	fmt.Fprint(os.Stderr, `teragate — a real-time gateway, wire-compatible with OpenTera

Usage: teragate <command> [flags]

Commands:
  serve          run the gateway (no flags: embedded demo identities, TLS with a self-signed certificate)
  publish        publish a TeraEvent through POST /api/events
  rpc            call an RPC method (POST /api/rpc/<module>) and print the reply JSON
  hash-password  print a bcrypt hash for the identity file (reads the password from stdin)
  ws             open a websocket_url from a login and print its frames (like websocat)
  station        run a station agent: log in as a station device, run the role plugins the manager pushes
  bench          load-test a gateway or the bare gorilla baseline and report msgs/s, latency, CPU and RSS
  version        print the version

Run 'teragate <command> -h' for a command's flags.
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var code int
	switch cmd {
	case "serve":
		code = runServe(args)
	case "publish":
		code = runPublish(args)
	case "rpc":
		code = runRPC(args)
	case "hash-password":
		code = runHashPassword(args)
	case "ws":
		code = runWS(args)
	case "station":
		code = runStation(args)
	case "bench":
		code = runBench(args)
	case "bench-bare-server":
		code = runBareServer(args)
	case "version", "-version", "--version":
		fmt.Println("teragate", version)
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "teragate: unknown command %q\n\n", cmd)
		usage()
		code = 2
	}
	os.Exit(code)
}
