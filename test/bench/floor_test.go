package bench

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// floorAnnotation is what the reference controller sets on a pod it saw crash-looping.
const floorAnnotation = "bench.homeostat.dev/floor-acted"

// floorController is detect-to-act's floor: a controller that does the job of
// Homeostat's first call on a crash-looping pod and nothing else. An informer on pods
// hands every pod that turns crash-looping to one worker, which patches an annotation
// onto it. No app, no symptom, no ledger, no guard: what any operator on this cluster
// and this client needs to see a pod's change and make its first write. Its patch is
// timed as the manager's stamp is, by the arrival of the changed pod at the test's own
// informer.
type floorController struct {
	cancel context.CancelFunc
	queue  chan types.NamespacedName
	done   chan struct{}
}

// startFloorController starts the reference controller and waits for its cache.
func startFloorController(ctx context.Context, cs kubernetes.Interface) (*floorController, error) {
	ctx, cancel := context.WithCancel(ctx)
	f := &floorController{cancel: cancel, queue: make(chan types.NamespacedName, 1024), done: make(chan struct{})}
	factory := informers.NewSharedInformerFactory(cs, 0)
	pods := factory.Core().V1().Pods().Informer()
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			old, ok1 := oldObj.(*corev1.Pod)
			cur, ok2 := newObj.(*corev1.Pod)
			if ok1 && ok2 && crashLooping(cur) && !crashLooping(old) {
				select {
				case f.queue <- types.NamespacedName{Namespace: cur.Namespace, Name: cur.Name}:
				default: // a full queue drops: the trials are far apart
				}
			}
		},
	}); err != nil {
		cancel()
		return nil, err
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			cancel()
			return nil, fmt.Errorf("the reference controller's cache of %v did not sync", typ)
		}
	}
	go func() {
		defer close(f.done)
		for {
			select {
			case <-ctx.Done():
				return
			case key := <-f.queue:
				patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, floorAnnotation, time.Now().Format(time.RFC3339Nano))
				// The manager may have evicted the pod first: nothing to do then.
				_, _ = cs.CoreV1().Pods(key.Namespace).Patch(ctx, key.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			}
		}
	}()
	return f, nil
}

func (f *floorController) stop() {
	f.cancel()
	<-f.done
}
