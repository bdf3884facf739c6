package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

func TestUpRunsTheCommandAgainstTheClusterAndExitsWithIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local control plane; skipped with -short")
	}
	t.Setenv(helperEnv, "1")
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	var stdout, stderr bytes.Buffer
	code := run([]string{"up", "--kubeconfig", kubeconfig, "--", os.Args[0], "-test.run=^TestHelperKubeconfigAnswers$"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("up exited with %d, want 0 (the helper exits 7 when KUBECONFIG's cluster does not answer); stderr:\n%s", code, stderr.String())
	}
	if want := "export KUBECONFIG=" + kubeconfig + "\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}

	// The command's exit code is up's; the cluster is gone afterwards.
	code = run([]string{"up", "--", "sh", "-c", "exit 3"}, &stdout, &stderr)
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
	if code := run([]string{"down"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage:") {
		t.Errorf("Got %d and %q, want 2 and the usage", code, stderr.String())
	}
	if code := run([]string{"run"}, &stdout, &stderr); code != 2 {
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
		t.Skip("kubectl is not installed")
	}
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	var stdout, stderr bytes.Buffer
	code := run([]string{"run", "--name", "homeostat-cli-test", "--manager", kubectl, "--",
		"get", "autonomicapp", "shop", "-n", "homeostat-demo", "-o", "name"}, &stdout, &stderr)
	// kubectl get exits 1 when the kind or the app is missing.
	if code != 0 {
		t.Fatalf("run exited with %d (kubectl could not get the sample app); stderr:\n%s", code, stderr.String())
	}
}
