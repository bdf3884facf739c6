package devcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// StopAPIServer stops the kube-apiserver process (SIGTERM, then SIGKILL after a grace
// period) and waits until it is gone, for a test of what its clients do while it is
// down. etcd and every other component keep running, blind, as they would behind a
// failed API server; nothing can change the cluster's objects until StartAPIServer.
func (c *Cluster) StopAPIServer() error {
	c.procsMu.Lock()
	i := slices.IndexFunc(c.procs, func(p *process) bool { return p.name == "kube-apiserver" })
	if i < 0 {
		c.procsMu.Unlock()
		return errors.New("kube-apiserver is not running")
	}
	p := c.procs[i]
	c.procs = slices.Delete(c.procs, i, i+1)
	err := writePidFile(c.dir, c.procs)
	c.procsMu.Unlock()
	p.stop(stopGrace)
	c.log.Info("Stopped kube-apiserver", "pid", p.pid())
	return err
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, with the same flags,
// port, certificates and etcd (so with the same data), and returns once it is ready. The
// log of the stopped process is kept as logs/kube-apiserver.<n>.log.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	c.procsMu.Lock()
	running := slices.ContainsFunc(c.procs, func(p *process) bool { return p.name == "kube-apiserver" })
	c.procsMu.Unlock()
	if running {
		return errors.New("kube-apiserver is already running")
	}
	logs := filepath.Join(c.dir, "logs")
	for n := 1; ; n++ {
		old := filepath.Join(logs, "kube-apiserver."+strconv.Itoa(n)+".log")
		if fileExists(old) {
			continue
		}
		if err := os.Rename(filepath.Join(logs, "kube-apiserver.log"), old); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		break
	}
	if err := c.launch("kube-apiserver", c.bins.KubeAPIServer, apiserverArgs(c.dir, c.ports, c.pki, c.opts.DisableQPSLimits), nil); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := c.waitFor(ctx, "kube-apiserver to be ready again", func(ctx context.Context) error {
		_, err := c.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	}); err != nil {
		return fmt.Errorf("restarting kube-apiserver: %w", err)
	}
	c.log.Info("Restarted kube-apiserver", "port", c.ports.apiserver)
	return nil
}
