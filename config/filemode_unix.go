//go:build unix

package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// insecureFile says how users other than the sidecar's own and root could
// read or replace the secret file at path, with the command that fixes it;
// "" when they cannot. As ssh's StrictModes, it follows symlinks to the
// real file (a Kubernetes Secret key is a symlink through ..data) and
// checks:
//   - the real file is owned by root or by the sidecar's user, and no one
//     else can read or write it — except that a root-owned file may be
//     readable by the sidecar's own group (what the kubelet makes of a
//     Secret with defaultMode 0400 and an fsGroup, and what
//     `chgrp credsidecar; chmod 640` does on a host);
//   - every directory above the real file, and above each symlink on the
//     way to it, and each of those symlinks, is owned by root or the
//     sidecar's user, and no directory is writable by others unless it is
//     sticky (as /tmp is), so no one else can swap the file or a link.
//
// A file that cannot be resolved or stat'ed gets "": reading it fails
// with its own error.
func insecureFile(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return ""
	}
	fi, err := os.Stat(real)
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	euid := uint32(os.Geteuid())
	name := real
	if real != abs {
		name = fmt.Sprintf("%s (the real file of %s)", real, abs)
	}
	if st.Uid != 0 && st.Uid != euid {
		return fmt.Sprintf("%s is owned by uid %d, who can read and change it: chown %d %s && chmod 600 %s", name, st.Uid, euid, real, real)
	}
	perm := uint32(fi.Mode().Perm())
	groupReadOK := st.Uid == 0 && ownGroup(st.Gid)
	bad := perm & 0o077
	if groupReadOK {
		bad &^= 0o050 // read (and search) by the sidecar's own group
	}
	if bad != 0 {
		fix := fmt.Sprintf("chmod 600 %s", real)
		if st.Uid == 0 && euid != 0 {
			// root's file, read by a non-root sidecar: through its group.
			fix = fmt.Sprintf("chgrp %d %s && chmod 640 %s", os.Getegid(), real, real)
		}
		return fmt.Sprintf("%s is %s (mode %04o): %s", name, describeMode(perm, groupReadOK), perm, fix)
	}

	chain := symlinkChain(abs)
	var dirs []string
	for _, n := range chain {
		if li, err := os.Lstat(n); err == nil && li.Mode()&os.ModeSymlink != 0 {
			if ls, ok := li.Sys().(*syscall.Stat_t); ok && ls.Uid != 0 && ls.Uid != euid {
				return fmt.Sprintf("symlink %s on the way to %s is owned by uid %d, who can point it elsewhere: replace it with a link owned by root", n, real, ls.Uid)
			}
		}
		for _, d := range ancestors(filepath.Dir(n)) {
			if !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
	}
	for _, d := range ancestors(filepath.Dir(real)) {
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		di, err := os.Stat(d)
		if err != nil {
			continue
		}
		ds, ok := di.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		if ds.Uid != 0 && ds.Uid != euid {
			return fmt.Sprintf("directory %s (above %s) is owned by uid %d, who can replace the file: chown %d %s (or move the file)", d, real, ds.Uid, euid, d)
		}
		dp := uint32(di.Mode().Perm())
		if dp&0o022 != 0 && di.Mode()&os.ModeSticky == 0 {
			return fmt.Sprintf("directory %s (above %s) is writable by %s (mode %04o), who can replace the file: chmod go-w %s", d, real, writers(dp), dp, d)
		}
	}
	return ""
}

// writers names who besides the owner may write a directory of mode perm.
func writers(perm uint32) string {
	switch {
	case perm&0o020 != 0 && perm&0o002 != 0:
		return "its group and other users"
	case perm&0o020 != 0:
		return "its group"
	default:
		return "other users"
	}
}

// ownGroup reports whether gid is the sidecar's effective group or one of
// its supplementary groups.
func ownGroup(gid uint32) bool {
	if gid == uint32(os.Getegid()) {
		return true
	}
	groups, err := os.Getgroups()
	if err != nil {
		return false
	}
	return slices.Contains(groups, int(gid))
}
