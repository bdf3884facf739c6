// Package release_test checks what a release of Homeostat is made of, beside the code:
// `make docker-build` labels the image with the OCI annotations, CHANGELOG.md keeps a
// changelog, and the PROJECT file, which kubebuilder reads, lists the binaries and the
// chart the project ships.
package release_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/afero"
	"sigs.k8s.io/kubebuilder/v4/pkg/config/store/yaml"
	_ "sigs.k8s.io/kubebuilder/v4/pkg/config/v3" // registers the PROJECT file's version 3
	"sigs.k8s.io/kubebuilder/v4/pkg/machinery"
	sigsyaml "sigs.k8s.io/yaml"
)

const root = "../.."

// The OCI image annotations the image carries
// (https://github.com/opencontainers/image-spec/blob/main/annotations.md).
var ociLabels = []string{"title", "description", "source", "version", "revision", "created", "licenses"}

// TestDockerBuildLabelsTheImage checks that each OCI label of the Dockerfile's final
// stage is set, from a build arg of that stage where it varies, and that
// `make docker-build` passes every such build arg (what `make -n` would run).
func TestDockerBuildLabelsTheImage(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("Skipping: no make")
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages := regexp.MustCompile(`(?m)^FROM `).Split(string(dockerfile), -1)
	final := strings.ReplaceAll(stages[len(stages)-1], "\\\n", " ")
	args := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^ARG (\w+)`).FindAllStringSubmatch(final, -1) {
		args[m[1]] = true
	}
	labels := map[string]string{}
	for _, m := range regexp.MustCompile(`org\.opencontainers\.image\.(\w+)="([^"]*)"`).FindAllStringSubmatch(final, -1) {
		labels[m[1]] = m[2]
	}
	cmd := exec.Command("make", "-n", "docker-build", "IMG=homeostat:test", "VERSION=v1.2.3", "IMAGE_REVISION=0123abc")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n docker-build: %v\n%s", err, out)
	}
	passed := map[string]string{}
	for _, m := range regexp.MustCompile(`--build-arg (\w+)=(\S*)`).FindAllStringSubmatch(string(out), -1) {
		passed[m[1]] = m[2]
	}
	for _, l := range ociLabels {
		v, ok := labels[l]
		if !ok || v == "" {
			t.Errorf("The Dockerfile's final stage does not set org.opencontainers.image.%s", l)
			continue
		}
		for _, ref := range regexp.MustCompile(`\$\{(\w+)\}`).FindAllStringSubmatch(v, -1) {
			if !args[ref[1]] {
				t.Errorf("org.opencontainers.image.%s uses ${%s}, which the final stage does not declare with ARG", l, ref[1])
			}
			if _, ok := passed[ref[1]]; !ok {
				t.Errorf("make docker-build does not pass --build-arg %s (org.opencontainers.image.%s):\n%s", ref[1], l, out)
			}
		}
	}
	for arg, want := range map[string]string{"VERSION": "v1.2.3", "REVISION": "0123abc"} {
		if passed[arg] != want {
			t.Errorf("make docker-build passes %s=%q, want %q", arg, passed[arg], want)
		}
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(passed["CREATED"]) {
		t.Errorf("make docker-build passes CREATED=%q, not an RFC 3339 time in UTC", passed["CREATED"])
	}
	if labels["licenses"] != "Apache-2.0" {
		t.Errorf("org.opencontainers.image.licenses is %q; the code's license header is Apache-2.0", labels["licenses"])
	}
}

// TestChangelogKeepsAChangelog checks CHANGELOG.md's shape as keepachangelog.com has it:
// a title, an Unreleased section first, versions as second-level headings with a date,
// the six kinds of change as third-level headings, and a link per version.
func TestChangelogKeepsAChangelog(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "CHANGELOG.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if !strings.HasPrefix(text, "# Changelog\n") {
		t.Error("CHANGELOG.md does not start with # Changelog")
	}
	if !strings.Contains(text, "keepachangelog.com") {
		t.Error("CHANGELOG.md does not say it keeps a changelog")
	}
	versions := regexp.MustCompile(`(?m)^## (.*)$`).FindAllStringSubmatch(text, -1)
	if len(versions) == 0 || versions[0][1] != "[Unreleased]" {
		t.Fatalf("CHANGELOG.md's first section is not ## [Unreleased]: %v", versions)
	}
	for _, v := range versions[1:] {
		if !regexp.MustCompile(`^\[\d+\.\d+\.\d+[^\]]*\] - \d{4}-\d\d-\d\d$`).MatchString(v[1]) {
			t.Errorf("## %s is not ## [x.y.z] - yyyy-mm-dd", v[1])
		}
	}
	kinds := []string{"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
	for _, k := range regexp.MustCompile(`(?m)^### (.*)$`).FindAllStringSubmatch(text, -1) {
		if !slices.Contains(kinds, k[1]) {
			t.Errorf("### %s is not one of %v", k[1], kinds)
		}
	}
	for _, v := range versions {
		name := strings.SplitN(strings.Trim(strings.SplitN(v[1], " ", 2)[0], "[]"), "]", 2)[0]
		if !strings.Contains(text, "\n["+name+"]: ") {
			t.Errorf("CHANGELOG.md has no link for [%s]", name)
		}
	}
	if n := strings.Count(strings.SplitN(text, "\n## ", 3)[1], "\n- "); n < 10 {
		t.Errorf("The Unreleased section lists only %d changes", n)
	}
}

// shipped is what PROJECT's plugins."homeostat.dev/v1alpha1" holds.
type shipped struct {
	Binaries []struct{ Name, Path string } `json:"binaries"`
	Charts   []struct{ Name, Path string } `json:"charts"`
}

// TestProjectFileListsTheBinariesAndTheChart loads PROJECT with kubebuilder's own
// store, and writes it again as `kubebuilder create api` would: kubebuilder keeps only
// the keys it knows, and under plugins each plugin's configuration as it is. There
// homeostat.dev/v1alpha1 lists the binaries (each a main package) and the chart the
// project ships, and it survives kubebuilder's rewrite.
func TestProjectFileListsTheBinariesAndTheChart(t *testing.T) {
	store := yaml.New(machinery.Filesystem{FS: afero.NewOsFs()})
	if err := store.LoadFrom(filepath.Join(root, "PROJECT")); err != nil {
		t.Fatalf("kubebuilder cannot load PROJECT: %v", err)
	}
	rewritten := filepath.Join(t.TempDir(), "PROJECT")
	if err := store.SaveTo(rewritten); err != nil {
		t.Fatalf("kubebuilder cannot write PROJECT again: %v", err)
	}
	store = yaml.New(machinery.Filesystem{FS: afero.NewOsFs()})
	if err := store.LoadFrom(rewritten); err != nil {
		t.Fatalf("kubebuilder cannot load the PROJECT it wrote: %v", err)
	}
	cfg := store.Config()
	if cfg.GetProjectName() != "homeostat" || cfg.GetRepository() != "github.com/homeostat-dev/homeostat" {
		t.Errorf("PROJECT names %q at %q", cfg.GetProjectName(), cfg.GetRepository())
	}
	var s shipped
	if err := cfg.DecodePluginConfig("homeostat.dev/v1alpha1", &s); err != nil {
		t.Fatalf("PROJECT's plugins has no homeostat.dev/v1alpha1: %v", err)
	}
	var binaries []string
	for _, b := range s.Binaries {
		binaries = append(binaries, b.Path)
		src, err := os.ReadFile(filepath.Join(root, b.Path, "main.go"))
		if err != nil || !strings.Contains(string(src), "\npackage main\n") {
			t.Errorf("Binary %s: %s/main.go is not a main package (%v)", b.Name, b.Path, err)
		}
	}
	for _, want := range []string{".", "cmd/kubectl-homeostat"} {
		if !slices.Contains(binaries, want) {
			t.Errorf("PROJECT does not list the binary of %s: %v", want, binaries)
		}
	}
	if len(s.Charts) != 1 {
		t.Fatalf("PROJECT lists %d charts, want 1", len(s.Charts))
	}
	chart, err := os.ReadFile(filepath.Join(root, s.Charts[0].Path, "Chart.yaml"))
	if err != nil {
		t.Fatalf("Chart %s: %v", s.Charts[0].Name, err)
	}
	var meta struct{ Name string }
	if err := sigsyaml.Unmarshal(chart, &meta); err != nil || meta.Name != s.Charts[0].Name {
		t.Errorf("%s/Chart.yaml names the chart %q, PROJECT %q (%v)", s.Charts[0].Path, meta.Name, s.Charts[0].Name, err)
	}
}
