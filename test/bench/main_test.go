package bench

import (
	"fmt"
	"os"
	"testing"
)

// TestMain runs the tests and then, when the benchmarks ran (HOMEOSTAT_BENCH=1), merges
// every section's results into bench/report.json and bench/report.md. Without the
// variable every benchmark skips at once and no report is written.
func TestMain(m *testing.M) {
	code := m.Run()
	if Enabled() {
		if err := Generate(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: writing the report:", err)
			code = max(code, 1)
		} else {
			root, _ := RepoRoot()
			fmt.Printf("bench: wrote %s/bench/report.md and report.json\n", root)
		}
	}
	os.Exit(code)
}
