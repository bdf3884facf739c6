// Package argocd_test checks that the argocd-cm snippet in docs/gitops.md carries exactly
// the health scripts of this directory, one key per kind, so the two cannot drift. The
// scripts' behaviour is tested in controllers/ (argocdhealth_test.go, kstatus_test.go),
// with gopher-lua over real statuses.
package argocd_test

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// scripts are the argocd-cm keys and the file each must hold.
var scripts = map[string]string{
	"resource.customizations.health.autonomic.homeostat.dev_AutonomicApp":         "health-autonomicapp.lua",
	"resource.customizations.health.autonomic.homeostat.dev_HealingPolicy":        "health-healingpolicy.lua",
	"resource.customizations.health.autonomic.homeostat.dev_ClusterHealingPolicy": "health-healingpolicy.lua",
}

func TestGitOpsDocShowsExactlyTheHealthScripts(t *testing.T) {
	doc, err := os.ReadFile("../../docs/gitops.md")
	if err != nil {
		t.Fatal(err)
	}
	var cm *corev1.ConfigMap
	for _, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(doc, -1) {
		var c corev1.ConfigMap
		if err := yaml.UnmarshalStrict(block[1], &c); err != nil || c.Kind != "ConfigMap" || c.Name != "argocd-cm" {
			continue
		}
		if cm != nil {
			t.Fatal("docs/gitops.md has more than one argocd-cm snippet")
		}
		cm = &c
	}
	if cm == nil {
		t.Fatal("docs/gitops.md has no argocd-cm ConfigMap in a yaml block")
	}
	for key, file := range scripts {
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := cm.Data[key]
		if !ok {
			t.Errorf("The argocd-cm snippet in docs/gitops.md lacks %s", key)
			continue
		}
		if got != string(want) {
			t.Errorf("The argocd-cm snippet's %s differs from config/argocd/%s: copy the file into the doc, indented by four spaces", key, file)
		}
	}
	for key := range cm.Data {
		if _, ok := scripts[key]; !ok {
			t.Errorf("The argocd-cm snippet in docs/gitops.md has %s, which no script of config/argocd backs", key)
		}
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".lua") && !slices.Contains(slices.Collect(maps.Values(scripts)), e.Name()) {
			t.Errorf("config/argocd/%s is in no argocd-cm key of docs/gitops.md", e.Name())
		}
	}
}
