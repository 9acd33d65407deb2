// Command loraqa fine-tunes extractive question-answering models with LoRA
// adapters on LibTorch, and serves them.
//
// Run `loraqa help` for the subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"syscall"
)

// command is one subcommand: its run function gets the arguments after its name.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{}

func register(name, summary string, run func(ctx context.Context, args []string) error) {
	commands[name] = command{summary: summary, run: run}
}

// usageError marks a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

func usage() {
	fmt.Fprintln(os.Stderr, "usage: loraqa <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'loraqa <command> -h' for a command's flags.")
}

func main() {
	passiveOpenMP()
	os.Exit(mainExit())
}

// passiveOpenMP re-executes the binary once with OMP_WAIT_POLICY=PASSIVE unless
// the user set a policy. LibTorch's OpenMP threads otherwise spin between
// parallel regions and starve OpenBLAS's own threads: on 2 cores an eval
// forward took 2.6x as long. libgomp reads the variable when it loads, before
// main runs, so setting it here would be too late.
func passiveOpenMP() {
	if os.Getenv("OMP_WAIT_POLICY") != "" {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	env := append(os.Environ(), "OMP_WAIT_POLICY=PASSIVE")
	_ = syscall.Exec(exe, os.Args, env) // returns only on failure: go on as we are
}

func mainExit() (code int) {
	if len(os.Args) < 2 || os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help" {
		usage()
		if len(os.Args) < 2 {
			return 2
		}
		return 0
	}
	name := os.Args[1]
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "loraqa: unknown command %q\n\n", name)
		usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "loraqa %s: internal error: %v\n", name, r)
			if os.Getenv("LORAQA_DEBUG") != "" {
				os.Stderr.Write(debug.Stack())
			} else {
				fmt.Fprintln(os.Stderr, "(set LORAQA_DEBUG=1 for a stack trace, and please report it)")
			}
			code = 3
		}
	}()
	if err := cmd.run(ctx, os.Args[2:]); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "loraqa %s: %v\n", name, err)
			return 2
		}
		if errors.Is(err, errHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "loraqa %s: error: %v\n", name, err)
		return 1
	}
	return 0
}
