// Command report merges bench/results/*.json into bench/report.json and bench/report.md,
// as the benchmark suite does when it ends. Run it from anywhere in the repository:
//
//	go run ./test/bench/cmd/report
//
// -note 'section=sentence' first adds a sentence to a section, for what a person read off
// the figures (a comparison with an earlier report, say); it may be given several times.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/homeostat-dev/homeostat/test/bench"
)

type notes []string

func (n *notes) String() string     { return strings.Join(*n, "; ") }
func (n *notes) Set(s string) error { *n = append(*n, s); return nil }

func main() {
	var add notes
	flag.Var(&add, "note", "section=sentence: add the sentence to the section's notes before the report is written")
	flag.Parse()
	for _, n := range add {
		section, text, ok := strings.Cut(n, "=")
		if !ok || section == "" || text == "" {
			fmt.Fprintf(os.Stderr, "report: -note %q: want section=sentence\n", n)
			os.Exit(2)
		}
		bench.Note(section, text)
	}
	if err := bench.Generate(); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	root, _ := bench.RepoRoot()
	fmt.Printf("Wrote %s/bench/report.md and report.json\n", root)
}
