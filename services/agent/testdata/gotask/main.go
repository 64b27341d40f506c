// Command gotask is the smallest Go task process: it reports Started, or
// the error given as its first argument, and then waits to be stopped.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 {
		fmt.Printf("{\"type\":\"error\",\"exception\":%q}\n", os.Args[1])
	} else {
		fmt.Println(`{"type":"info","info":"Started"}`)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
