package harness

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// Watcher is the benchmark's own view of the cluster: a bare client-go informer on every
// pod (the floor a watch event takes to reach any informer) and an informer on the apps.
// It counts ready pods and reconciled apps as events arrive, and lets a test wait for the
// next event about one object with a hook that runs as it arrives.
type Watcher struct {
	pods toolscache.SharedIndexInformer
	apps crcache.Cache

	mu         sync.Mutex
	readyPods  map[string]bool
	nReady     int
	reconciled map[string]bool
	healthy    map[string]bool
	nRecon     int
	nHealthy   int
	sensed     map[string]bool
	nSensed    int
	podHooks   map[string]PodHook
	appHooks   map[string]AppHook
}

// PodHook sees every update of one pod, with the time its event arrived.
type PodHook func(old, cur *corev1.Pod, at time.Time)

// AppHook sees every add or update of one app, with the time its event arrived.
type AppHook func(cur *v1alpha1.AutonomicApp, at time.Time)

// IndexApp indexes pods by namespace/<app label>.
const IndexApp = "bench.app"

// StartWatcher starts the informers and waits for their first list.
func StartWatcher(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme) (*Watcher, error) {
	quietLogs.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	w := &Watcher{readyPods: map[string]bool{}, reconciled: map[string]bool{}, healthy: map[string]bool{},
		sensed: map[string]bool{}, podHooks: map[string]PodHook{}, appHooks: map[string]AppHook{}}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTransform(dropManagedFields))
	w.pods = factory.Core().V1().Pods().Informer()
	if err := w.pods.AddIndexers(toolscache.Indexers{IndexApp: func(o any) ([]string, error) {
		p := o.(*corev1.Pod)
		if a := p.Labels["app"]; a != "" {
			return []string{p.Namespace + "/" + a}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, err
	}
	if _, err := w.pods.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) { w.podEvent(nil, o.(*corev1.Pod), time.Now()) },
		UpdateFunc: func(o, n any) {
			w.podEvent(o.(*corev1.Pod), n.(*corev1.Pod), time.Now())
		},
		DeleteFunc: func(o any) {
			if p, ok := o.(*corev1.Pod); ok {
				w.mu.Lock()
				w.setPod(podKey(p), false)
				w.mu.Unlock()
			}
		},
	}); err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())

	w.apps, err = crcache.New(cfg, crcache.Options{Scheme: scheme, DefaultTransform: func(o any) (any, error) {
		return dropManagedFields(o)
	}})
	if err != nil {
		return nil, err
	}
	inf, err := w.apps.GetInformer(ctx, &v1alpha1.AutonomicApp{})
	if err != nil {
		return nil, err
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.appEvent(o.(*v1alpha1.AutonomicApp), time.Now()) },
		UpdateFunc: func(_, n any) { w.appEvent(n.(*v1alpha1.AutonomicApp), time.Now()) },
		DeleteFunc: func(o any) {
			if a, ok := o.(*v1alpha1.AutonomicApp); ok {
				w.mu.Lock()
				w.setApp(a.Namespace+"/"+a.Name, false, false)
				w.setSensed(a.Namespace+"/"+a.Name, false)
				w.mu.Unlock()
			}
		},
	}); err != nil {
		return nil, err
	}
	go func() { _ = w.apps.Start(ctx) }()
	if !toolscache.WaitForCacheSync(ctx.Done(), w.pods.HasSynced) || !w.apps.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the benchmark's informers did not sync: %w", ctx.Err())
	}
	return w, nil
}

func dropManagedFields(o any) (any, error) {
	if m, err := meta.Accessor(o); err == nil {
		m.SetManagedFields(nil)
	}
	return o, nil
}

func podKey(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

func (w *Watcher) podEvent(old, cur *corev1.Pod, at time.Time) {
	key := podKey(cur)
	w.mu.Lock()
	w.setPod(key, PodRunningReady(cur))
	hook := w.podHooks[key]
	w.mu.Unlock()
	if hook != nil && old != nil {
		hook(old, cur, at)
	}
}

func (w *Watcher) setPod(key string, ready bool) {
	if w.readyPods[key] != ready {
		if ready {
			w.nReady++
		} else {
			w.nReady--
		}
	}
	if ready {
		w.readyPods[key] = true
	} else {
		delete(w.readyPods, key)
	}
}

func (w *Watcher) appEvent(a *v1alpha1.AutonomicApp, at time.Time) {
	key := a.Namespace + "/" + a.Name
	w.mu.Lock()
	w.setApp(key, AppReconciled(a), a.Status.Phase == v1alpha1.PhaseHealthy)
	w.setSensed(key, AppReconciled(a) && AppSensorsRead(a))
	hook := w.appHooks[key]
	w.mu.Unlock()
	if hook != nil {
		hook(a, at)
	}
}

func (w *Watcher) setApp(key string, reconciled, healthy bool) {
	if w.reconciled[key] != reconciled {
		if reconciled {
			w.nRecon++
		} else {
			w.nRecon--
		}
	}
	if reconciled {
		w.reconciled[key] = true
	} else {
		delete(w.reconciled, key)
	}
	if w.healthy[key] != healthy {
		if healthy {
			w.nHealthy++
		} else {
			w.nHealthy--
		}
	}
	if healthy {
		w.healthy[key] = true
	} else {
		delete(w.healthy, key)
	}
}

func (w *Watcher) setSensed(key string, sensed bool) {
	if w.sensed[key] != sensed {
		if sensed {
			w.nSensed++
		} else {
			w.nSensed--
		}
	}
	if sensed {
		w.sensed[key] = true
	} else {
		delete(w.sensed, key)
	}
}

// AppSensorsRead says whether the app declares polled sensors and its status shows a
// value, and no error, for each.
func AppSensorsRead(a *v1alpha1.AutonomicApp) bool {
	if len(a.Status.Sensors) == 0 {
		return false
	}
	for _, s := range a.Status.Sensors {
		if s.Value == "" || s.Error != "" {
			return false
		}
	}
	return true
}

// PodRunningReady says whether a pod runs, is Ready and is not terminating.
func PodRunningReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// AppReconciled says whether the app's status is of its current generation and Ready.
func AppReconciled(a *v1alpha1.AutonomicApp) bool {
	if a.Status.ObservedGeneration != a.Generation {
		return false
	}
	c := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue
}

// ReadyPods is the number of running, ready pods.
func (w *Watcher) ReadyPods() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nReady
}

// ReconciledApps is the number of apps whose status is current and Ready; HealthyApps of
// those in phase Healthy.
func (w *Watcher) ReconciledApps() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nRecon
}

// SensedApps is the number of apps whose status is current and Ready and shows every
// polled sensor read (AppSensorsRead).
func (w *Watcher) SensedApps() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nSensed
}

// HealthyApps is the number of apps in phase Healthy.
func (w *Watcher) HealthyApps() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nHealthy
}

// AppHealthy says whether the app is in phase Healthy with a current, Ready status.
func (w *Watcher) AppHealthy(ns, name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := ns + "/" + name
	return w.healthy[k] && w.reconciled[k]
}

// PodsOf returns the pods labelled app=<app> in ns, from the informer (do not modify).
func (w *Watcher) PodsOf(ns, app string) []*corev1.Pod {
	objs, err := w.pods.GetIndexer().ByIndex(IndexApp, ns+"/"+app)
	if err != nil {
		return nil
	}
	out := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*corev1.Pod))
	}
	return out
}

// App returns the app from the informer, nil when absent.
func (w *Watcher) App(ctx context.Context, ns, name string) *v1alpha1.AutonomicApp {
	a := &v1alpha1.AutonomicApp{}
	if err := w.apps.Get(ctx, crKey(ns, name), a); err != nil {
		return nil
	}
	return a
}

// HookPod sets (nil: removes) the hook of a pod.
func (w *Watcher) HookPod(ns, name string, h PodHook) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if h == nil {
		delete(w.podHooks, ns+"/"+name)
	} else {
		w.podHooks[ns+"/"+name] = h
	}
}

// HookApp sets (nil: removes) the hook of an app.
func (w *Watcher) HookApp(ns, name string, h AppHook) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if h == nil {
		delete(w.appHooks, ns+"/"+name)
	} else {
		w.appHooks[ns+"/"+name] = h
	}
}

// WaitFor polls cond every 100 ms until it holds. It fails when timeout passes, or when
// stall passes without the progress value changing (0: no stall check).
func WaitFor(ctx context.Context, what string, timeout, stall time.Duration, progress func() int, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	last, lastChange := -1, time.Now()
	for !cond() {
		now := time.Now()
		if progress != nil {
			if p := progress(); p != last {
				last, lastChange = p, now
			}
		}
		switch {
		case now.After(deadline):
			return fmt.Errorf("waiting for %s: not done within %s (progress %d)", what, timeout, last)
		case stall > 0 && now.Sub(lastChange) > stall:
			return fmt.Errorf("waiting for %s: no progress for %s (progress %d)", what, stall, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

var quietLogs sync.Once

func crKey(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}
