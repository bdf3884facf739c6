//go:build !linux

package devcluster

import "syscall"

// setParentDeathSignal does nothing: only Linux has a parent-death signal (and /proc, which
// the cleanup of stale pids needs). Elsewhere a component can outlive a killed parent.
func setParentDeathSignal(*syscall.SysProcAttr) {}
