package main

import (
	"context"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/homeostat-dev/homeostat/internal/devcluster/demo"
)

// TestHelperUpUntilInterrupted is the process of TestCtrlCStopsTheClusterAndLeavesNoProcess:
// devcluster up with no command, which holds the cluster until it is interrupted.
func TestHelperUpUntilInterrupted(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("only runs as the process of another test")
	}
	os.Exit(run(context.Background(), []string{"up", "--kubeconfig", os.Getenv("HOMEOSTAT_TEST_KUBECONFIG")}, os.Stdout, os.Stderr))
}

// TestCtrlCStopsTheClusterAndLeavesNoProcess runs devcluster up as a process of its own,
// waits until its cluster answers, sends it SIGINT (what Ctrl-C sends) and checks that it
// exits and that every process it started (etcd, kube-apiserver, controller-manager,
// scheduler, kwok) is gone.
func TestCtrlCStopsTheClusterAndLeavesNoProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local control plane; skipped with -short")
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperUpUntilInterrupted$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "HOMEOSTAT_TEST_KUBECONFIG="+kubeconfig, "KUBECONFIG="+filepath.Join(t.TempDir(), "none"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	deadline := time.Now().Add(3 * time.Minute)
	for !fileExists(kubeconfig) || !kubeconfigAnswersAt(t, kubeconfig) {
		if time.Now().After(deadline) {
			t.Fatal("the cluster of devcluster up never answered")
		}
		select {
		case err := <-done:
			t.Fatalf("devcluster up exited before it was interrupted: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	children := descendants(cmd.Process.Pid)
	if len(children) < 5 {
		t.Fatalf("devcluster up runs %d processes, want at least etcd, kube-apiserver, controller-manager, scheduler and kwok: %v", len(children), children)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("devcluster up exited with %v after SIGINT, want 0", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("devcluster up did not exit within a minute of SIGINT")
	}
	for pid, name := range children {
		if alive(pid) {
			t.Errorf("process %d (%s) of the cluster is still running after Ctrl-C", pid, name)
		}
	}
	if kubeconfigAnswersAt(t, kubeconfig) {
		t.Error("the cluster still answers after Ctrl-C")
	}
}

// TestHelperRunUntilInterrupted is the process of TestRunWithTheDemoLeavesNoProcess:
// devcluster run on a cluster of its own, with the demo, whose "manager" sleeps.
func TestHelperRunUntilInterrupted(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("only runs as the process of another test")
	}
	os.Exit(run(context.Background(), []string{"run", "--name=", "--kubeconfig", os.Getenv("HOMEOSTAT_TEST_KUBECONFIG"),
		"--prometheus-address", os.Getenv("HOMEOSTAT_TEST_PROMETHEUS"), "--manager", os.Getenv("HOMEOSTAT_TEST_SLEEP"), "--", "3600"},
		os.Stdout, os.Stderr))
}

// TestRunWithTheDemoLeavesNoProcess runs devcluster run, with the demo, as a process of
// its own, waits until its cluster answers, Prometheus is ready and the manager runs,
// and then interrupts it (SIGINT, Ctrl-C: it must exit 0) or kills it (SIGKILL: what it
// started must die with it, by their parent-death signal). Either way, every process it
// started (the components, Prometheus, the manager) must be gone, and nothing may answer
// on Prometheus' port.
func TestRunWithTheDemoLeavesNoProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local control plane; skipped with -short")
	}
	needTool(t, "prometheus", "run `bash hack/tools.sh prometheus` (make test-e2e does)")
	sleep := needTool(t, "sleep", "it is part of coreutils")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
			promAddr := "127.0.0.1:" + strconv.Itoa(freeLoopbackPorts(t, 1)[0])
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRunUntilInterrupted$")
			cmd.Env = append(os.Environ(), helperEnv+"=1", "HOMEOSTAT_TEST_KUBECONFIG="+kubeconfig,
				"HOMEOSTAT_TEST_PROMETHEUS="+promAddr, "HOMEOSTAT_TEST_SLEEP="+sleep, "KUBECONFIG="+filepath.Join(t.TempDir(), "none"),
				"TMPDIR="+t.TempDir()) // the cluster's work directory, which a killed run leaves behind
			var out syncBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				if t.Failed() {
					t.Logf("devcluster wrote:\n%s", out.String())
				}
			})

			var children map[int]string
			deadline := time.Now().Add(3 * time.Minute)
			for {
				children = descendants(cmd.Process.Pid)
				if kubeconfigAnswersAt(t, kubeconfig) && promReady(promAddr) && slices.Contains(slices.Collect(maps.Values(children)), "sleep") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("devcluster run did not start the cluster, Prometheus and the manager within 3 minutes; it runs %v", children)
				}
				select {
				case err := <-done:
					t.Fatalf("devcluster run exited before it was interrupted: %v", err)
				case <-time.After(200 * time.Millisecond):
				}
			}
			names := slices.Sorted(maps.Values(children))
			for _, want := range []string{"etcd", "kube-apiserver", "prometheus", "sleep"} {
				if !slices.Contains(names, want) {
					t.Fatalf("devcluster run runs %v, without %s", names, want)
				}
			}

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if sig == syscall.SIGINT && err != nil {
					t.Fatalf("devcluster run exited with %v after SIGINT, want 0", err)
				}
			case <-time.After(time.Minute):
				t.Fatalf("devcluster run did not exit within a minute of %s", sig)
			}
			// SIGINT: devcluster has waited for them. SIGKILL: the kernel kills them as their
			// parent dies; give it a moment.
			deadline = time.Now().Add(10 * time.Second)
			for pid, name := range children {
				for alive(pid) && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
				}
				if alive(pid) {
					t.Errorf("Process %d (%s) of devcluster run is still running after %s", pid, name, sig)
				}
			}
			if promReady(promAddr) {
				t.Errorf("Prometheus still answers at %s after %s", promAddr, sig)
			}
		})
	}
}

// promReady says whether a Prometheus at addr answers ready.
func promReady(addr string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(demo.PrometheusURL(addr) + "/-/ready")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// descendants returns the processes below pid, with their names, from /proc.
func descendants(pid int) map[int]string {
	parent := map[int]int{}
	name := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		fields := strings.Fields(s[closing+1:])
		if len(fields) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(fields[1])
		parent[p], name[p] = pp, s[open+1:closing]
	}
	out := map[int]string{}
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out[p] = name[p]
				break
			}
		}
	}
	return out
}

// alive is true while pid runs (a zombie counts as gone).
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || len(s) < i+3 || s[i+2] != 'Z'
}
