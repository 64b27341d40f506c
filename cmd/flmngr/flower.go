package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/flmngr/flmngr/tasks/flowerapp"
)

// runFlower runs a driver of a Flower App task until it ends or is asked
// to stop (SIGTERM: the run is stopped with `flwr stop` first).
func runFlower(args []string, out io.Writer) error {
	ctx, stop := interrupted()
	defer stop()
	err := flowerapp.Command(ctx, args, out, os.Stderr)
	switch {
	case errors.Is(err, flowerapp.ErrUsage):
		return fmt.Errorf("%w%s", errUsage, strings.TrimPrefix(err.Error(), "usage"))
	case err != nil:
		return errReported // the error line is on stdout already
	}
	return nil
}
