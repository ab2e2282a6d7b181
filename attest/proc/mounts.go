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

// initialPIDNamespace is how /proc/PID/ns/pid names the kernel's initial
// PID namespace: its inode number is fixed (PROC_PID_INIT_INO, 0xEFFFFFFC,
// include/linux/proc_ns.h).
const initialPIDNamespace = "pid:[4026531836]"

// InInitialPIDNamespace reports whether the process reading dir (a /proc
// mount) is in the host's PID namespace, where the pids the Docker API and
// other processes' /proc entries name are its own. (NSpid in
// /proc/self/status cannot tell: a container's own /proc shows only the
// levels from its namespace down, one entry.)
func InInitialPIDNamespace(dir string) bool {
	link, err := os.Readlink(dir + "/self/ns/pid")
	return err == nil && link == initialPIDNamespace
}
