package main

import (
	"context"
	"time"

	// Named sd: serve.go declares a type daemon.
	sd "github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// notifyReady tells systemd (Type=notify) that every listener is up. Outside
// systemd ($NOTIFY_SOCKET unset) it does nothing. A failure to notify is
// logged, not returned: the daemon serves either way, and systemd's own
// start timeout reports a unit that never became ready.
func notifyReady(log *zap.Logger) {
	sent, err := sd.SdNotify(false, sd.SdNotifyReady)
	switch {
	case err != nil:
		log.Warn("systemd readiness notification failed", zap.Error(err))
	case sent:
		log.Debug("notified systemd: ready")
	}
}

// runWatchdog pings systemd's watchdog (WatchdogSec=) at half the interval
// systemd expects, until ctx is done. It returns at once when the watchdog is
// off or meant for another process ($WATCHDOG_USEC unset, or $WATCHDOG_PID
// not ours). A daemon whose scheduler stalls stops pinging and systemd
// restarts it.
func runWatchdog(ctx context.Context, log *zap.Logger) {
	interval, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog settings are unusable; not pinging", zap.Error(err))
		return
	}
	if interval <= 0 {
		return
	}
	every := interval / 2
	log.Debug("systemd watchdog on", zap.Duration("timeout", interval), zap.Duration("ping_every", every))
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := sd.SdNotify(false, sd.SdNotifyWatchdog); err != nil {
			// Keep trying: systemd restarts the service if pings stay lost.
			log.Warn("systemd watchdog ping failed", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
