package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// manifest is what krew reads of a plugin manifest.
type manifest struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version   string `json:"version"`
		Platforms []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			SHA256 string `json:"sha256"`
			Bin    string `json:"bin"`
		} `json:"platforms"`
	} `json:"spec"`
}

func TestTheKrewManifestNamesEachArchiveWithItsSHA256(t *testing.T) {
	dist := t.TempDir()
	sums := map[string]string{}
	for _, p := range []string{"linux_amd64", "linux_arm64", "darwin_amd64", "darwin_arm64", "windows_amd64"} {
		content := []byte("archive " + p)
		if err := os.WriteFile(filepath.Join(dist, "kubectl-homeostat_"+p+".tar.gz"), content, 0o644); err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(content)
		sums[p] = hex.EncodeToString(s[:])
	}
	out, err := render("../../config/krew/homeostat.yaml", "v1.2.3", dist)
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := yaml.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("the manifest is not YAML: %v\n%s", err, out)
	}
	if m.Kind != "Plugin" || m.Metadata.Name != "homeostat" || m.Spec.Version != "v1.2.3" {
		t.Errorf("kind %q name %q version %q", m.Kind, m.Metadata.Name, m.Spec.Version)
	}
	if len(m.Spec.Platforms) != len(sums) {
		t.Fatalf("%d platforms, want %d", len(m.Spec.Platforms), len(sums))
	}
	for _, p := range m.Spec.Platforms {
		key := p.Selector.MatchLabels["os"] + "_" + p.Selector.MatchLabels["arch"]
		if p.SHA256 != sums[key] {
			t.Errorf("%s: sha256 %q, want %q", key, p.SHA256, sums[key])
		}
		if !strings.HasSuffix(p.URI, "/v1.2.3/kubectl-homeostat_"+key+".tar.gz") {
			t.Errorf("%s: uri %q", key, p.URI)
		}
		if !strings.HasPrefix(p.Bin, "kubectl-homeostat") {
			t.Errorf("%s: bin %q", key, p.Bin)
		}
	}
	if strings.Contains(out, "{{") {
		t.Errorf("a placeholder is left:\n%s", out)
	}
}

func TestTheKrewManifestRefusesAMissingArchive(t *testing.T) {
	if _, err := render("../../config/krew/homeostat.yaml", "v1.2.3", t.TempDir()); err == nil || !strings.Contains(err.Error(), "make plugin-dist") {
		t.Errorf("a missing archive gave %v", err)
	}
	if _, err := render("../../config/krew/homeostat.yaml", "", t.TempDir()); err == nil || !strings.Contains(err.Error(), "-version") {
		t.Errorf("an empty version gave %v", err)
	}
}
