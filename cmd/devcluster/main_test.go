package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

const helperEnv = "HOMEOSTAT_DEVCLUSTER_CLI_HELPER"

// TestHelperKubeconfigAnswers is the command that TestUpRunsTheCommandAgainstTheCluster
// runs: it exits with 7 unless KUBECONFIG's cluster answers.
func TestHelperKubeconfigAnswers(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("only runs as the command of another test")
	}
	if !kubeconfigAnswers(context.Background()) {
		os.Exit(7)
	}
	os.Exit(0)
}

// TestHelperWebhooksOff is the "manager" of TestRunAgainstAnAnsweringClusterTurnsWebhooksOff:
// it exits 0 only when the manager's --enable-webhooks would default to false, the way
// main.go reads it (os.Getenv("ENABLE_WEBHOOKS") != "false"), and 7 otherwise.
func TestHelperWebhooksOff(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("only runs as the command of another test")
	}
	if os.Getenv("ENABLE_WEBHOOKS") != "false" {
		fmt.Fprintf(os.Stderr, "ENABLE_WEBHOOKS=%q: the manager would serve its webhook\n", os.Getenv("ENABLE_WEBHOOKS"))
		os.Exit(7)
	}
	os.Exit(0)
}

// TestRunAgainstAnAnsweringClusterTurnsWebhooksOff is make run when KUBECONFIG's cluster
// answers: the manager runs against it, and without a serving certificate it must not
// serve its webhook. The cluster is a fake API server on loopback that answers /readyz.
func TestRunAgainstAnAnsweringClusterTurnsWebhooksOff(t *testing.T) {
	var readyz atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			readyz.Add(1)
			_, _ = w.Write([]byte("ok"))
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	conf := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: '" + srv.URL + "'}\n" +
		"contexts:\n- name: c\n  context: {cluster: c, user: u}\nusers:\n- name: u\n  user: {token: x}\ncurrent-context: c\n"
	if err := os.WriteFile(kubeconfig, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)
	t.Setenv(helperEnv, "1")
	t.Setenv("ENABLE_WEBHOOKS", "") // as in a shell that never set it

	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"run", "--manager", os.Args[0], "--", "-test.run=^TestHelperWebhooksOff$"}, &stdout, &stderr)
	if readyz.Load() == 0 {
		t.Fatalf("run never asked the cluster of KUBECONFIG for /readyz; stderr:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "KUBECONFIG's cluster answers") {
		t.Fatalf("run did not take the branch of an answering cluster; stderr:\n%s", stderr.String())
	}
	if code != 0 {
		t.Fatalf("run exited with %d, want 0 (the helper manager exits 7 when ENABLE_WEBHOOKS is not false); stderr:\n%s", code, stderr.String())
	}
}

func TestUpRunsTheCommandAgainstTheClusterAndExitsWithIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local control plane; skipped with -short")
	}
	t.Setenv(helperEnv, "1")
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"up", "--kubeconfig", kubeconfig, "--", os.Args[0], "-test.run=^TestHelperKubeconfigAnswers$"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("up exited with %d, want 0 (the helper exits 7 when KUBECONFIG's cluster does not answer); stderr:\n%s", code, stderr.String())
	}
	if want := "export KUBECONFIG=" + kubeconfig + "\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}

	// The command's exit code is up's; the cluster is gone afterwards.
	code = run(t.Context(), []string{"up", "--", "sh", "-c", "exit 3"}, &stdout, &stderr)
	if code != 3 {
		t.Errorf("up exited with %d, want the command's 3", code)
	}
	if kubeconfigAnswersAt(t, kubeconfig) {
		t.Error("The cluster still answers after up returned")
	}
}

func TestKubeconfigAnswersNotWithoutACluster(t *testing.T) {
	if kubeconfigAnswersAt(t, filepath.Join(t.TempDir(), "missing")) {
		t.Error("A missing kubeconfig answers")
	}
	// A kubeconfig whose server is a closed loopback port.
	path := filepath.Join(t.TempDir(), "kubeconfig")
	conf := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n" +
		"contexts:\n- name: c\n  context: {cluster: c, user: u}\nusers:\n- name: u\n  user: {token: x}\ncurrent-context: c\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if kubeconfigAnswersAt(t, path) {
		t.Error("A kubeconfig of a closed port answers")
	}
}

func TestUsageOnUnknownVerb(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"down"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage:") {
		t.Errorf("Got %d and %q, want 2 and the usage", code, stderr.String())
	}
	if code := run(t.Context(), []string{"run"}, &stdout, &stderr); code != 2 {
		t.Errorf("run without --manager exited with %d, want 2", code)
	}
}

func kubeconfigAnswersAt(t *testing.T, path string) bool {
	t.Setenv("KUBECONFIG", path)
	return kubeconfigAnswers(context.Background())
}

// TestRunInstallsCRDsAndSamplesAndRunsTheManager is make run without a cluster: the
// "manager" here is kubectl, which can only list the sample app when the CRDs are
// installed, the samples applied and KUBECONFIG points at the new cluster. (The child
// writes to the process's own stdout.)
func TestRunInstallsCRDsAndSamplesAndRunsTheManager(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local control plane; skipped with -short")
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		msg := "kubectl is not on PATH: run `bash hack/tools.sh kubernetes` and put the directory " +
			"of `bash hack/tools.sh path kubectl` first on PATH (make test does)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI is set, so this fails instead of skipping")
		}
		t.Skip(msg)
	}
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"run", "--name", "homeostat-cli-test", "--demo=false", "--manager", kubectl, "--",
		"get", "autonomicapp", "shop", "-n", "homeostat-demo", "-o", "name"}, &stdout, &stderr)
	// kubectl get exits 1 when the kind or the app is missing.
	if code != 0 {
		t.Fatalf("run exited with %d (kubectl could not get the sample app); stderr:\n%s", code, stderr.String())
	}
}
