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

	"github.com/loraqa/loraqa/torch"
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
	tuneRuntime()
	os.Exit(mainExit())
}

// tuneRuntime re-executes the binary once with runtime settings that LibTorch
// and glibc read when they load (before main runs, so setting them later
// would be too late), unless the user set them:
//   - OMP_WAIT_POLICY=PASSIVE: LibTorch's OpenMP threads otherwise spin between
//     parallel regions and starve OpenBLAS's threads (an eval forward took 2.6x
//     as long on 2 cores);
//   - for inference (predict, eval, serve, bench infer) MALLOC_MMAP_THRESHOLD_=1 MiB:
//     activations then go back to the OS when freed, which keeps the peak RSS
//     of a server flat; training keeps glibc's default, which is faster there.
func tuneRuntime() {
	var add []string
	if os.Getenv("OMP_WAIT_POLICY") == "" && torch.Source() == "debian" {
		add = append(add, "OMP_WAIT_POLICY=PASSIVE")
	}
	if len(os.Args) > 1 && os.Getenv("MALLOC_MMAP_THRESHOLD_") == "" {
		cmd := os.Args[1]
		if cmd == "predict" || cmd == "eval" || cmd == "serve" || (cmd == "bench" && len(os.Args) > 2 && os.Args[2] == "infer") {
			add = append(add, "MALLOC_MMAP_THRESHOLD_=1048576")
		}
	}
	if len(add) == 0 {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(exe, os.Args, append(os.Environ(), add...)) // returns only on failure: go on as we are
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
			if le := torch.AsError(r); le != nil { // a LibTorch failure no command caught
				fmt.Fprintf(os.Stderr, "loraqa %s: error: %v\n", name, le)
				code = 1
				return
			}
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
