// Package proc attests the host process behind a TCP connection: from the
// client socket's inode (sock_diag) to the process holding it (found in
// /proc/PID/fd, scanning only the socket owner's processes), pinned with a
// pidfd while its cgroup, systemd unit and executable are read. What this
// file holds is pure: parsing /proc/PID/cgroup and computing units as
// systemd does, tested over captured layouts.
package proc

import (
	"errors"
	"strings"
)

// CgroupPath picks the cgroup path systemd tracks the process by from the
// contents of /proc/PID/cgroup: cgroup v1's name=systemd hierarchy when
// present, else the v2 unified one ("0::"). A path outside the reader's
// cgroup namespace (shown as "/.." by the kernel) is an error: it cannot be
// placed relative to systemd's root.
func CgroupPath(data []byte) (string, error) {
	var unified string
	var haveUnified bool
	for lines := string(data); lines != ""; {
		var line string
		line, lines, _ = strings.Cut(lines, "\n")
		id, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		ctrl, path, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		switch {
		case ctrl == "name=systemd":
			return checkPath(path)
		case id == "0" && ctrl == "":
			unified, haveUnified = path, true
		}
	}
	if !haveUnified {
		return "", errors.New("no name=systemd or unified cgroup hierarchy")
	}
	return checkPath(unified)
}

func checkPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", errors.New("cgroup path is not absolute")
	}
	if p == "/.." || strings.HasPrefix(p, "/../") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
		return "", errors.New("cgroup is outside the sidecar's cgroup namespace")
	}
	return strings.TrimSuffix(p, " (deleted)"), nil
}

// SystemdRoot is systemd's root cgroup given PID 1's cgroup path: that path
// without a trailing /init.scope (systemd's own scope since v229).
func SystemdRoot(pid1 string) string {
	r := strings.TrimSuffix(pid1, "/init.scope")
	if r == "" {
		return "/"
	}
	return r
}

// Relative returns path relative to root, "/"-rooted, or false when path is
// not below root (then systemd's tree says nothing about it).
func Relative(path, root string) (string, bool) {
	if root == "/" {
		return path, true
	}
	if path == root {
		return "/", true
	}
	if strings.HasPrefix(path, root+"/") {
		return path[len(root):], true
	}
	return "", false
}

// Units computes the system unit and the user unit of a cgroup path
// relative to systemd's root, as sd_pid_get_unit and sd_pid_get_user_unit
// do: skip the leading slices; the first other component is the unit, and
// everything below it belongs to it — so what runs below user@UID.service,
// a Delegate=yes unit or a machine-*.scope is that unit, whatever its own
// sub-cgroups are called. Below user@UID.service the same rule, applied to
// the rest of the path, gives the user unit. A component that is not a
// valid unit name makes the unit unknown ("").
func Units(rel string) (unit, userUnit string) {
	parts := strings.Split(strings.Trim(rel, "/"), "/")
	unit, rest := firstUnit(parts)
	if unit == "" {
		return "", ""
	}
	if isUserManager(unit) {
		userUnit, _ = firstUnit(rest)
	}
	return unit, userUnit
}

func firstUnit(parts []string) (string, []string) {
	for i, p := range parts {
		if p == "" {
			return "", nil
		}
		if strings.HasSuffix(p, ".slice") {
			if !validUnitName(p) {
				return "", nil
			}
			continue
		}
		if !validUnitName(p) {
			return "", nil
		}
		return p, parts[i+1:]
	}
	return "", nil
}

// unitSuffixes are the unit types that hold processes.
var unitSuffixes = []string{".service", ".scope"}

// validUnitName reports whether s is a unit name systemd could have made a
// cgroup for: a known suffix, a non-empty prefix of systemd's alphabet.
func validUnitName(s string) bool {
	suffix := ""
	for _, sf := range append(unitSuffixes, ".slice") {
		if strings.HasSuffix(s, sf) {
			suffix = sf
		}
	}
	if suffix == "" || len(s) > 255 {
		return false
	}
	name := strings.TrimSuffix(s, suffix)
	if name == "" {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune(":-_.\\@", r):
		default:
			return false
		}
	}
	return true
}

// isUserManager reports whether unit is user@UID.service.
func isUserManager(unit string) bool {
	uid, ok := strings.CutPrefix(unit, "user@")
	if !ok {
		return false
	}
	uid, ok = strings.CutSuffix(uid, ".service")
	if !ok || uid == "" {
		return false
	}
	for _, r := range uid {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
