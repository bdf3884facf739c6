package controllers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// cacheReads is a cache that answers each read of an object with the next of its
// answers (the last one again when they run out): a resourceVersion, or an error.
type cacheReads struct {
	answers []any
	reads   int
}

func (c *cacheReads) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	a := c.answers[min(c.reads, len(c.answers)-1)]
	c.reads++
	if err, ok := a.(error); ok {
		return err
	}
	obj.SetNamespace(key.Namespace)
	obj.SetName(key.Name)
	obj.SetResourceVersion(a.(string))
	return nil
}

func (c *cacheReads) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("the cache wait never lists")
}

func TestWaitForCacheToBeUpToDate(t *testing.T) {
	gone := apierrors.NewNotFound(schema.GroupResource{Group: v1alpha1.GroupVersion.Group, Resource: "autonomicapps"}, "shop")
	tests := []struct {
		name    string
		answers []any
		cancel  bool
		// reads is how many reads the wait makes, waited how long on the clock.
		reads  int
		waited time.Duration
		// wantErr lists what the error says; none when the wait succeeds.
		wantErr []string
	}{
		{name: "the cache already holds the write", answers: []any{"42"}, reads: 1},
		{name: "a newer version counts", answers: []any{"43"}, reads: 1},
		{name: "the cache catches up after three reads, waiting 5 then 10 ms",
			answers: []any{"40", "41", "42"}, reads: 3, waited: 15 * time.Millisecond},
		{name: "the cache never catches up: an error after about 5 s, naming the object and both versions",
			answers: []any{"41"}, reads: 11, waited: 5115 * time.Millisecond,
			wantErr: []string{"AutonomicApp shop/shop", "resourceVersion 41", "after 11 reads in 5.115s", "waited for 42 or newer"}},
		{name: "the object is deleted while the wait runs", answers: []any{"41", gone}, reads: 2, waited: 5 * time.Millisecond},
		{name: "the object was deleted before", answers: []any{gone}, reads: 1},
		{name: "a read that fails ends the wait with its error",
			answers: []any{"41", errors.New("the cache is not started")}, reads: 2, waited: 5 * time.Millisecond,
			wantErr: []string{"AutonomicApp shop/shop at resourceVersion 42 or newer", "the cache is not started"}},
		{name: "a resourceVersion that is not a number cannot be compared",
			answers: []any{"x1"}, reads: 1, wantErr: []string{"AutonomicApp shop/shop", "x1"}},
		{name: "a context that ends stops the wait", answers: []any{"41"}, cancel: true, reads: 1,
			wantErr: []string{"AutonomicApp shop/shop at resourceVersion 42 or newer (it holds 41)", context.Canceled.Error()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				cancel()
			}
			clk := clocktesting.NewFakeClock(time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC))
			start := clk.Now()
			cache := &cacheReads{answers: tt.answers}
			app := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"}}
			done := make(chan error, 1)
			go func() { done <- waitForCacheToBeUpToDate(ctx, cache, clk, app, "42") }()

			// The fake clock moves a millisecond at a time while the wait's timer is set,
			// so it ends exactly as long after the start as the backoff waited.
			var err error
		drive:
			for {
				select {
				case err = <-done:
					break drive
				default:
				}
				if clk.HasWaiters() {
					clk.Step(time.Millisecond)
				} else {
					time.Sleep(10 * time.Microsecond)
				}
			}

			if cache.reads != tt.reads {
				t.Errorf("%d reads, want %d", cache.reads, tt.reads)
			}
			if waited := clk.Since(start); waited != tt.waited {
				t.Errorf("waited %s, want %s", waited, tt.waited)
			}
			switch {
			case len(tt.wantErr) == 0 && err != nil:
				t.Errorf("waitForCacheToBeUpToDate() = %v, want nil", err)
			case len(tt.wantErr) > 0 && err == nil:
				t.Errorf("waitForCacheToBeUpToDate() = nil, want an error saying %q", tt.wantErr)
			case err != nil:
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("waitForCacheToBeUpToDate() = %q, want it to say %q", err, want)
					}
				}
			}
		})
	}
}
