package devcluster

import "syscall"

// setParentDeathSignal makes the kernel SIGKILL the child when the thread that forked it
// exits (see StartProcess).
func setParentDeathSignal(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGKILL
}
