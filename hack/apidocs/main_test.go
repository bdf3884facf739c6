package main

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// The test runs in hack/apidocs; these are the generator's inputs and output from there.
const (
	crdDir  = "../../config/crd/bases"
	apiDocs = "../../docs/api.md"
)

// TestAPIDocsUpToDate regenerates the reference and compares it with the committed one.
func TestAPIDocsUpToDate(t *testing.T) {
	doc, err := generate(crdDir)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "api.md")
	if err := writeFile(out, doc); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(apiDocs)
	if err != nil {
		t.Fatalf("docs/api.md: %v: run make docs", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/api.md is out of date with config/crd/bases: run make docs\n%s", firstDiff(want, got))
	}
}

// firstDiff shows the first line where the committed and the regenerated file differ.
func firstDiff(committed, regenerated []byte) string {
	a := strings.Split(string(committed), "\n")
	b := strings.Split(string(regenerated), "\n")
	for i := 0; i < len(a) || i < len(b); i++ {
		var la, lb string
		if i < len(a) {
			la = a[i]
		}
		if i < len(b) {
			lb = b[i]
		}
		if la != lb {
			return fmt.Sprintf("first difference at line %d:\n  committed:   %s\n  regenerated: %s", i+1, la, lb)
		}
	}
	return "the files differ"
}

// TestAutonomicAppLeavesDescribed checks that every leaf field of the AutonomicApp CRD has
// a description, so that no row of the reference is left blank. metadata is the standard
// ObjectMeta, which controller-gen never describes.
func TestAutonomicAppLeavesDescribed(t *testing.T) {
	crds, err := loadCRDs(crdDir)
	if err != nil {
		t.Fatal(err)
	}
	root := schemaOf(crds["AutonomicApp"])
	var leaves int
	var missing []string
	var walk func(path string, s *apiextensionsv1.JSONSchemaProps)
	walk = func(path string, s *apiextensionsv1.JSONSchemaProps) {
		obj, objPath := s, path
		for {
			switch {
			case obj.Items != nil && obj.Items.Schema != nil:
				obj, objPath = obj.Items.Schema, objPath+"[]"
				continue
			case obj.AdditionalProperties != nil && obj.AdditionalProperties.Schema != nil:
				obj, objPath = obj.AdditionalProperties.Schema, objPath+".<key>"
				continue
			}
			break
		}
		if len(obj.Properties) == 0 {
			leaves++
			if strings.TrimSpace(s.Description) == "" {
				missing = append(missing, path)
			}
			return
		}
		for _, name := range sortedNames(obj.Properties) {
			child := obj.Properties[name]
			walk(objPath+"."+name, &child)
		}
	}
	for _, name := range sortedNames(root.Properties) {
		if name == "metadata" {
			continue
		}
		child := root.Properties[name]
		walk(name, &child)
	}
	if leaves < 100 {
		t.Fatalf("found only %d leaf fields in AutonomicApp; is the walk broken?", leaves)
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d leaf fields of AutonomicApp have no description; add a doc comment to the Go field and run make manifests:\n  %s",
			len(missing), leaves, strings.Join(missing, "\n  "))
	}
}

// TestSharedFieldsChecked checks that the generator refuses to say the policy kinds share
// the AutonomicApp fields once they do not.
func TestSharedFieldsChecked(t *testing.T) {
	crds, err := loadCRDs(crdDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkShared(crds); err != nil {
		t.Fatalf("the committed CRDs: %v", err)
	}
	root := schemaOf(crds["ClusterHealingPolicy"])
	spec := root.Properties["spec"]
	guards := spec.Properties["guards"]
	cooldown := guards.Properties["cooldown"]
	cooldown.Description = "changed"
	guards.Properties = maps.Clone(guards.Properties)
	guards.Properties["cooldown"] = cooldown
	spec.Properties = maps.Clone(spec.Properties)
	spec.Properties["guards"] = guards
	root.Properties["spec"] = spec

	err = checkShared(crds)
	if err == nil {
		t.Fatal("checkShared accepted a ClusterHealingPolicy whose spec.guards differs")
	}
	for _, want := range []string{"ClusterHealingPolicy spec.guards", "spec.guards.cooldown"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// TestUnknownKeywordFails checks that a schema keyword the generator does not render stops
// it instead of vanishing from the reference.
func TestUnknownKeywordFails(t *testing.T) {
	s := &apiextensionsv1.JSONSchemaProps{Type: "string", Title: "x"}
	if _, err := validation(s); err == nil || !strings.Contains(err.Error(), "title") {
		t.Fatalf("validation of a schema with a title: err %v, want one naming title", err)
	}
}

func TestCells(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a | b", `a \| b`},
		{"reads `components.<name>` or <name>", "reads `components.<name>` or &lt;name&gt;"},
		{"first line\nsecond  line\n\nsecond paragraph", "first line second line"},
	} {
		if got := paragraph(tc.in); got != tc.want {
			t.Errorf("paragraph(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got, want := code("^(a|b)$"), "`^(a\\|b)$`"; got != want {
		t.Errorf("code = %q, want %q", got, want)
	}
	if got, want := sortedNames(map[string]int{"b": 0, "name": 0, "a": 0}), []string{"name", "a", "b"}; !slices.Equal(got, want) {
		t.Errorf("sortedNames = %v, want %v", got, want)
	}
	if got, want := anchor("AutonomicApp spec"), "autonomicapp-spec"; got != want {
		t.Errorf("anchor = %q, want %q", got, want)
	}
}
