package leader

import (
	"context"
	"testing"
	"time"
)

func TestNilGateAlwaysLeads(t *testing.T) {
	var g *Gate
	if !g.Leading() {
		t.Fatal("a nil gate does not lead")
	}
	ctx, done, ok := g.Enter(t.Context())
	if !ok || ctx != t.Context() {
		t.Fatal("a nil gate refused work or changed its context")
	}
	done()
	g.OnGained(func() { t.Fatal("called") }) // registering on nil is a no-op
}

func TestGateLetsWorkInOnlyWhileItLeadsAndLoseWaitsForIt(t *testing.T) {
	g := NewGate()
	var gained, lost int
	g.OnGained(func() { gained++ })
	g.OnLost(func() { lost++ })
	if _, _, ok := g.Enter(t.Context()); ok {
		t.Fatal("a new gate let work in before it led")
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	g.Gain(ended) // a term that ended before its Gain ran opens nothing
	if g.Leading() {
		t.Fatal("a Gain for a term that had already ended opened the gate")
	}
	g.Gain(context.Background())
	g.Gain(context.Background()) // a second Gain in the same term does nothing
	if gained != 1 || !g.Leading() {
		t.Fatalf("gained %d times, leading %v; want 1, true", gained, g.Leading())
	}
	ctx, done, ok := g.Enter(t.Context())
	if !ok {
		t.Fatal("the leading gate refused work")
	}
	lostDone := make(chan struct{})
	go func() {
		g.Lose()
		close(lostDone)
	}()
	// The work's context ends with the term, and Lose waits for the work to leave.
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the work's context did not end when the gate lost")
	}
	select {
	case <-lostDone:
		t.Fatal("Lose returned while work was still inside")
	case <-time.After(50 * time.Millisecond):
	}
	if _, _, ok := g.Enter(t.Context()); ok {
		t.Fatal("the gate let new work in while it was losing")
	}
	done()
	done() // twice is harmless
	<-lostDone
	if lost != 1 || g.Leading() {
		t.Fatalf("lost %d times, leading %v; want 1, false", lost, g.Leading())
	}
	g.Lose() // a closed gate stays closed, without callbacks
	if lost != 1 {
		t.Fatalf("Lose on a closed gate called the callbacks again")
	}

	// A new term: new work gets a live context.
	g.Gain(context.Background())
	ctx2, done2, ok := g.Enter(context.Background())
	if !ok || ctx2.Err() != nil {
		t.Fatal("the second term refused work or gave it an ended context")
	}
	done2()
	if gained != 2 {
		t.Fatalf("gained %d times, want 2", gained)
	}
}
