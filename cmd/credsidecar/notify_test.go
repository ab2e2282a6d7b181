package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// notifySocket listens where systemd would and points $NOTIFY_SOCKET at it.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", path, err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// receive returns the next datagram, failing the test after a generous bound.
func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("read notify socket: %v", err)
	}
	return string(buf[:n])
}

func TestNotifyReady(t *testing.T) {
	conn := notifySocket(t)
	notifyReady(zaptest.NewLogger(t))
	if got := receive(t, conn); got != "READY=1" {
		t.Errorf("notification = %q, want READY=1", got)
	}
}

func TestWatchdogPings(t *testing.T) {
	conn := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "100000") // 100ms: pings every 50ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		runWatchdog(ctx, zaptest.NewLogger(t))
	}()
	for i := range 3 {
		if got := receive(t, conn); got != "WATCHDOG=1" {
			t.Errorf("ping %d = %q, want WATCHDOG=1", i, got)
		}
	}
	cancel()
	<-done
}

// Outside systemd both are no-ops: nothing is sent, nothing blocks.
func TestNotifyOutsideSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	notifyReady(zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runWatchdog(ctx, zaptest.NewLogger(t)) // returns at once: the watchdog is off
}

// A watchdog meant for another process (WATCHDOG_PID not ours) is not pinged.
func TestWatchdogOtherPID(t *testing.T) {
	notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()+1))
	runWatchdog(context.Background(), zaptest.NewLogger(t)) // must return at once
}
