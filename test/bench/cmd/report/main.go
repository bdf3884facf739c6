// Command report merges bench/results/*.json into bench/report.json and bench/report.md,
// as the benchmark suite does when it ends. Run it from anywhere in the repository:
//
//	go run ./test/bench/cmd/report
package main

import (
	"fmt"
	"os"

	"github.com/homeostat-dev/homeostat/test/bench"
)

func main() {
	if err := bench.Generate(); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	root, _ := bench.RepoRoot()
	fmt.Printf("Wrote %s/bench/report.md and report.json\n", root)
}
