package proc

import (
	"os"
	"strings"
)

// HidesProcesses reports whether the /proc mounted at dir hides other
// users' processes (hidepid, as systemd's ProtectProc=invisible sets it),
// from this process's mount table; an error when the table is unreadable
// (as outside Linux).
func HidesProcesses(dir string) (bool, error) {
	m, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(m), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == dir && strings.Contains(line, "hidepid=") && !strings.Contains(line, "hidepid=0") && !strings.Contains(line, "hidepid=off") {
			return true, nil
		}
	}
	return false, nil
}
