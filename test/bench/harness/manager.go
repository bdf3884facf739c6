// Package harness is what the benchmarks in test/bench share: the manager as a process
// (built from the working tree or from a git revision) with its metrics, pprof and
// resident memory, and the workload of many apps on the local control plane.
//
// It never talks to anything but 127.0.0.1.
package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/homeostat-dev/homeostat/internal/devcluster"
)

// BuildManager builds the manager from the working tree at root into out.
func BuildManager(ctx context.Context, root, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the manager: %w\n%s", err, b)
	}
	return nil
}

// BuildManagerAt builds the manager as it was at a git revision of the repository at
// root (its files, extracted with git archive into a temporary directory), into out.
func BuildManagerAt(ctx context.Context, root, rev, out string) error {
	dir, err := os.MkdirTemp("", "homeostat-bench-src-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	archive := exec.CommandContext(ctx, "git", "-C", root, "archive", "--format=tar", rev)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	var aerr, uerr strings.Builder
	archive.Stderr, untar.Stderr = &aerr, &uerr
	if err := untar.Start(); err != nil {
		return err
	}
	if err := archive.Run(); err != nil {
		_ = untar.Wait()
		return fmt.Errorf("git archive %s: %w: %s", rev, err, aerr.String())
	}
	if err := untar.Wait(); err != nil {
		return fmt.Errorf("extracting %s: %w: %s", rev, err, uerr.String())
	}
	return BuildManager(ctx, dir, out)
}

// ManagerOptions say how to run the manager.
type ManagerOptions struct {
	// Pprof serves /debug/pprof/ on a loopback port (--pprof-bind-address); the binary
	// must know the flag.
	Pprof bool
	// Args are more flags.
	Args []string
	// LogPath receives the manager's output; default manager.log in the cluster's directory.
	LogPath string
}

// Manager is a running manager process.
type Manager struct {
	MetricsAddr string
	PprofAddr   string
	LogPath     string
	// Started is when the process was started.
	Started time.Time

	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// StartManager runs bin against the cluster, with plain-HTTP metrics on a loopback port,
// no webhooks and no health probes. It dies with the calling process.
func StartManager(cluster *devcluster.Cluster, bin string, opts ManagerOptions) (*Manager, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	m := &Manager{MetricsAddr: "127.0.0.1:" + strconv.Itoa(port), LogPath: opts.LogPath, done: make(chan struct{})}
	if m.LogPath == "" {
		m.LogPath = filepath.Join(cluster.Dir(), "manager.log")
	}
	args := []string{"--kubeconfig", cluster.Kubeconfig(), "--enable-webhooks=false",
		"--metrics-bind-address", m.MetricsAddr, "--metrics-secure=false",
		"--health-probe-bind-address", "0", "--zap-log-level", "error"}
	if opts.Pprof {
		pp, err := FreePort()
		if err != nil {
			return nil, err
		}
		m.PprofAddr = "127.0.0.1:" + strconv.Itoa(pp)
		args = append(args, "--pprof-bind-address", m.PprofAddr)
	}
	args = append(args, opts.Args...)
	logf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := cluster.Command(ctx, bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, logf, logf
	m.Started = time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		_ = logf.Close()
		return nil, fmt.Errorf("starting the manager: %w", err)
	}
	m.cmd, m.cancel = cmd, cancel
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(m.done)
	}()
	return m, nil
}

// Pid is the manager's process id.
func (m *Manager) Pid() int { return m.cmd.Process.Pid }

// Exited says whether the process has ended.
func (m *Manager) Exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// Stop ends the manager (SIGTERM to its process group, SIGKILL 10 s later) and waits.
func (m *Manager) Stop() {
	m.once.Do(func() {
		m.cancel()
		<-m.done
	})
}

// RSSMiB is the manager's resident memory (VmRSS) in MiB.
func (m *Manager) RSSMiB() (float64, error) { return ProcessRSSMiB(m.Pid()) }

// WaitMetrics waits until the metrics endpoint answers.
func (m *Manager) WaitMetrics(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := m.Metrics(ctx); err == nil {
			return nil
		} else if m.Exited() {
			return fmt.Errorf("the manager exited; its log ends with:\n%s", Tail(m.LogPath, 30))
		} else if time.Now().After(deadline) {
			return fmt.Errorf("the metrics endpoint did not answer within %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Metrics scrapes the manager's metrics endpoint.
func (m *Manager) Metrics(ctx context.Context) (Metrics, error) {
	body, err := m.MetricsText(ctx)
	if err != nil {
		return nil, err
	}
	return ParseMetrics(body), nil
}

// MetricsText scrapes the manager's metrics endpoint and returns the exposition as text,
// uncompressed (it travels gzip-compressed when the scraper asks, as Prometheus does).
func (m *Manager) MetricsText(ctx context.Context) (string, error) {
	return get(ctx, "http://"+m.MetricsAddr+"/metrics")
}

// HeapStats are the Go runtime's memory figures of the manager, in bytes (the
// runtime.MemStats that /debug/pprof/heap?debug=1 ends with).
type HeapStats struct {
	// Alloc is the live heap: the bytes of reachable objects (and, without a collection
	// just before, of garbage not yet collected).
	Alloc float64
	// Inuse is the bytes of the heap's spans in use, fragmentation included.
	Inuse float64
	// Idle is the bytes of the heap's spans with no object; Released, those of them
	// returned to the system. Idle - Released is free heap the process still holds.
	Idle, Released float64
	// Stack is the bytes of goroutine stacks in use.
	Stack float64
	// Sys is all the memory the runtime obtained from the system.
	Sys float64
	// NextGC is the heap size at which the next collection starts.
	NextGC float64
}

// HeapAfterGC has the manager collect garbage and reads its heap. It needs pprof.
func (m *Manager) HeapAfterGC(ctx context.Context) (HeapStats, error) { return m.heapStats(ctx, true) }

// HeapNow reads the manager's heap as it is, without a collection. It needs pprof.
func (m *Manager) HeapNow(ctx context.Context) (HeapStats, error) { return m.heapStats(ctx, false) }

func (m *Manager) heapStats(ctx context.Context, gc bool) (HeapStats, error) {
	if m.PprofAddr == "" {
		return HeapStats{}, errors.New("the manager runs without pprof")
	}
	url := "http://" + m.PprofAddr + "/debug/pprof/heap?debug=1"
	if gc {
		url += "&gc=1"
	}
	body, err := get(ctx, url)
	if err != nil {
		return HeapStats{}, err
	}
	return parseHeapStats(body)
}

// parseHeapStats reads the runtime.MemStats lines of a heap profile in its text form.
func parseHeapStats(body string) (HeapStats, error) {
	var h HeapStats
	var err error
	for _, f := range []struct {
		prefix string
		dst    *float64
	}{
		{"# HeapAlloc = ", &h.Alloc}, {"# HeapInuse = ", &h.Inuse}, {"# HeapIdle = ", &h.Idle},
		{"# HeapReleased = ", &h.Released}, {"# Stack = ", &h.Stack}, {"# Sys = ", &h.Sys}, {"# NextGC = ", &h.NextGC},
	} {
		i := strings.Index(body, "\n"+f.prefix)
		if i < 0 {
			return HeapStats{}, fmt.Errorf("the heap profile has no %q", strings.TrimSpace(f.prefix))
		}
		value, _, _ := strings.Cut(body[i+1+len(f.prefix):], "\n")
		// "# Stack = <in use> / <obtained>"
		value, _, _ = strings.Cut(value, " /")
		if *f.dst, err = strconv.ParseFloat(strings.TrimSpace(value), 64); err != nil {
			return HeapStats{}, fmt.Errorf("reading %s of the heap profile: %w", strings.TrimSpace(f.prefix), err)
		}
	}
	return h, nil
}

// Profile saves /debug/pprof/<name>?<query> to path (for example "heap", "gc=1", or
// "profile", "seconds=20").
func (m *Manager) Profile(ctx context.Context, name, query, path string) error {
	if m.PprofAddr == "" {
		return errors.New("the manager runs without pprof")
	}
	url := "http://" + m.PprofAddr + "/debug/pprof/" + name
	if query != "" {
		url += "?" + query
	}
	body, err := get(ctx, url)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(body), 0o644)
}

var httpClient = &http.Client{Timeout: 2 * time.Minute}

func get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// ProcessRSSMiB reads VmRSS of a process from /proc/<pid>/status, in MiB.
func ProcessRSSMiB(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, err
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// ProcessCPUSeconds is the CPU time (user + system) a process has used, from /proc/<pid>/stat.
func ProcessCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: the fields after it are fixed.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return (utime + stime) / clockTicks, nil
}

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Tail returns the last n lines of a file.
func Tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// Signal sends sig to the manager's process.
func (m *Manager) Signal(sig syscall.Signal) error { return m.cmd.Process.Signal(sig) }
