package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/teragate/teragate/gateway/internal/auth"
)

func runHashPassword(args []string) int {
	fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: teragate hash-password [PASSWORD]\n\nPrints a bcrypt hash for the password_hash field of the identity file.\nWithout PASSWORD, reads one line from stdin (so it stays out of your shell history).")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	pw := fs.Arg(0)
	if fs.NArg() == 0 {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			fmt.Fprintln(os.Stderr, "teragate hash-password: no password on stdin")
			return 2
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if pw == "" {
		fmt.Fprintln(os.Stderr, "teragate hash-password: empty password")
		return 2
	}
	h, err := auth.HashPassword(pw)
	if err != nil {
		fmt.Fprintln(os.Stderr, "teragate hash-password:", err)
		return 1
	}
	fmt.Println(h)
	return 0
}
