// Command pause is the cluster test's pod sandbox image: it sleeps until
// SIGTERM or SIGINT and exits 0 (images cannot be pulled on the test
// machines, so the usual pause image is replaced by this static binary).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
}
