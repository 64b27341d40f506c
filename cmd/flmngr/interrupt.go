package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// interrupted returns a context cancelled by Ctrl-C or SIGTERM, the ways
// an operator or a service manager ends a command.
func interrupted() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
