// Command benchtable runs a `go test -bench` command, passes its output
// through and ends it with a table of every figure the benchmarks
// reported: figure, value, limit, ratio (at most 1 when the limit is met).
// It exits with the command's status.
//
//	go run ./experiments/benchtable go test -run '^$' -bench . ./...
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/flmngr/flmngr/experiments"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtable go test -bench ... [packages]")
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stderr = os.Stdin, os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	figs, perr := experiments.ParseBench(out, os.Stdout)
	_, _ = io.Copy(io.Discard, out)
	err = cmd.Wait()
	fmt.Println()
	experiments.FormatFigures(os.Stdout, figs)
	if perr != nil {
		fmt.Fprintln(os.Stderr, "benchtable: reading the output:", perr)
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		os.Exit(exit.ExitCode())
	case err != nil:
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}
