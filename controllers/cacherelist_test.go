package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
)

func rvPod(name, rv string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, ResourceVersion: rv}}
}

func podList(rv string, pods ...*corev1.Pod) *corev1.PodList {
	l := &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: rv}}
	for _, p := range pods {
		l.Items = append(l.Items, *p.DeepCopy())
	}
	return l
}

func TestRelistHandsTheReflectorWhatChanged(t *testing.T) {
	store := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	gone := rvPod("c", "3")
	for _, p := range []*corev1.Pod{rvPod("a", "1"), rvPod("b", "2"), gone} {
		_ = store.Add(p)
	}
	rl := &relister{example: &corev1.Pod{}, store: func() toolscache.Store { return store }}
	var asked metav1.ListOptions
	list := func(_ context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		asked = opts
		return podList("10", rvPod("a", "1"), rvPod("b", "5"), rvPod("d", "6")), nil
	}
	events, rv, err := rl.events(context.Background(), list, metav1.ListOptions{LabelSelector: "app=web", ResourceVersion: "3"})
	if err != nil {
		t.Fatal(err)
	}
	if asked.LabelSelector != "app=web" || asked.ResourceVersion != "" || rv != "10" {
		t.Fatalf("listed with %+v and got version %q; want the watch's selector, the latest version, and 10", asked, rv)
	}
	var got []string
	for _, ev := range events {
		p := ev.Object.(*corev1.Pod)
		got = append(got, string(ev.Type)+" "+p.Name+"@"+p.ResourceVersion)
		if ev.Type == watch.Deleted && p == gone {
			t.Error("the deleted event hands over the cached object itself, which the store's transform would change")
		}
	}
	want := []string{"MODIFIED b@5", "ADDED d@6", "DELETED c@10", "BOOKMARK @10"}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// relistAPI is a pods API whose watch the test ends with "too old resource version",
// as a restarted API server does with the watch an informer resumes.
type relistAPI struct {
	mu         sync.Mutex
	expireNext bool // the next watch call is refused as too old
	state      *corev1.PodList
	lists      []string // the resource version of each list call
	watches    []*watch.FakeWatcher
	from       []string // the resource version of each watch call
}

func (a *relistAPI) lw() *toolscache.ListWatch {
	return &toolscache.ListWatch{
		ListWithContextFunc: func(_ context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.lists = append(a.lists, opts.ResourceVersion)
			return a.state.DeepCopy(), nil
		},
		WatchFuncWithContext: func(_ context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			if opts.SendInitialEvents != nil && *opts.SendInitialEvents {
				return nil, apierrors.NewBadRequest("sendInitialEvents is not supported")
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.expireNext {
				a.expireNext = false
				return nil, apierrors.NewResourceExpired("too old resource version: 11 (15)")
			}
			w := watch.NewFake()
			a.watches = append(a.watches, w)
			a.from = append(a.from, opts.ResourceVersion)
			return w, nil
		},
	}
}

func (a *relistAPI) calls() (lists, from []string, watches []*watch.FakeWatcher) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.lists), slices.Clone(a.from), slices.Clone(a.watches)
}

// TestTooOldWatchIsAnsweredInsideTheWatch runs a client-go informer whose resumed watch
// the API server refuses as too old: the informer lists again at once, inside the watch,
// and its reflector never lists again itself (it would, at the version it last saw,
// only after its backoff).
func TestTooOldWatchIsAnsweredInsideTheWatch(t *testing.T) {
	h := newCacheHealth(clock.RealClock{})
	api := &relistAPI{state: podList("5", rvPod("a", "1"), rvPod("c", "3"))}
	inf := h.newInformer(api.lw(), &corev1.Pod{}, 0, toolscache.Indexers{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go inf.RunWithContext(ctx)
	if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("the informer did not sync")
	}
	eventually(t, "the informer watches", func() bool { _, _, w := api.calls(); return len(w) == 1 })

	// The API server restarts: c was deleted, b created, and the watch is too old.
	api.mu.Lock()
	api.state = podList("9", rvPod("a", "1"), rvPod("b", "7"))
	api.mu.Unlock()
	_, _, w := api.calls()
	w[0].Error(&apierrors.NewResourceExpired("too old resource version: 5 (8)").ErrStatus)

	names := func() []string {
		var out []string
		for _, o := range inf.GetStore().List() {
			out = append(out, o.(*corev1.Pod).Name+"@"+o.(*corev1.Pod).ResourceVersion)
		}
		slices.Sort(out)
		return out
	}
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(names(), []string{"a@1", "b@7"}) {
		if time.Now().After(deadline) {
			t.Fatalf("the store holds %v, want a@1 and b@7", names())
		}
		time.Sleep(5 * time.Millisecond)
	}
	lists, from, _ := api.calls()
	if len(lists) != 2 || lists[1] != "" {
		t.Fatalf("list calls at versions %q; want the reflector's first and one afresh inside the watch", lists)
	}
	eventually(t, "the watch goes on from the list", func() bool { _, from, _ = api.calls(); return len(from) == 2 })
	if from[1] != "9" {
		t.Fatalf("the watch after the relist is from %q, want 9", from[1])
	}
	eventually(t, "the informer has caught up", func() bool { msg, _ := h.stale(); return msg == "" })

	// The new watch goes on as any other.
	_, _, w = api.calls()
	w[1].Add(rvPod("e", "11"))
	eventually(t, "the new watch's events reach the store", func() bool { return len(names()) == 3 })

	// The API server restarts again; this time the call itself is refused as too old.
	api.mu.Lock()
	api.state = podList("20", rvPod("a", "1"), rvPod("e", "12"))
	api.expireNext = true
	api.mu.Unlock()
	w[1].Stop()
	deadline = time.Now().Add(10 * time.Second)
	for !slices.Equal(names(), []string{"a@1", "e@12"}) {
		if time.Now().After(deadline) {
			t.Fatalf("the store holds %v, want a@1 and e@12", names())
		}
		time.Sleep(5 * time.Millisecond)
	}
	lists, from, _ = api.calls()
	if len(lists) != 3 || lists[2] != "" {
		t.Fatalf("list calls at versions %q; want a third afresh inside the refused watch", lists)
	}
	eventually(t, "the watch goes on from the second list", func() bool { _, from, _ = api.calls(); return from[len(from)-1] == "20" })
}

// TestRelistKeepsTheGuardUntilTheStoreHasTheChanges: the informer stays down while the
// reflector takes a relist's events, and is caught up only once its store holds them.
func TestRelistKeepsTheGuardUntilTheStoreHasTheChanges(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))
	h := newCacheHealth(clk)
	const what = "*v1.Pod#1"
	h.failed(what, apierrors.NewResourceExpired("too old resource version: 5 (8)"))
	store := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	rl := &relister{example: &corev1.Pod{}, store: func() toolscache.Store { return store }}
	var evs []watch.Event
	for i := range 100 {
		evs = append(evs, watch.Event{Type: watch.Added, Object: rvPod(fmt.Sprintf("p%03d", i), "9")})
	}
	w := h.observeWith(what, watch.NewFake(), func() {}, evs, nil, rl)
	defer w.Stop()
	stale := func() string { msg, _ := h.stale(); return msg }
	for i := range evs {
		ev := <-w.ResultChan()
		if i == 50 {
			clk.SetTime(clk.Now().Add(2 * cacheCatchUp))
			if !strings.Contains(stale(), "have been down") {
				t.Fatalf("halfway through the relist's events: %q", stale())
			}
		}
		_ = store.Add(ev.Object)
	}
	eventually(t, "the informer is caught up once its store has the changes", func() bool { return stale() == "" })
}

// TestAWatchHeldUnansweredWhileDownIsMadeAgain: a restarting API server can hold a watch
// sent before it was ready; while the informer is down such a call is abandoned after
// watchBound and made again. A healthy informer's call is never cut short.
func TestAWatchHeldUnansweredWhileDownIsMadeAgain(t *testing.T) {
	h := newCacheHealth(clock.RealClock{})
	var mu sync.Mutex
	calls, cancelled := 0, 0
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) { return &corev1.PodList{}, nil },
		WatchFuncWithContext: func(ctx context.Context, _ metav1.ListOptions) (watch.Interface, error) {
			mu.Lock()
			calls++
			first := calls == 1
			mu.Unlock()
			if first {
				<-ctx.Done() // held until the caller gives up
				mu.Lock()
				cancelled++
				mu.Unlock()
				return nil, ctx.Err()
			}
			return watch.NewFake(), nil
		},
	}
	rl := &relister{example: &corev1.Pod{}, store: func() toolscache.Store { return toolscache.NewStore(toolscache.MetaNamespaceKeyFunc) }}
	lwh := toolscache.ToListerWatcherWithContext(h.watchingWith(lw, "*v1.Pod#1", rl))
	// The API server was out of reach, and the informer is down.
	if !h.unreachable(errConnRefused) {
		t.Fatal("a refused connection is not unreachable")
	}
	h.failed("*v1.Pod#1", errConnRefused)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := lwh.WatchWithContext(ctx, metav1.ListOptions{ResourceVersion: "5"})
	if err != nil {
		t.Fatal(err)
	}
	w.Stop()
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 || cancelled != 1 {
		t.Fatalf("%d watch calls, %d abandoned; want the held one abandoned and a second made", calls, cancelled)
	}
	if h.isDown("*v1.Pod#1") {
		t.Fatal("the informer is still down after its watch was answered")
	}

	// Up, a slow answer is waited for.
	slow := &toolscache.ListWatch{
		ListWithContextFunc: lw.ListWithContextFunc,
		WatchFuncWithContext: func(ctx context.Context, _ metav1.ListOptions) (watch.Interface, error) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(watchBound + 200*time.Millisecond):
				return watch.NewFake(), nil
			}
		},
	}
	w, err = toolscache.ToListerWatcherWithContext(h.watchingWith(slow, "*v1.Pod#1", rl)).WatchWithContext(ctx, metav1.ListOptions{ResourceVersion: "6"})
	if err != nil {
		t.Fatalf("a slow watch of a healthy informer was cut short: %v", err)
	}
	w.Stop()
}
