package fair

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// take gets n items without blocking forever, as "tenant:item".
func take(t *testing.T, q *Queue[string], n int) []string {
	t.Helper()
	var out []string
	for range n {
		got := make(chan string, 1)
		go func() {
			tn, item, ok := q.Get()
			if !ok {
				got <- "shut down"
				return
			}
			got <- tn + ":" + item
		}()
		select {
		case s := <-got:
			out = append(out, s)
		case <-time.After(2 * time.Second):
			t.Fatalf("Get blocked after %v", out)
		}
	}
	return out
}

func TestQueueServesTenantsInTurn(t *testing.T) {
	q := New[string](0)
	for i := range 4 {
		q.Add("a", fmt.Sprint(i))
	}
	q.Add("b", "0")
	q.Add("c", "0")
	q.Add("b", "1")
	got := take(t, q, 7)
	want := []string{"a:0", "b:0", "c:0", "a:1", "b:1", "a:2", "a:3"}
	if !slices.Equal(got, want) {
		t.Fatalf("served %v, want %v: one of each tenant in turn, each tenant's items in order", got, want)
	}
}

func TestQueueHoldsATenantAtItsShareAndServesTheOthers(t *testing.T) {
	q := New[string](2)
	for i := range 5 {
		q.Add("slow", fmt.Sprint(i))
	}
	if got := take(t, q, 2); !slices.Equal(got, []string{"slow:0", "slow:1"}) {
		t.Fatalf("served %v", got)
	}
	// slow holds its share: its three waiting items do not block another tenant.
	q.Add("fast", "0")
	q.Add("fast", "1")
	if got := take(t, q, 2); !slices.Equal(got, []string{"fast:0", "fast:1"}) {
		t.Fatalf("served %v while slow is at its share", got)
	}
	if n, w := q.InFlight("slow"), q.Waiting("slow"); n != 2 || w != 3 {
		t.Fatalf("slow has %d in flight and %d waiting, want 2 and 3", n, w)
	}
	// A Get waits while only slow has items; Done releases one.
	got := make(chan string, 1)
	go func() {
		tn, item, _ := q.Get()
		got <- tn + ":" + item
	}()
	select {
	case s := <-got:
		t.Fatalf("Get returned %s while slow is at its share", s)
	case <-time.After(50 * time.Millisecond):
	}
	q.Done("slow")
	select {
	case s := <-got:
		if s != "slow:2" {
			t.Fatalf("after Done, Get returned %s, want slow:2", s)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Done did not release a waiting Get")
	}
}

func TestQueueRemoveDropsOnlyWaitingItems(t *testing.T) {
	q := New[string](0)
	q.Add("a", "keep")
	q.Add("a", "drop")
	q.Add("b", "drop")
	if !q.Remove("a", func(s string) bool { return s == "drop" }) {
		t.Fatal("Remove found nothing")
	}
	if q.Remove("a", func(s string) bool { return s == "drop" }) {
		t.Fatal("Remove dropped an item twice")
	}
	if got := take(t, q, 2); !slices.Equal(got, []string{"a:keep", "b:drop"}) {
		t.Fatalf("served %v", got)
	}
}

func TestQueueShutDownReleasesEveryGet(t *testing.T) {
	q := New[string](1)
	var wg sync.WaitGroup
	results := make(chan bool, 3)
	for range 3 {
		wg.Go(func() {
			_, _, ok := q.Get()
			results <- ok
		})
	}
	time.Sleep(20 * time.Millisecond)
	q.ShutDown()
	wg.Wait()
	close(results)
	for ok := range results {
		if ok {
			t.Fatal("a Get returned an item after ShutDown")
		}
	}
	q.Add("a", "late")
	if got := take(t, q, 1); got[0] != "shut down" {
		t.Fatalf("Get after ShutDown returned %v", got)
	}
}

// TestQueueNeverHandsOutMoreThanTheShare runs many workers over many tenants and checks
// the bound under contention.
func TestQueueNeverHandsOutMoreThanTheShare(t *testing.T) {
	const share = 2
	q := New[string](share)
	var mu sync.Mutex
	inFlight, most := map[string]int{}, map[string]int{}
	var done sync.WaitGroup
	done.Add(300)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				tn, _, ok := q.Get()
				if !ok {
					return
				}
				mu.Lock()
				inFlight[tn]++
				most[tn] = max(most[tn], inFlight[tn])
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
				inFlight[tn]--
				mu.Unlock()
				q.Done(tn)
				done.Done()
			}
		})
	}
	for i := range 300 {
		q.Add(strings.Repeat("t", i%3+1), fmt.Sprint(i))
	}
	done.Wait()
	q.ShutDown()
	wg.Wait()
	for tn, m := range most {
		if m > share {
			t.Errorf("tenant %s had %d items in flight at once, above its share of %d", tn, m, share)
		}
	}
}
