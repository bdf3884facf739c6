package controllers

import (
	"context"
	"fmt"
	"reflect"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// cacheWaitBackoff spaces the reads of waitForCacheToBeUpToDate: 5 ms, doubling, at most
// Steps reads, so a cache that does not catch up is given up on after about 5 s of
// waiting (5 + 10 + ... + 2560 ms between 11 reads). A watch event usually reaches the
// cache within milliseconds of the write.
var cacheWaitBackoff = wait.Backoff{Duration: 5 * time.Millisecond, Factor: 2, Steps: 11}

// waitForCacheToBeUpToDate waits until the cache behind c holds obj at
// minResourceVersion or newer, as Cluster API's util/client WaitForCacheToBeUpToDate
// does after a controller's own writes. It reads obj (by its namespace and name) with
// the exponential backoff of cacheWaitBackoff, timed by clk, so a fake clock drives it in
// tests: a timer is set only between two reads. An object the cache no longer holds was deleted: that is not waited for.
//
// It returns an error naming the object and both resourceVersions when the cache has not
// caught up after the last read, when a read fails or a resourceVersion cannot be
// compared, and when ctx ends. Each read goes into obj without a deep copy, so obj shares
// its contents with the cache: the caller reads it at most, and only its metadata.
func waitForCacheToBeUpToDate(ctx context.Context, c client.Reader, clk clock.Clock, obj client.Object, minResourceVersion string) error {
	key := client.ObjectKeyFromObject(obj)
	what := fmt.Sprintf("%s %s", kindOf(obj), klog.KRef(key.Namespace, key.Name))
	start := clk.Now()
	backoff := cacheWaitBackoff // Step consumes its copy
	for read := 1; ; read++ {
		upToDate, err := cacheHolds(ctx, c, key, obj, minResourceVersion)
		switch {
		case err != nil:
			return fmt.Errorf("waiting for the cache to hold %s at resourceVersion %s or newer: %w", what, minResourceVersion, err)
		case upToDate:
			return nil
		case read >= cacheWaitBackoff.Steps:
			return fmt.Errorf("the cache still holds %s at resourceVersion %s after %d reads in %s; waited for %s or newer",
				what, obj.GetResourceVersion(), read, clk.Since(start), minResourceVersion)
		}
		// The timer is set only while nothing else happens, so the time a read takes
		// never counts as waiting, on a fake clock as on a real one.
		timer := clk.NewTimer(backoff.Step())
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("stopped waiting for the cache to hold %s at resourceVersion %s or newer (it holds %s): %w",
				what, minResourceVersion, obj.GetResourceVersion(), ctx.Err())
		case <-timer.C():
		}
	}
}

// cacheHolds reads obj from c and reports whether it is at minResourceVersion or newer;
// an object that is not found counts as up to date.
func cacheHolds(ctx context.Context, c client.Reader, key client.ObjectKey, obj client.Object, minResourceVersion string) (bool, error) {
	if err := c.Get(ctx, key, obj, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}
	cmp, err := resourceversion.CompareResourceVersion(obj.GetResourceVersion(), minResourceVersion)
	if err != nil {
		return false, err
	}
	return cmp >= 0, nil
}

// kindOf names an object's kind for a message: its GVK's kind when set (typed objects
// read from a cache often have none), else its Go type's name.
func kindOf(obj client.Object) string {
	if k := obj.GetObjectKind().GroupVersionKind().Kind; k != "" {
		return k
	}
	t := reflect.TypeOf(obj)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}
