package devcluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a component gets to exit after SIGTERM before it is killed.
const stopGrace = 5 * time.Second

// launcher forks every child process from one OS thread that never exits.
//
// The kernel sends a child its parent-death signal (Pdeathsig) when the thread that forked
// it exits, not when the process does. The Go runtime ends a thread when a goroutine that
// locked it returns, so a child forked from an arbitrary goroutine could be killed early
// by an unrelated library. This goroutine locks its thread and never returns.
var launcher struct {
	once sync.Once
	reqs chan launchRequest
}

type launchRequest struct {
	cmd *exec.Cmd
	err chan<- error
}

// StartProcess starts cmd in its own process group, with SIGKILL as its parent-death signal,
// so that it never outlives the calling process: not on Ctrl-C, not on a failed or killed
// test. Stopping it (for example through exec.Cmd.Cancel) is the caller's business;
// Cluster.Command prepares such a command.
func StartProcess(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	setParentDeathSignal(cmd.SysProcAttr)

	launcher.once.Do(func() {
		launcher.reqs = make(chan launchRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range launcher.reqs {
				r.err <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	launcher.reqs <- launchRequest{cmd: cmd, err: errc}
	return <-errc
}

// process is one running component of the control plane.
type process struct {
	name    string // component name, also the log file name
	binary  string // absolute path of the executable
	cmd     *exec.Cmd
	logPath string
	logFile *os.File

	done    chan struct{} // closed when the process has exited and been reaped
	waitErr error         // valid after done is closed
}

// startProcess starts binary with args as the component name. Its output goes to
// logs/<name>.log in dir and, when extra is not nil, to extra with every line prefixed.
func startProcess(dir, name, binary string, args, env []string, extra io.Writer) (*process, error) {
	logPath := filepath.Join(dir, "logs", name+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the log of %s: %w", name, err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if extra != nil {
		w := io.MultiWriter(logFile, &prefixWriter{prefix: "[" + name + "] ", w: extra})
		cmd.Stdout, cmd.Stderr = w, w
		cmd.WaitDelay = time.Second // do not hang on the output copy after the process exited
	} else {
		cmd.Stdout, cmd.Stderr = logFile, logFile
	}
	if err := StartProcess(cmd); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, binary: binary, cmd: cmd, logPath: logPath, logFile: logFile, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, waits up to grace, then sends SIGKILL, and
// waits until the process has been reaped. It returns nothing: a component that had to be
// killed is not an error, the work dir is thrown away.
func (p *process) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	pgid := p.pid() // Setpgid makes the component the leader of its own group
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

// stopAll stops the processes in the reverse of their start order, so that each goes
// while what it depends on still runs (an apiserver without etcd takes its whole grace
// period to give up). Processes of the same tier stop in parallel.
func stopAll(procs []*process) {
	tiers := map[string]int{"etcd": 2, "kube-apiserver": 1}
	for tier := 0; tier <= 2; tier++ {
		var wg sync.WaitGroup
		for _, p := range procs {
			if tiers[p.name] == tier {
				wg.Go(func() { p.stop(stopGrace) })
			}
		}
		wg.Wait()
	}
}

// logTail returns the last n lines of the component's log.
func (p *process) logTail(n int) string {
	return tailFile(p.logPath, n)
}

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// exitError describes a component that exited while the cluster needed it.
func (p *process) exitError() error {
	tail := p.logTail(20)
	err := fmt.Errorf("%s exited (%v); log %s ends with:\n%s", p.name, p.waitErr, p.logPath, tail)
	if strings.Contains(tail, "address already in use") {
		return errors.Join(errPortInUse, err)
	}
	return err
}

// errPortInUse marks a start that failed because another process took a port first.
var errPortInUse = errors.New("a port was taken by another process")

// prefixWriter writes every line with a prefix.
type prefixWriter struct {
	prefix string
	w      io.Writer

	mu  sync.Mutex
	buf []byte
}

func (pw *prefixWriter) Write(b []byte) (int, error) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	pw.buf = append(pw.buf, b...)
	for {
		i := bytes.IndexByte(pw.buf, '\n')
		if i < 0 {
			break
		}
		line := make([]byte, 0, len(pw.prefix)+i+1)
		line = append(append(line, pw.prefix...), pw.buf[:i+1]...)
		if _, err := pw.w.Write(line); err != nil {
			return len(b), err
		}
		pw.buf = pw.buf[i+1:]
	}
	return len(b), nil
}

// The pid file lists the running components of a cluster, one "<name> <pid>" a line, so
// that the next Start in the same work dir can kill what a SIGKILLed run left behind.
const pidFileName = "pids"

func writePidFile(dir string, procs []*process) error {
	var b strings.Builder
	for _, p := range procs {
		fmt.Fprintf(&b, "%s %d %s\n", p.name, p.pid(), p.binary)
	}
	tmp := filepath.Join(dir, pidFileName+".tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, pidFileName))
}

// staleProcess is an entry of a pid file.
type staleProcess struct {
	name, binary string
	pid          int
}

func readPidFile(dir string) ([]staleProcess, error) {
	f, err := os.Open(filepath.Join(dir, pidFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var out []staleProcess
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) != 3 {
			continue
		}
		pid, err := strconv.Atoi(fields[1])
		if err != nil || pid <= 1 {
			continue
		}
		out = append(out, staleProcess{name: fields[0], pid: pid, binary: fields[2]})
	}
	return out, s.Err()
}

// killStale kills the processes listed in dir's pid file that are still running as the
// components of that dir: the executable and a reference to dir in the command line must
// both match, so a pid reused by an unrelated process is left alone. It returns the names
// of what it killed.
func killStale(dir string) ([]string, error) {
	stale, err := readPidFile(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the pid file of %s: %w", dir, err)
	}
	var killed []string
	var pids []int
	for _, s := range stale {
		if !isComponentOf(s.pid, s.binary, dir) {
			continue
		}
		_ = syscall.Kill(-s.pid, syscall.SIGKILL)
		_ = syscall.Kill(s.pid, syscall.SIGKILL)
		killed = append(killed, fmt.Sprintf("%s (pid %d)", s.name, s.pid))
		pids = append(pids, s.pid)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for processAlive(pid) {
			if time.Now().After(deadline) {
				return killed, fmt.Errorf("pid %d survived SIGKILL", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := os.Remove(filepath.Join(dir, pidFileName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return killed, err
	}
	return killed, nil
}

// isComponentOf reports whether pid runs binary with dir in its arguments.
func isComponentOf(pid int, binary, dir string) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(raw) == 0 {
		return false
	}
	args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	if args[0] != binary {
		return false
	}
	for _, a := range args[1:] {
		if strings.Contains(a, dir) {
			return true
		}
	}
	return false
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may contain spaces.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] != 'Z' && s[i+2] != 'X'
}
