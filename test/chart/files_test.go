package chart_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The files the chart reads are copies of config/ that `make chart` makes; none is
// edited by hand. Each pair: the chart's folder or file, config/'s, and the file names
// (a glob) of config/'s folder that are copied.
var copies = []struct{ chart, config, glob string }{
	{"files/crds", "config/crd/bases", "*.yaml"},
	// The roles, not the bindings or the ServiceAccount, which the chart makes for its
	// own names.
	{"files/rbac", "config/rbac", "*role.yaml"},
	{"files/webhook", "config/webhook", "manifests.yaml"},
}

// The monitoring files, written in config/monitoring; the chart ships placeholders until
// that folder exists.
var monitoringCopies = []struct{ chart, config, glob string }{
	{"files/dashboards", "config/monitoring/dashboards", "*.json"},
	{"files", "config/monitoring", "prometheus-rules.yaml"},
}

func TestChartFilesEqualConfig(t *testing.T) {
	for _, c := range copies {
		t.Run(c.chart, func(t *testing.T) { sameFiles(t, c.chart, c.config, c.glob) })
	}
}

func TestChartMonitoringFilesEqualConfigMonitoring(t *testing.T) {
	if _, err := os.Stat(repoPath("config/monitoring")); errors.Is(err, os.ErrNotExist) {
		t.Skip("Skipping: config/monitoring does not exist, so the chart ships its own placeholder dashboards and rules " +
			"in charts/homeostat/files/; once it exists, `make chart` copies them and this test checks the copies")
	}
	for _, c := range monitoringCopies {
		t.Run(c.config, func(t *testing.T) { sameFiles(t, c.chart, c.config, c.glob) })
	}
}

// sameFiles checks that the chart's folder holds exactly the files of config/'s folder
// that match glob, byte for byte.
func sameFiles(t *testing.T, chartRel, configRel, glob string) {
	t.Helper()
	src, err := filepath.Glob(filepath.Join(repoPath(configRel), glob))
	if err != nil || len(src) == 0 {
		t.Fatalf("%s has no %s (%v)", configRel, glob, err)
	}
	dst, err := filepath.Glob(filepath.Join(chartDir, chartRel, glob))
	if err != nil {
		t.Fatal(err)
	}
	names := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			out = append(out, filepath.Base(p))
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(names(src), names(dst)) {
		t.Fatalf("charts/homeostat/%s holds %v, config's %s holds %v: run `make chart`", chartRel, names(dst), configRel, names(src))
	}
	for _, s := range src {
		want, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(chartDir, chartRel, filepath.Base(s)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want, got) {
			t.Errorf("charts/homeostat/%s/%s differs from %s/%s: run `make chart`", chartRel, filepath.Base(s), configRel, filepath.Base(s))
		}
	}
}
