//go:build !linux

package devcluster

import "syscall"

// setParentDeathSignal does nothing: only Linux has a parent-death signal. Elsewhere a
// component outlives a killed parent until the next Start in its directory kills it.
func setParentDeathSignal(*syscall.SysProcAttr) {}
