package harness

import (
	"bytes"
	"runtime"
	"runtime/pprof"
	"testing"
)

// The figures come from the text heap profile of this very process, as the manager's
// /debug/pprof/heap?debug=1 writes it.
func TestParseHeapStatsReadsTheRuntimesProfile(t *testing.T) {
	keep := make([]byte, 8<<20)
	runtime.GC()
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 1); err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h, err := parseHeapStats(buf.String())
	if err != nil {
		t.Fatal(err)
	}
	if h.Alloc < float64(len(keep)) || h.Inuse < h.Alloc || h.Sys < h.Inuse || h.NextGC <= 0 {
		t.Errorf("implausible heap figures: %+v", h)
	}
	// "# Stack = <in use> / <obtained>": the figure is the first.
	if h.Stack <= 0 || h.Stack > float64(ms.StackSys) {
		t.Errorf("Stack = %.0f, want in (0, StackSys %d]", h.Stack, ms.StackSys)
	}
	if h.Released > h.Idle {
		t.Errorf("released %.0f > idle %.0f", h.Released, h.Idle)
	}
	runtime.KeepAlive(keep)
	if _, err := parseHeapStats("# HeapAlloc = 1\n"); err == nil {
		t.Error("a profile without the other figures parsed")
	}
}
