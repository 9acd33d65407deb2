package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

var errHelp = errors.New("help requested")

// newFlags makes a FlagSet for a subcommand that reports errors instead of exiting.
func newFlags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("loraqa "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: loraqa %s %s\n\nflags:\n", name, args)
		fs.SetOutput(os.Stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses args; -h prints the usage and yields errHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return errHelp
		}
		return usagef("%v (see -h)", err)
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// reorder moves positional arguments after the flags, so that
// `loraqa verify DIR --json` parses like `loraqa verify --json DIR`.
// Flags that take a value must use the --flag=value form when placed after positionals,
// or be known to take a value (non-bool).
func reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
			if !containsEq(a) && !isBoolFlag(a) && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func containsEq(s string) bool {
	for _, c := range s {
		if c == '=' {
			return true
		}
	}
	return false
}

// boolFlags are the boolean flags of every subcommand (they take no value).
var boolFlags = map[string]bool{"json": true, "resume": true, "merge": true, "force": true, "h": true, "help": true, "debug": true, "quiet": true}

func isBoolFlag(a string) bool {
	for len(a) > 0 && a[0] == '-' {
		a = a[1:]
	}
	return boolFlags[a]
}
