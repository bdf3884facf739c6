package devcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Binaries are the absolute paths of the executables a cluster runs.
type Binaries struct {
	Etcd                  string
	KubeAPIServer         string
	KubeControllerManager string
	KubeScheduler         string
	Kwok                  string
}

// FindBinaries fills the empty fields of b with the pinned tools that hack/tools.sh builds
// into its cache, building any that is missing (minutes, once; the script's progress is
// copied to os.Stderr as it runs). It finds hack/tools.sh in the repository that contains
// the working directory.
func FindBinaries(ctx context.Context, b Binaries) (Binaries, error) {
	fields := []struct {
		tool string
		path *string
	}{
		{"etcd", &b.Etcd},
		{"kube-apiserver", &b.KubeAPIServer},
		{"kube-controller-manager", &b.KubeControllerManager},
		{"kube-scheduler", &b.KubeScheduler},
		{"kwok", &b.Kwok},
	}
	var script string
	for _, f := range fields {
		if *f.path != "" {
			continue
		}
		if script == "" {
			root, err := RepoRoot()
			if err != nil {
				return b, fmt.Errorf("finding the %s binary: %w", f.tool, err)
			}
			script = filepath.Join(root, "hack", "tools.sh")
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "bash", script, "path", f.tool)
		// A cold build takes minutes: its progress goes to stderr as it happens, so that
		// the person waiting sees it, and is kept for the error.
		cmd.Stdout, cmd.Stderr = &stdout, io.MultiWriter(os.Stderr, &stderr)
		if err := cmd.Run(); err != nil {
			return b, fmt.Errorf("running %s path %s: %w: %s", script, f.tool, err, lastLines(stderr.String(), 20))
		}
		*f.path = strings.TrimSpace(stdout.String())
	}
	for _, f := range fields {
		st, err := os.Stat(*f.path)
		if err != nil {
			return b, fmt.Errorf("the %s binary: %w", f.tool, err)
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return b, fmt.Errorf("the %s binary %s is not an executable file", f.tool, *f.path)
		}
		abs, err := filepath.Abs(*f.path)
		if err != nil {
			return b, err
		}
		*f.path = abs
	}
	return b, nil
}

// RepoRoot returns the root of the Homeostat repository: the nearest parent of the
// working directory, or else of the running executable, with hack/tools.sh next to a go.mod.
func RepoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for {
			if fileExists(filepath.Join(dir, "go.mod")) && fileExists(filepath.Join(dir, "hack", "tools.sh")) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("neither the working directory nor the executable is inside the homeostat repository (no hack/tools.sh); set Options.Binaries")
}

// lastLines returns the last n lines of s, trimmed.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
