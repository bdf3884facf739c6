// Package bench measures Homeostat on the local control plane (latency, scale, fault
// tolerance) and writes the report anyone can rerun with `make bench`.
//
// Each test records its figures with Record, one JSON file per section in
// bench/results/<section>.json, so a section can be rerun alone. Generate merges every
// section into bench/report.json and bench/report.md with the machine, the versions and
// the command that reruns it; TestMain calls it after the tests, and
// `go run ./test/bench/cmd/report` calls it on its own.
//
// A figure is a set of samples summarised as median and p99 (nearest rank, so with fewer
// than 100 samples p99 is the largest). This machine is noisy, so a figure may carry a
// Baseline measured in the same run (a bare informer beside the operator, a fixed cost
// beside a per-app cost, the code before a fix beside the code after): the report gives
// the ratio of the medians, which noise moves far less than either figure.
//
// Everything that starts a cluster is gated by HOMEOSTAT_BENCH=1 (Require), so
// `go test ./...` skips it in a second.
package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EnvEnable turns the benchmarks on: HOMEOSTAT_BENCH=1.
const EnvEnable = "HOMEOSTAT_BENCH"

// RerunCommand reruns the whole suite and rewrites the report.
const RerunCommand = "make bench"

// Figure is one measured quantity: its samples, and optionally the same kind of quantity
// measured in the same run as a baseline.
type Figure struct {
	// Name says what was measured, e.g. "detect-to-act p50 at 1000 apps".
	Name string `json:"name"`
	// Unit of the samples: "ms", "s", "MiB", "requests/reconcile", "writes/min", "apps".
	Unit string `json:"unit"`
	// Samples are the measured values, one per repetition.
	Samples []float64 `json:"samples"`
	// Baseline, when set, is measured in the same run; the report gives Name's median
	// divided by the baseline's.
	Baseline *Figure `json:"baseline,omitempty"`
	// Note says how it was measured, or what a reader must know (a target, a caveat).
	Note string `json:"note,omitempty"`

	// Filled in by Record: when, and the summary of Samples.
	RecordedAt time.Time `json:"recordedAt,omitzero"`
	Stats      *Stats    `json:"stats,omitempty"`
	// Ratio is Stats.Median / Baseline.Stats.Median, when both exist and the
	// baseline's median is not zero.
	Ratio *float64 `json:"ratioToBaseline,omitempty"`
}

// Stats summarise samples.
type Stats struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	P99    float64 `json:"p99"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Mean   float64 `json:"mean"`
}

// Summarize returns the statistics of samples; nil when there are none.
func Summarize(samples []float64) *Stats {
	if len(samples) == 0 {
		return nil
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	return &Stats{N: len(s), Median: Quantile(s, 0.5), P99: Quantile(s, 0.99), Min: s[0], Max: s[len(s)-1],
		Mean: sum / float64(len(s))}
}

// Quantile returns the q-quantile (0..1) of sorted samples: the median interpolates
// between the two middle values; other quantiles use the nearest rank, ceil(q*n).
func Quantile(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if q == 0.5 {
		if n%2 == 1 {
			return sorted[n/2]
		}
		return (sorted[n/2-1] + sorted[n/2]) / 2
	}
	rank := int(math.Ceil(q * float64(n)))
	return sorted[min(max(rank, 1), n)-1]
}

// complete fills in Stats and Ratio, for the figure and its baseline.
func (f *Figure) complete() {
	// A sample that could not be measured (NaN, ±Inf) is dropped: JSON cannot hold it, and
	// one such sample must not lose the section's other figures.
	f.Samples = slices.DeleteFunc(slices.Clone(f.Samples), func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) })
	f.Stats = Summarize(f.Samples)
	f.Ratio = nil
	if f.Baseline == nil {
		return
	}
	f.Baseline.complete()
	if f.Stats != nil && f.Baseline.Stats != nil && f.Baseline.Stats.Median != 0 {
		r := f.Stats.Median / f.Baseline.Stats.Median
		f.Ratio = &r
	}
}

// Section is one results file: bench/results/<name>.json.
type Section struct {
	Name       string    `json:"section"`
	RecordedAt time.Time `json:"recordedAt"`
	// Load is /proc/loadavg when the section was last recorded, and Clusters the
	// number of kube-apiserver processes running on the machine then (other engineers'
	// test clusters share the cores).
	Load     string   `json:"loadavg,omitempty"`
	Clusters int      `json:"kubeApiservers,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	Figures  []Figure `json:"figures"`
}

var (
	mu       sync.Mutex
	sections = map[string]*Section{} // recorded by this process
)

// Enabled says whether the benchmarks run: HOMEOSTAT_BENCH=1.
func Enabled() bool { return os.Getenv(EnvEnable) == "1" }

// Skipper is the part of testing.TB that Require uses.
type Skipper interface {
	Helper()
	Skip(args ...any)
}

// Require skips the test unless HOMEOSTAT_BENCH=1.
func Require(t Skipper) {
	t.Helper()
	if !Enabled() {
		t.Skip("set " + EnvEnable + "=1 to run the benchmarks (make bench)")
	}
}

// Record writes figures to bench/results/<section>.json, replacing the figures of the
// same name there and keeping the others: a test can record as it goes, and a section
// that several tests share keeps the figures of those not rerun. Each figure carries the
// time it was recorded. Delete bench/results to start from nothing.
func Record(section string, figs ...Figure) {
	if err := record(section, "", figs); err != nil {
		fmt.Fprintf(os.Stderr, "bench: recording section %s: %v\n", section, err)
	}
}

// Note adds a sentence about a whole section (how it was measured, what could not be,
// and why) to its results file; a note already there is not repeated.
func Note(section, text string) {
	if err := record(section, text, nil); err != nil {
		fmt.Fprintf(os.Stderr, "bench: recording a note of section %s: %v\n", section, err)
	}
}

func record(name, note string, figs []Figure) error {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("invalid section name %q", name)
	}
	dir, err := ResultsDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, name+".json")
	mu.Lock()
	defer mu.Unlock()
	s := sections[name]
	if s == nil {
		// What an earlier run recorded of this section stays, but for what is recorded anew.
		s = &Section{}
		if b, err := os.ReadFile(path); err == nil {
			_ = json.Unmarshal(b, s)
		}
		s.Name = name
		sections[name] = s
	}
	now := time.Now().UTC().Round(time.Second)
	s.RecordedAt = now
	s.Load, s.Clusters = loadAverage(), countProcesses("kube-apiserver")
	if note != "" && !slices.Contains(s.Notes, note) {
		s.Notes = append(s.Notes, note)
	}
	for _, f := range figs {
		f.complete()
		f.RecordedAt = now
		if i := slices.IndexFunc(s.Figures, func(g Figure) bool { return g.Name == f.Name }); i >= 0 {
			s.Figures[i] = f
		} else {
			s.Figures = append(s.Figures, f)
		}
	}
	return writeJSONFile(path, s)
}

// RepoRoot is the directory of the module's go.mod, found upwards from the working
// directory (tests run in test/bench).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/homeostat-dev/homeostat\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("the homeostat module's go.mod is not in the working directory or above it")
		}
		dir = parent
	}
}

// ResultsDir is bench/results in the repository.
func ResultsDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bench", "results"), nil
}

// ScratchDir is bench/tmp in the repository (ignored by git): profiles and logs a
// reader may want after a run.
func ScratchDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "bench", "tmp")
	return dir, os.MkdirAll(dir, 0o755)
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Report is bench/report.json.
type Report struct {
	GeneratedAt time.Time `json:"generatedAt"`
	Rerun       string    `json:"rerun"`
	Machine     Machine   `json:"machine"`
	Versions    Versions  `json:"versions"`
	Sections    []Section `json:"sections"`
}

// Machine describes where the figures were measured.
type Machine struct {
	Uname    string `json:"uname"`
	CPU      string `json:"cpu"`
	Cores    int    `json:"cores"`
	MemoryGi string `json:"memory"`
}

// Versions of what was measured.
type Versions struct {
	Go                string `json:"go"`
	Kubernetes        string `json:"kubernetes"`
	Etcd              string `json:"etcd"`
	Kwok              string `json:"kwok"`
	ControllerRuntime string `json:"controllerRuntime"`
	ClientGo          string `json:"clientGo"`
	Commit            string `json:"commit"`
}

// sectionOrder puts the sections the issue lists first, in its order, then the two
// latency comparisons (a shared policy's edit reaching its apps, Homeostat beside the
// HPA); others follow by name.
var sectionOrder = []string{"detect-to-act", "scale", "improvements", "faults", "shared-policy", "hpa"}

// Generate merges every bench/results/*.json into bench/report.json and bench/report.md.
func Generate() error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(root, "bench", "results", "*.json"))
	if err != nil {
		return err
	}
	rep := Report{GeneratedAt: time.Now().UTC().Round(time.Second), Rerun: RerunCommand,
		Machine: machine(), Versions: versions(root)}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var s Section
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("reading %s: %w", f, err)
		}
		for i := range s.Figures {
			s.Figures[i].complete()
		}
		rep.Sections = append(rep.Sections, s)
	}
	slices.SortStableFunc(rep.Sections, func(a, b Section) int {
		ra, rb := rank(a.Name), rank(b.Name)
		if ra != rb {
			return ra - rb
		}
		return strings.Compare(a.Name, b.Name)
	})
	if err := writeJSONFile(filepath.Join(root, "bench", "report.json"), rep); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(root, "bench", "report.md"), []byte(Markdown(rep)), 0o644)
}

func earliest(figs []Figure) time.Time {
	var t time.Time
	for _, f := range figs {
		if !f.RecordedAt.IsZero() && (t.IsZero() || f.RecordedAt.Before(t)) {
			t = f.RecordedAt
		}
	}
	return t
}

func rank(name string) int {
	if i := slices.Index(sectionOrder, name); i >= 0 {
		return i
	}
	return len(sectionOrder)
}

// Markdown renders the report.
func Markdown(r Report) string {
	var b strings.Builder
	b.WriteString("# Homeostat benchmark report\n\n")
	fmt.Fprintf(&b, "Generated %s. Rerun: `%s` (or one section: `HOMEOSTAT_BENCH=1 go test ./test/bench/ -run <Test> -v`; "+
		"`go run ./test/bench/cmd/report` rebuilds this file from `bench/results/*.json`).\n\n", r.GeneratedAt.Format(time.RFC3339), r.Rerun)
	b.WriteString("Each figure is the median and p99 of its samples (p99 by nearest rank: with fewer than 100 samples it is the " +
		"largest). Where a figure has a baseline measured in the same run, the ratio is median / baseline median.\n\n")
	if older := olderSections(r.Sections); older != "" {
		b.WriteString(older)
	}
	b.WriteString("## Machine and versions\n\n| | |\n|---|---|\n")
	m, v := r.Machine, r.Versions
	for _, row := range [][2]string{
		{"uname -a", m.Uname}, {"CPU", m.CPU}, {"cores", strconv.Itoa(m.Cores)}, {"memory", m.MemoryGi},
		{"Go", v.Go}, {"Kubernetes (kube-apiserver, controller-manager, scheduler)", v.Kubernetes}, {"etcd", v.Etcd},
		{"kwok", v.Kwok}, {"controller-runtime", v.ControllerRuntime}, {"client-go", v.ClientGo}, {"commit", v.Commit},
	} {
		fmt.Fprintf(&b, "| %s | %s |\n", row[0], mdCell(row[1]))
	}
	for _, s := range r.Sections {
		fmt.Fprintf(&b, "\n## %s\n\n", s.Name)
		fmt.Fprintf(&b, "Recorded %s; load average then %s", s.RecordedAt.Format(time.RFC3339), orDash(s.Load))
		if s.Clusters > 0 {
			fmt.Fprintf(&b, "; %d kube-apiserver processes were running on the machine", s.Clusters)
		}
		if first := earliest(s.Figures); !first.IsZero() && s.RecordedAt.Sub(first) > time.Hour {
			fmt.Fprintf(&b, ". Its figures come from more than one run: the oldest was recorded %s", first.Format(time.RFC3339))
		}
		b.WriteString(".\n\n")
		for _, n := range s.Notes {
			if strings.Contains(n, "\n") {
				// A note with lines (a profile's top functions) is a paragraph of its own.
				fmt.Fprintf(&b, "%s\n\n", strings.TrimRight(n, "\n"))
			} else {
				fmt.Fprintf(&b, "- %s\n\n", n)
			}
		}
		if len(s.Figures) == 0 {
			continue
		}
		b.WriteString("| figure | unit | n | median | p99 | baseline | baseline median | baseline p99 | ratio | note |\n")
		b.WriteString("|---|---|--:|--:|--:|---|--:|--:|--:|---|\n")
		for _, f := range s.Figures {
			st := f.Stats
			n, med, p99 := "0", "-", "-"
			if st != nil {
				n, med, p99 = strconv.Itoa(st.N), num(st.Median), num(st.P99)
			}
			bname, bmed, bp99, ratio := "", "", "", ""
			if f.Baseline != nil {
				bname = f.Baseline.Name
				if bs := f.Baseline.Stats; bs != nil {
					bmed, bp99 = num(bs.Median), num(bs.P99)
					if f.Baseline.Unit != "" && f.Baseline.Unit != f.Unit {
						bmed += " " + f.Baseline.Unit
						bp99 += " " + f.Baseline.Unit
					}
				}
			}
			if f.Ratio != nil {
				ratio = fmt.Sprintf("%.2f×", *f.Ratio)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", mdCell(f.Name), mdCell(f.Unit), n, med, p99,
				mdCell(bname), bmed, bp99, ratio, mdCell(f.Note))
		}
	}
	return b.String()
}

func num(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "-"
	case v == math.Trunc(v) && math.Abs(v) < 1e12:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case math.Abs(v) >= 0.01:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func machine() Machine {
	m := Machine{Uname: output("uname", "-a"), Cores: runtime.NumCPU()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				m.MemoryGi = fmt.Sprintf("%.1f GiB", kb/(1<<20))
			}
		}
	}
	return m
}

func versions(root string) Versions {
	v := Versions{Go: runtime.Version()}
	if b, err := os.ReadFile(filepath.Join(root, "hack", "versions.env")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, val, _ := strings.Cut(strings.TrimSpace(line), "=")
			switch k {
			case "KUBERNETES_VERSION":
				v.Kubernetes = val
			case "ETCD_VERSION":
				v.Etcd = val
			case "KWOK_VERSION":
				v.Kwok = val
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "go.mod")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "sigs.k8s.io/controller-runtime" {
				v.ControllerRuntime = f[1]
			}
			if len(f) >= 2 && f[0] == "k8s.io/client-go" {
				v.ClientGo = f[1]
			}
		}
	}
	commit := output("git", "-C", root, "rev-parse", "--short=12", "HEAD")
	if commit != "" && output("git", "-C", root, "status", "--porcelain", "--untracked-files=no") != "" {
		commit += " with uncommitted changes"
	}
	v.Commit = commit
	return v
}

func output(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// countProcesses counts running processes whose command name is comm.
func countProcesses(comm string) int {
	dirs, _ := filepath.Glob("/proc/[0-9]*/comm")
	n := 0
	for _, d := range dirs {
		if b, err := os.ReadFile(d); err == nil && strings.TrimSpace(string(b)) == comm {
			n++
		}
	}
	return n
}

// olderSections names the comparison sections ("improvements", "before and after
// <commit>") recorded over an hour before the oldest of the other sections: each records a change as
// it was measured when it was made, so a reader knows which figures the latest runs did
// not produce. It is "" when there is none.
func olderSections(sections []Section) string {
	comparison := func(name string) bool {
		return name == "improvements" || strings.HasPrefix(name, "before and after ")
	}
	var oldest time.Time
	for _, s := range sections {
		if !comparison(s.Name) && (oldest.IsZero() || s.RecordedAt.Before(oldest)) {
			oldest = s.RecordedAt
		}
	}
	var older []string
	for _, s := range sections {
		// An hour's slack: a section is written when its test ends, and a comparison
		// may end just before the section of the same run.
		if comparison(s.Name) && s.RecordedAt.Before(oldest.Add(-time.Hour)) {
			older = append(older, fmt.Sprintf("%q (%s)", s.Name, s.RecordedAt.Format("2006-01-02")))
		}
	}
	if len(older) == 0 {
		return ""
	}
	return fmt.Sprintf("Every section comes from the latest runs (the oldest recorded %s) but %s: each records a change as it "+
		"was measured when it was made, beside the commit before it.\n\n", oldest.Format(time.RFC3339), strings.Join(older, ", "))
}
