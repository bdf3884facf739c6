package devcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// InstallCRDs creates the CustomResourceDefinitions in the given files or directories of
// YAML and waits until the apiserver serves them.
func (c *Cluster) InstallCRDs(ctx context.Context, paths ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	crds, err := envtest.InstallCRDs(c.RESTConfig(), envtest.CRDInstallOptions{
		Paths:              paths,
		ErrorIfPathMissing: true,
		MaxTime:            time.Minute,
	})
	if err != nil {
		return fmt.Errorf("installing CRDs from %v: %w", paths, err)
	}
	c.log.Info("Installed CRDs", "count", len(crds), "paths", paths)
	return nil
}

// childStopGrace is how long a child started by Command gets after SIGTERM.
const childStopGrace = 10 * time.Second

// Command returns a command that runs name with args against the cluster: KUBECONFIG
// points at the cluster's kubeconfig. Start it with StartProcess, so that it has its own
// process group and dies with this process. When ctx is done the whole group gets SIGTERM
// and, 10 s later, the command SIGKILL.
//
// A command that forks its work into a grandchild (go run does) is only reached by the
// SIGTERM to its group, not by the parent-death signal: build the program and run the
// binary instead.
func (c *Cluster) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(cmd.SysProcAttr)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = childStopGrace
	return cmd
}

// StartForTest starts a cluster for a test, with the test's context, and stops it when the
// test ends. When the test has failed by then, it logs the end of every component's log
// first. Progress messages go to the test log unless opts.Logger is set. The test fails if
// the cluster does not start or stop.
func StartForTest(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	if opts.Logger.GetSink() == nil {
		opts.Logger = testr.NewWithInterface(tb, testr.Options{})
	}
	c, err := Start(tb.Context(), opts)
	if err != nil {
		tb.Fatalf("Starting the local cluster: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("The test failed; the components' logs in %s end with:\n%s", c.Dir(), c.LogTails(30))
		}
		if err := c.Stop(); err != nil {
			tb.Errorf("Stopping the local cluster: %v", err)
		}
	})
	return c
}
