package controllers

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/analyze"
	"github.com/homeostat-dev/homeostat/internal/execute"
	"github.com/homeostat-dev/homeostat/internal/knowledge"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// CrashAfterIntentEnv, when set to an action name (or "*"), makes the manager exit right
// after it has recorded the intent of such an action and before the effector runs. Tests
// use it to prove that a restarted manager acts exactly once.
const CrashAfterIntentEnv = "HOMEOSTAT_TEST_CRASH_AFTER_INTENT"

// pendingRecheck is how soon an action that reported progress (still Pending) is
// looked at again when nothing else brings its app back.
const pendingRecheck = 2 * time.Second

// +kubebuilder:rbac:groups=autonomic.homeostat.dev,resources=autonomicapps,verbs=get;list;watch
// +kubebuilder:rbac:groups=autonomic.homeostat.dev,resources=autonomicapps/status,verbs=get;patch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;replicasets;controllerrevisions,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;replicasets,verbs=patch
// +kubebuilder:rbac:groups=apps,resources=deployments/scale;statefulsets/scale;replicasets/scale,verbs=patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups="",resources=pods/eviction,verbs=create
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

// AppReconciler runs the MAPE-K loop of an AutonomicApp.
type AppReconciler struct {
	client.Client
	Recorder  events.EventRecorder
	Clock     clock.Clock
	Gatherer  monitor.Gatherer
	Effectors *execute.Effectors
	Metrics   *Metrics
	// Storm is the cluster-wide storm breaker.
	Storm *stormBreaker
	// Poller polls the apps' sensors; Readings holds what it read. Both may be nil
	// (then polled sensors are never available).
	Poller   *monitor.Poller
	Readings *monitor.Readings
	// notify brings an app back when one of its sensors changes.
	notify *notifier

	autoscalers autoscaleMemory

	triggers *triggers
	// written holds, per app, the resourceVersion of this manager's last status write,
	// until the app's next reconcile has seen the cache catch up with it.
	written sync.Map
	// keda watches ScaledObjects once KEDA is installed; nil before SetupWithManager.
	keda *kedaWatch
	// cacheHealth says when the informer cache may be stale (a watch failed and has not
	// listed again); nil when the cache does not report it.
	cacheHealth *cacheHealth
}

// SetupWithManager watches apps, their workloads and pods, and child apps. Every watch
// maps a change to exactly the apps that name it, through the cache indexes.
func (r *AppReconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.AutonomicApp{}, indexHeldByNodes, heldByNodesIndex); err != nil {
		return fmt.Errorf("indexing apps by the node guard's hold: %w", err)
	}
	c, err := ctrl.NewControllerManagedBy(mgr).
		// Labels count: a relabelled app may come under a shared policy or leave one.
		For(&v1alpha1.AutonomicApp{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Watches(&v1alpha1.AutonomicApp{}, handler.EnqueueRequestsFromMapFunc(r.parentsOfChild)).
		// A relabelled namespace may come under a ClusterHealingPolicy's namespaceSelector.
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.appsOfNamespace), builder.WithPredicates(predicate.LabelChangedPredicate{})).
		// An HPA created for, or removed from, an autoscaled workload: Conflict at once.
		Watches(&autoscalingv2.HorizontalPodAutoscaler{}, handler.EnqueueRequestsFromMapFunc(r.appsOfHPA), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(r.appsOfWorkload)).
		Watches(&appsv1.StatefulSet{}, handler.EnqueueRequestsFromMapFunc(r.appsOfWorkload)).
		Watches(&appsv1.ReplicaSet{}, handler.EnqueueRequestsFromMapFunc(r.appsOfWorkload)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.appsOfPod)).
		// A failover policy's Service: a selector someone else changed is set back at once.
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.appsOfService), builder.WithPredicates(failoverServiceChanged)).
		// A node turning Ready or a cordon lifted may let a held node action through.
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.appsHeldByNodes), builder.WithPredicates(nodeAvailabilityChanged)).
		// A runJob action's Job is controlled by its app: its completion brings the app back.
		Owns(&batchv1.Job{}).
		Watches(&v1alpha1.HealingPolicy{}, r.sharedPolicyHandler(), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.ClusterHealingPolicy{}, r.sharedPolicyHandler(), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Channel(r.Storm.flips, allApps(r.Client))).
		WatchesRawSource(r.notify).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Named("autonomicapp").
		Build(r)
	if err != nil {
		return err
	}
	r.keda = &kedaWatch{ctrl: c, cache: mgr.GetCache(), enqueue: r.appsOfScaledObject}
	return nil
}

func (r *AppReconciler) enqueue(keys []types.NamespacedName) []reconcile.Request {
	now := r.Clock.Now()
	out := make([]reconcile.Request, 0, len(keys))
	for _, k := range keys {
		r.triggers.mark(k, now)
		out = append(out, reconcile.Request{NamespacedName: k})
	}
	return out
}

func (r *AppReconciler) appsOfWorkload(ctx context.Context, o client.Object) []reconcile.Request {
	kind := ""
	switch o.(type) {
	case *appsv1.Deployment:
		kind = "Deployment"
	case *appsv1.StatefulSet:
		kind = "StatefulSet"
	case *appsv1.ReplicaSet:
		kind = "ReplicaSet"
	}
	owners := []monitor.OwnerRef{{Kind: kind, Name: o.GetName()}}
	if ref := metav1.GetControllerOf(o); ref != nil && ref.Kind == "Deployment" {
		owners = append(owners, monitor.OwnerRef{Kind: ref.Kind, Name: ref.Name})
	}
	return r.enqueue(r.appsOf(ctx, o.GetNamespace(), owners))
}

func (r *AppReconciler) appsOfPod(ctx context.Context, o client.Object) []reconcile.Request {
	pod, ok := o.(*corev1.Pod)
	if !ok {
		return nil
	}
	return r.enqueue(r.appsOf(ctx, pod.Namespace, monitor.WorkloadOfPod(ctx, r.Client, pod)))
}

func (r *AppReconciler) appsOf(ctx context.Context, ns string, owners []monitor.OwnerRef) []types.NamespacedName {
	var keys []types.NamespacedName
	for _, w := range owners {
		apps, err := monitor.AppsForWorkload(ctx, r.Client, ns, w.Kind, w.Name)
		if err != nil {
			logf.FromContext(ctx).Error(err, "Listing the apps of a workload failed", "kind", w.Kind, "name", w.Name)
			continue
		}
		keys = append(keys, apps...)
	}
	return keys
}

// appsOfNamespace enqueues every app of a namespace whose labels changed.
func (r *AppReconciler) appsOfNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	var apps v1alpha1.AutonomicAppList
	if err := r.List(ctx, &apps, client.InNamespace(o.GetName()), client.UnsafeDisableDeepCopy); err != nil {
		logf.FromContext(ctx).Error(err, "Listing the apps of a namespace failed", "namespace", o.GetName())
		return nil
	}
	keys := make([]types.NamespacedName, 0, len(apps.Items))
	for _, a := range apps.Items {
		keys = append(keys, types.NamespacedName{Namespace: a.Namespace, Name: a.Name})
	}
	return r.enqueue(keys)
}

// appsOfHPA enqueues the apps whose components name the HPA's scale target.
func (r *AppReconciler) appsOfHPA(ctx context.Context, o client.Object) []reconcile.Request {
	h, ok := o.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		return nil
	}
	ref := h.Spec.ScaleTargetRef
	return r.enqueue(r.appsOf(ctx, h.Namespace, []monitor.OwnerRef{{Kind: ref.Kind, Name: ref.Name}}))
}

func (r *AppReconciler) parentsOfChild(ctx context.Context, o client.Object) []reconcile.Request {
	var apps v1alpha1.AutonomicAppList
	if err := r.List(ctx, &apps, client.InNamespace(o.GetNamespace()), client.MatchingFields{monitor.IndexChild: o.GetName()},
		client.UnsafeDisableDeepCopy); err != nil {
		logf.FromContext(ctx).Error(err, "Listing the parents of an app failed", "app", klogKey(o))
		return nil
	}
	keys := make([]types.NamespacedName, 0, len(apps.Items))
	for _, a := range apps.Items {
		keys = append(keys, types.NamespacedName{Namespace: a.Namespace, Name: a.Name})
	}
	return r.enqueue(keys)
}

// Reconcile gets the app, runs the loop once, and writes status once if it changed.
// Intents are written before effectors run, so a reconcile that acts writes status
// more than once; one that changes nothing writes nothing.
func (r *AppReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if rv, ok := r.written.Load(req.NamespacedName); ok {
		// This reconcile must not read the status from before the last one's writes: a
		// stale ledger would resume an intent that already finished. The wait is here, not
		// after the write, so the worker is free meanwhile; by now it is usually over.
		r.waitForCache(ctx, req.NamespacedName, rv.(string))
		r.written.CompareAndDelete(req.NamespacedName, rv)
	}
	app := &v1alpha1.AutonomicApp{}
	if err := r.Get(ctx, req.NamespacedName, app); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !app.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	s := &session{r: r, app: app, base: app.DeepCopy(), now: r.Clock.Now()}
	s.triggeredAt = r.triggers.take(req.NamespacedName, s.now)
	next, err := r.reconcile(ctx, s)
	if ferr := s.flush(ctx); ferr != nil && err == nil {
		err = ferr
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if !next.IsZero() {
		return ctrl.Result{RequeueAfter: max(next.Sub(r.Clock.Now()), 10*time.Millisecond)}, nil
	}
	return ctrl.Result{}, nil
}

// session is one reconcile of one app: the app as read, the status as last written,
// and the earliest time the loop must run again.
type session struct {
	r   *AppReconciler
	app *v1alpha1.AutonomicApp
	// view is the app with the shared policies that select it merged into its spec:
	// what the loop runs. Status is written on app.
	view        *v1alpha1.AutonomicApp
	merged      plan.Merged
	base        *v1alpha1.AutonomicApp
	now         time.Time
	triggeredAt time.Time
	next        time.Time
	components  []monitor.Component
	// childWorkloads stands in for child-app components where a workload is needed (a
	// failover between two child apps): the child's first workload component, healthy
	// when the child app is.
	childWorkloads map[string]*monitor.Component
}

func (s *session) requeueAt(t time.Time) {
	if !t.IsZero() && (s.next.IsZero() || t.Before(s.next)) {
		s.next = t
	}
}

// flush writes status if it changed, with an optimistic lock: a write based on a stale
// read fails instead of overwriting a newer ledger, so no intent is ever lost or doubled.
func (s *session) flush(ctx context.Context) error {
	if equality.Semantic.DeepEqual(s.base.Status, s.app.Status) {
		return nil
	}
	patch := client.MergeFromWithOptions(s.base, client.MergeFromWithOptimisticLock{})
	if err := s.r.Status().Patch(ctx, s.app, patch); err != nil {
		return fmt.Errorf("writing status: %w", err)
	}
	s.base = s.app.DeepCopy()
	s.r.written.Store(types.NamespacedName{Namespace: s.app.Namespace, Name: s.app.Name}, s.app.ResourceVersion)
	return nil
}

// waitForCache waits, briefly, until the informer cache holds the app at the
// resourceVersion the last reconcile wrote (or a newer one), as Cluster API does after
// its own writes. It reads the cached app without copying it.
func (r *AppReconciler) waitForCache(ctx context.Context, key types.NamespacedName, rv string) {
	want, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		app := &v1alpha1.AutonomicApp{}
		if err := r.Get(ctx, key, app, client.UnsafeDisableDeepCopy); err != nil {
			return
		}
		if got, err := strconv.ParseUint(app.ResourceVersion, 10, 64); err != nil || got >= want {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (r *AppReconciler) forget(key types.NamespacedName) {
	r.triggers.forget(key)
	r.written.Delete(key)
	r.Storm.forget(context.Background(), key)
	r.autoscalers.forget(key)
	if r.Poller != nil {
		r.Poller.Forget(key)
	}
	r.Metrics.SymptomActive.DeletePartialMatch(map[string]string{"namespace": key.Namespace, "app": key.Name})
}

// reconcile is the loop: monitor, analyze, plan, execute, and the status that explains it.
func (r *AppReconciler) reconcile(ctx context.Context, s *session) (time.Time, error) {
	app := s.app
	st := &app.Status

	// Knowledge: the app's own healing and the shared policies that select it.
	shared, err := sharedFor(ctx, r.Client, app)
	if err != nil {
		return time.Time{}, err
	}
	s.view, s.merged = mergedView(app, shared)
	if r.Poller != nil {
		r.Poller.Sync(s.view, s.view.Spec.Sensors)
	}
	r.sensorStatus(s)

	// Monitor.
	components, err := r.Gatherer.Gather(ctx, app)
	if err != nil {
		return time.Time{}, err
	}
	s.components = components
	if err := r.gatherChildWorkloads(ctx, s); err != nil {
		return time.Time{}, err
	}
	st.Components = make([]v1alpha1.ComponentStatus, 0, len(components))
	for _, c := range components {
		st.Components = append(st.Components, c.Status)
	}
	r.Storm.observe(ctx, types.NamespacedName{Namespace: app.Namespace, Name: app.Name}, rollup(app, components).Healthy)

	// Validate what CEL in the CRD cannot: symptom expressions and cross references.
	if errs := validateView(s.view, s.merged); len(errs) > 0 {
		r.setCondition(s, v1alpha1.ConditionReady, false, v1alpha1.ReasonInvalidSpec,
			"The spec is invalid and no policy runs until it is fixed: "+validationMessage(errs))
		r.finishStatus(s)
		return s.next, nil
	}
	if herr := analyze.CheckHierarchy(app, r.lookupApp(ctx, app.Namespace)); herr != nil {
		r.setCondition(s, v1alpha1.ConditionReady, false, herr.Reason, herr.Error())
		r.finishStatus(s)
		return s.next, nil
	}
	if missing := missingComponents(components); missing != "" {
		r.setCondition(s, v1alpha1.ConditionReady, false, v1alpha1.ReasonComponentNotFound, missing)
	} else {
		r.setCondition(s, v1alpha1.ConditionReady, true, v1alpha1.ReasonReconciled, "Every component resolves and every symptom compiles.")
	}

	// Analyze.
	active := r.analyze(s)

	// Knowledge: finish any intent an earlier run recorded but did not see through.
	if err := r.resumePending(ctx, s); err != nil {
		return time.Time{}, err
	}

	// Plan and execute.
	if err := r.runPolicies(ctx, s, active); err != nil {
		return time.Time{}, err
	}
	r.finishStatus(s)
	return s.next, nil
}

// gatherChildWorkloads finds, for each child-app component, the child's first workload
// component, so a parent's failover policy can move traffic between child apps.
func (r *AppReconciler) gatherChildWorkloads(ctx context.Context, s *session) error {
	s.childWorkloads = map[string]*monitor.Component{}
	for _, c := range s.components {
		if c.Child == nil {
			continue
		}
		inner, err := r.Gatherer.Gather(ctx, c.Child)
		if err != nil {
			return err
		}
		for i := range inner {
			if inner[i].Ref == nil {
				continue
			}
			w := inner[i]
			w.Name = c.Name
			w.Status.Name = c.Name
			w.Status.Healthy = w.Status.Healthy && c.Status.Healthy
			s.childWorkloads[c.Name] = &w
			break
		}
	}
	return nil
}

// lookupApp reads apps of a namespace from the cache, for the hierarchy check.
func (r *AppReconciler) lookupApp(ctx context.Context, ns string) func(string) *v1alpha1.AutonomicApp {
	return func(name string) *v1alpha1.AutonomicApp {
		a := &v1alpha1.AutonomicApp{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, a); err != nil {
			return nil
		}
		return a
	}
}

// sensorStatus reports the last reading of every declared sensor, in spec order.
func (r *AppReconciler) sensorStatus(s *session) {
	readings := r.readings(types.NamespacedName{Namespace: s.app.Namespace, Name: s.app.Name})
	out := make([]v1alpha1.SensorStatus, 0, len(s.view.Spec.Sensors))
	for _, sn := range s.view.Spec.Sensors {
		if rd, ok := readings[sn.Name]; ok {
			out = append(out, rd.Status(sn.Name))
		} else {
			out = append(out, v1alpha1.SensorStatus{Name: sn.Name, Error: "Not polled yet."})
		}
	}
	if len(out) == 0 {
		out = nil
	}
	s.app.Status.Sensors = out
}

// cappedTimeouts are the sensors whose timeouts the egress policy cuts.
func (r *AppReconciler) cappedTimeouts(sensors []v1alpha1.Sensor) []plan.CappedTimeout {
	if r.Poller == nil {
		return nil
	}
	var out []plan.CappedTimeout
	for _, c := range r.Poller.TimeoutCaps(sensors) {
		out = append(out, plan.CappedTimeout{Sensor: c.Sensor, Asked: c.Asked, Cap: c.Cap})
	}
	return out
}

// missingComponents is the Ready condition's message for a component whose workload or
// child app does not exist, or "" when every component resolves.
func missingComponents(cs []monitor.Component) string {
	return plan.MissingComponent(componentHealth(cs))
}

// rollup is the app's health: at least minHealthyComponents healthy (default all).
func rollup(app *v1alpha1.AutonomicApp, cs []monitor.Component) plan.Health {
	return plan.Rollup(minHealthyComponents(app), componentHealth(cs))
}

func minHealthyComponents(app *v1alpha1.AutonomicApp) *int32 {
	if app.Spec.Health == nil {
		return nil
	}
	return app.Spec.Health.MinHealthyComponents
}

// componentHealth is what the summary reads of each gathered component.
func componentHealth(cs []monitor.Component) []plan.ComponentHealth {
	out := make([]plan.ComponentHealth, 0, len(cs))
	for _, c := range cs {
		out = append(out, plan.ComponentHealth{Name: c.Name, Healthy: c.Status.Healthy, Found: c.Status.Found, Message: c.Status.Message})
	}
	return out
}

// analyze evaluates the symptoms with hysteresis and returns the active set.
func (r *AppReconciler) analyze(s *session) map[string]bool {
	app := s.app
	compiled, errs := analyze.Compile(s.view.Spec.Symptoms, analyze.DeclaredFor(s.view), "spec.symptoms")
	active := map[string]bool{}
	if len(errs) > 0 {
		// ValidateApp already reported it; nothing to evaluate.
		return active
	}
	in := analyze.Input{Components: map[string]map[string]any{}, Sensors: map[string]float64{}, App: appVars(app, s.components)}
	for name, rd := range r.readings(types.NamespacedName{Namespace: app.Namespace, Name: app.Name}) {
		if rd.Available() {
			in.Sensors[name] = rd.Value
		}
	}
	for _, c := range s.components {
		in.Components[c.Name] = analyze.ComponentVars(c.Status, c.Ref == nil)
	}
	evals := compiled.Eval(in)
	prev := map[string]v1alpha1.SymptomStatus{}
	for _, p := range app.Status.Symptoms {
		prev[p.Name] = p
	}
	out := make([]v1alpha1.SymptomStatus, 0, len(s.view.Spec.Symptoms))
	for _, sym := range s.view.Spec.Symptoms {
		p, ok := prev[sym.Name]
		if !ok {
			p = v1alpha1.SymptomStatus{Name: sym.Name}
		}
		next, check := analyze.Step(p, evals[sym.Name], durationOf(sym.For), durationOf(sym.ClearFor), s.now)
		s.requeueAt(check)
		out = append(out, next)
		if next.Active {
			active[sym.Name] = true
		}
		r.Metrics.SymptomActive.WithLabelValues(app.Namespace, app.Name, sym.Name).Set(boolFloat(next.Active))
		if next.Active != p.Active {
			verb, typ := "cleared", corev1.EventTypeNormal
			if next.Active {
				verb, typ = "became active", corev1.EventTypeWarning
			}
			r.Recorder.Eventf(app, nil, typ, "Symptom"+titleWord(verb), "Analyze", "Symptom %s %s.", sym.Name, verb)
		}
	}
	app.Status.Symptoms = out
	return active
}

func appVars(app *v1alpha1.AutonomicApp, cs []monitor.Component) map[string]any {
	healthy := 0
	for _, c := range cs {
		if c.Status.Healthy {
			healthy++
		}
	}
	return analyze.AppVars(app, healthy, len(cs))
}

// resumePending finishes intents recorded by an earlier run that stopped before their
// outcome was written (a crash, a lost leader lease). The effector runs again with the
// same record; effectors are idempotent, so the effect happens once.
func (r *AppReconciler) resumePending(ctx context.Context, s *session) error {
	for _, rec := range knowledge.Pending(&s.app.Status) {
		action, target, ok := r.actionOf(s, rec)
		if !ok {
			knowledge.Complete(&s.app.Status, rec.ID, v1alpha1.ResultFailed,
				fmt.Sprintf("The intent could not be resumed: policy %q has no step %d any more.", rec.Policy, rec.Step), s.now)
			continue
		}
		logf.FromContext(ctx).V(1).Info("Carrying on with an unfinished action", "id", rec.ID, "policy", rec.Policy, "step", rec.Step)
		r.execute(ctx, s, rec, action, target)
		resumedMove(s, rec.ID)
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (r *AppReconciler) actionOf(s *session, rec v1alpha1.ActionRecord) (v1alpha1.Action, *monitor.Component, bool) {
	if a, target, ok := r.failoverActionOf(s, rec); ok {
		return a, target, true
	}
	for _, p := range s.view.Spec.Policies {
		if p.Name != rec.Policy || p.Remediate == nil || rec.Step < 1 || int(rec.Step) > len(p.Remediate.Steps) {
			continue
		}
		a := p.Remediate.Steps[rec.Step-1].Action
		if plan.ActionName(a) != rec.Action {
			return v1alpha1.Action{}, nil, false
		}
		return a, s.component(cmp.Or(rec.Component, a.Component())), true
	}
	return v1alpha1.Action{}, nil, false
}

func (s *session) component(name string) *monitor.Component {
	if c, ok := s.childWorkloads[name]; ok {
		return c
	}
	for i := range s.components {
		if s.components[i].Name == name {
			return &s.components[i]
		}
	}
	return nil
}

// runPolicies plans each policy in spec order and carries out what it decides.
func (r *AppReconciler) runPolicies(ctx context.Context, s *session, active map[string]bool) error {
	app := s.app
	prev := map[string]v1alpha1.PolicyStatus{}
	for _, p := range app.Status.Policies {
		prev[p.Name] = p
	}
	out := make([]v1alpha1.PolicyStatus, 0, len(s.view.Spec.Policies))
	for _, pol := range s.view.Spec.Policies {
		old := prev[pol.Name]
		var st v1alpha1.PolicyStatus
		switch {
		case pol.Remediate != nil:
			var err error
			st, err = r.remediate(ctx, s, pol, old, active)
			if err != nil {
				return err
			}
		case pol.Autoscale != nil:
			var err error
			st, err = r.autoscale(ctx, s, pol, old)
			if err != nil {
				return err
			}
		case pol.Failover != nil:
			var err error
			st, err = r.failover(ctx, s, pol, old)
			if err != nil {
				return err
			}
		}
		st.Source = s.merged.Sources[plan.EntryPolicy+"/"+pol.Name]
		if newDecision(old, st) {
			r.Metrics.Decisions.WithLabelValues(decisionLabel(st)).Inc()
		}
		out = append(out, st)
		// Later policies see this one's state (and its ledger entries) in the same pass.
		app.Status.Policies = mergePolicy(app.Status.Policies, st)
	}
	app.Status.Policies = out
	return nil
}

func mergePolicy(list []v1alpha1.PolicyStatus, st v1alpha1.PolicyStatus) []v1alpha1.PolicyStatus {
	for i := range list {
		if list[i].Name == st.Name {
			list[i] = st
			return list
		}
	}
	return append(list, st)
}

// newDecision says whether a policy's status after a pass is a new decision, to be
// counted once: its state or reason changed, or it recorded a new action. A ladder that
// escalates from one step to the next, or an autoscaler that scales again, stays Acting
// for the same reason, and each of those actions is a decision of its own.
func newDecision(old, st v1alpha1.PolicyStatus) bool {
	return st.State != old.State || st.Reason != old.Reason || (st.LastAction != "" && st.LastAction != old.LastAction)
}

func decisionLabel(st v1alpha1.PolicyStatus) string {
	switch st.State {
	case v1alpha1.PolicyHeld:
		return "Held:" + st.Reason
	case v1alpha1.PolicyGaveUp:
		return st.Reason
	case v1alpha1.PolicyActing:
		return "Act"
	case v1alpha1.PolicyWaiting:
		return "Wait"
	}
	return st.Reason
}

// remediate plans one remediation policy and, when it decides to act and the guards
// agree, records the intent, runs the effector and records the result.
func (r *AppReconciler) remediate(ctx context.Context, s *session, pol v1alpha1.Policy, old v1alpha1.PolicyStatus, active map[string]bool) (v1alpha1.PolicyStatus, error) {
	app := s.app
	d := plan.Remediate(plan.RemediationInput{Now: s.now, Policy: pol, State: old, Active: active})
	s.requeueAt(d.NextCheck)
	switch d.Kind {
	case plan.Exhausted, plan.GiveUp:
		if old.State != v1alpha1.PolicyGaveUp || old.Reason != d.Reason {
			r.Recorder.Eventf(app, nil, corev1.EventTypeWarning, d.Reason, "Plan", "Policy %s: %s", pol.Name, d.Message)
		}
		return d.Next, nil
	case plan.Healed:
		r.Recorder.Eventf(app, nil, corev1.EventTypeNormal, plan.ReasonHealed, "Plan", "Policy %s: %s", pol.Name, d.Message)
		return d.Next, nil
	case plan.Act:
	default:
		return d.Next, nil
	}

	if pending := knowledge.Pending(&app.Status); len(pending) > 0 {
		// An earlier intent could not be finished this pass; never stack another on it.
		return old, nil
	}
	res, err := r.act(ctx, s, actInput{Policy: pol.Name, Step: d.Step, Action: *d.Action, Reason: d.Message,
		Acted: func(id string) {
			st := plan.Acted(d, id, s.now)
			st.Source = s.merged.Sources[plan.EntryPolicy+"/"+pol.Name]
			app.Status.Policies = mergePolicy(app.Status.Policies, st)
		}})
	if err != nil {
		return old, err
	}
	if res.Held.Held {
		st := plan.Held(d, res.Held)
		s.requeueAt(res.Held.Until)
		if old.State != st.State || old.Reason != st.Reason {
			r.Recorder.Eventf(app, nil, corev1.EventTypeNormal, "Held"+res.Held.Reason, "Plan", "Policy %s: %s", pol.Name, st.Message)
		}
		return st, nil
	}
	if d.Action.Failover != nil {
		// The named failover policy acts on the demotion; when it ran earlier in this
		// pass, it runs again at once.
		s.requeueAt(s.now)
	}
	// The step's timeout runs from now: when it ends the ladder escalates, whether or not
	// anything else brings the app back (a notify or webhook step changes nothing that
	// is watched; a polled sensor may hold steady).
	s.requeueAt(plan.StepDeadline(d, s.now))
	return plan.Acted(d, res.LastID, s.now), nil
}

// actInput is one decided action.
type actInput struct {
	Policy string
	Step   int32
	Action v1alpha1.Action
	// Reason says why, in a sentence, for the ledger.
	Reason string
	// Acted, when set, puts the policy's state after the action (its step acted, with the
	// id of the last record) into status, so that it is written with the intents, in the
	// same status write. A manager that dies between the intent and the outcome then finds
	// both the Pending record and the step it belongs to: it finishes the record and waits
	// out the step, instead of acting on the step again under a new id.
	Acted func(lastID string)
}

// actResult says what act did.
type actResult struct {
	// Held is set when a guard held the action back; nothing was recorded.
	Held plan.Verdict
	// LastID is the id of the last record written.
	LastID string
	// RecordOnly is true when the action was only recorded (DryRun).
	RecordOnly bool
}

// act carries out one decided action under the ledger's rules: it resolves the targets
// (a component, or each component for "*"), fixes each target's objects (Prepare),
// checks the guards, records one intent per target and writes them to status before
// anything changes, then runs the effectors and records their outcomes. In DryRun the
// records are written as Skipped and nothing runs.
func (r *AppReconciler) act(ctx context.Context, s *session, in actInput) (actResult, error) {
	var ready []preparedTarget
	var firstErr error
	for _, t := range s.targets(in.Action) {
		// The id is fixed before Prepare, so an effector can name what it will create
		// after it (runJob's Job) in the record's target and objects.
		id := knowledge.NewID(in.Policy, s.now)
		p, err := r.Effectors.Prepare(execute.Request{App: s.app, Action: in.Action, Target: t,
			Record: &v1alpha1.ActionRecord{ID: id, Time: metav1.NewTime(s.now)}})
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		ready = append(ready, preparedTarget{target: t, p: p, id: id})
	}
	disruptive := slices.ContainsFunc(ready, func(p preparedTarget) bool { return p.p.Disruptive })
	verdict := plan.CheckGuards(r.guardInput(s), disruptive, s.now)
	if verdict.Held {
		return actResult{Held: verdict}, nil
	}
	if na := nodeAction(in.Action); na != nil && len(ready) > 0 {
		var candidates []string
		for _, p := range ready {
			candidates = append(candidates, p.p.Objects...)
		}
		v, err := r.nodeGuard(ctx, s, na, candidates)
		if err != nil {
			return actResult{}, err
		}
		if v.Held {
			return actResult{Held: v}, nil
		}
	}

	return r.carryOut(ctx, s, in, verdict, ready, firstErr)
}

// preparedTarget is one target of a decided action with what Prepare fixed for it, and
// the id its record will have (fixed before Prepare, so an effector can name what it
// creates after it).
type preparedTarget struct {
	target *monitor.Component
	p      execute.Prepared
	id     string
}

// carryOut records the intents of a decided action that the guards let through and
// carries them out under the ledger's rules: one record per prepared target, all written
// to status before anything changes, then the effectors and their outcomes. In DryRun the
// records are written as Skipped and nothing runs (the guards' verdict says RecordOnly).
// With no target prepared, the action is
// recorded once as Failed with prepareErr (so a ladder moves on, and a failover waits
// before it tries again).
func (r *AppReconciler) carryOut(ctx context.Context, s *session, in actInput, verdict plan.Verdict, ready []preparedTarget, prepareErr error) (actResult, error) {
	app := s.app
	who := fmt.Sprintf("Policy %s", in.Policy)
	if in.Step > 0 {
		who = fmt.Sprintf("Policy %s step %d", in.Policy, in.Step)
	}
	detected := metav1.NewTime(s.triggeredAt)
	newRecord := func(component string) v1alpha1.ActionRecord {
		return v1alpha1.ActionRecord{
			ID: knowledge.NewID(in.Policy, s.now), Time: metav1.NewTime(s.now), Policy: in.Policy, Step: in.Step,
			Action: plan.ActionName(in.Action), Component: component, Reason: knowledge.Truncate(in.Reason, 1024),
			Result: v1alpha1.ResultPending, DryRun: verdict.RecordOnly, DetectedAt: &detected,
		}
	}
	if len(ready) == 0 {
		// Nothing to act on: the step is recorded as failed, so the ladder moves on.
		if prepareErr == nil {
			prepareErr = fmt.Errorf("the action has no target")
		}
		rec := newRecord(in.Action.Component())
		rec.Result, rec.Message, rec.FinishedAt = v1alpha1.ResultFailed, knowledge.Truncate(prepareErr.Error(), 1024), &rec.Time
		knowledge.Record(&app.Status, rec)
		r.countAction(rec)
		r.Recorder.Eventf(app, nil, corev1.EventTypeWarning, "ActionFailed", rec.Action, "%s: %s", who, prepareErr.Error())
		return actResult{LastID: rec.ID}, nil
	}

	recs := make([]v1alpha1.ActionRecord, 0, len(ready))
	for _, p := range ready {
		rec := newRecord(componentName(p.target))
		if p.id != "" {
			rec.ID = p.id
		}
		rec.Target, rec.Objects, rec.Replicas = p.p.Target, p.p.Objects, p.p.Replicas
		if rec.DryRun {
			rec.Result, rec.Message, rec.FinishedAt = v1alpha1.ResultSkipped, "DryRun: the action was decided and recorded; nothing was changed.", &rec.Time
			r.countAction(rec)
			r.Recorder.Eventf(app, nil, corev1.EventTypeNormal, "DryRun", rec.Action, "%s would run %s on %s: %s",
				who, rec.Action, rec.Target, in.Reason)
		}
		knowledge.Record(&app.Status, rec)
		recs = append(recs, rec)
	}
	last := recs[len(recs)-1].ID
	if recs[0].DryRun {
		return actResult{LastID: last, RecordOnly: true}, nil
	}

	// Knowledge first: the intents, and the step they act on, are durable before anything
	// changes.
	if in.Acted != nil {
		in.Acted(last)
	}
	if err := s.flush(ctx); err != nil {
		return actResult{}, err
	}
	if v := os.Getenv(CrashAfterIntentEnv); v == "*" || v == recs[0].Action {
		logf.FromContext(ctx).Info("Exiting after recording an intent, as the test hook asks", "id", recs[0].ID)
		os.Exit(3)
	}
	r.Metrics.DetectToAct.Observe(r.Clock.Since(s.triggeredAt).Seconds())
	for i, rec := range recs {
		r.execute(ctx, s, rec, in.Action, ready[i].target)
	}
	return actResult{LastID: last}, nil
}

// targets resolves the component an action names: nil for actions without one, each
// workload component for "*" (for restartPods of unhealthy pods, those with unhealthy
// pods), else the named component.
func (s *session) targets(a v1alpha1.Action) []*monitor.Component {
	name := a.Component()
	if name == "" {
		return []*monitor.Component{nil}
	}
	if name != "*" {
		return []*monitor.Component{s.component(name)}
	}
	var all, sick []*monitor.Component
	for i := range s.components {
		c := &s.components[i]
		if c.Ref == nil {
			continue
		}
		all = append(all, c)
		if _, unhealthy, _ := monitor.HealthyPods(c); unhealthy > 0 {
			sick = append(sick, c)
		}
	}
	if a.RestartPods != nil && a.RestartPods.Pods != v1alpha1.PodsAll && len(sick) > 0 {
		return sick
	}
	return all
}

func componentName(c *monitor.Component) string {
	if c == nil {
		return ""
	}
	return c.Name
}

// execute runs an effector for a recorded intent and records its outcome.
func (r *AppReconciler) execute(ctx context.Context, s *session, rec v1alpha1.ActionRecord, action v1alpha1.Action, target *monitor.Component) {
	recCopy := rec
	req := execute.Request{App: s.app, Record: &recCopy, Action: action, Target: target}
	out := r.Effectors.Execute(ctx, req)
	if out.Result == v1alpha1.ResultPending {
		// A long action (a Job, a drain) reports progress: the record stays Pending with
		// the message (unchanged progress writes nothing), and the next reconcile runs the
		// effector again. A watch on what it changed (the Job) brings the app back when it
		// finishes; the deadline is when it fails by its timeout.
		knowledge.Progress(&s.app.Status, rec.ID, out.Message)
		if t := execute.DrainRetryAt(req, r.Clock.Now()); !t.IsZero() {
			// A drain polls the budgets that refused it; nothing else wakes the app.
			s.requeueAt(t)
		} else if d := execute.PendingDeadline(req); !d.IsZero() {
			s.requeueAt(d)
		} else {
			s.requeueAt(r.Clock.Now().Add(pendingRecheck))
		}
		return
	}
	knowledge.Complete(&s.app.Status, rec.ID, out.Result, out.Message, r.Clock.Now())
	rec.Result = out.Result
	r.countAction(rec)
	logf.FromContext(ctx).Info("Action finished", "id", rec.ID, "policy", rec.Policy, "step", rec.Step,
		"action", rec.Action, "target", rec.Target, "result", out.Result, "message", out.Message)
}

func (r *AppReconciler) countAction(rec v1alpha1.ActionRecord) {
	r.Metrics.Actions.WithLabelValues(rec.Policy, rec.Action, string(rec.Result)).Inc()
}

// guardInput gathers what the guards read: mode, pause, the ledger, the pods.
func (r *AppReconciler) guardInput(s *session) plan.GuardInput {
	app := s.app
	g := plan.GuardInput{
		Mode:         app.Spec.Mode,
		LastActionAt: knowledge.LastActionAt(&app.Status),
		ActionTimes:  knowledge.ActionTimes(&app.Status),
	}
	_, g.PausedAnnotation = app.Annotations[v1alpha1.PausedAnnotation]
	g.Storm = r.Storm.engaged()
	g.StaleCache, g.StaleCacheRecheck = r.cacheHealth.stale()
	if gd := s.view.Spec.Guards; gd != nil {
		g.Cooldown = durationOf(gd.Cooldown)
		g.MaxActions = gd.MaxActions
		g.MaxUnhealthyPods = gd.MaxUnhealthyPods
	}
	for i := range s.components {
		total, unhealthy, terminating := monitor.HealthyPods(&s.components[i])
		g.TotalPods += total
		g.UnhealthyPods += unhealthy
		g.InFlightPods += terminating
	}
	return g
}

// finishStatus copies the app's summary (plan.Summarize: its health, phase and
// conditions) into status, and sets the observed generation.
func (r *AppReconciler) finishStatus(s *session) {
	app := s.app
	st := &app.Status
	in := plan.SummaryInput{
		Now:                  s.now,
		Mode:                 app.Spec.Mode,
		MinHealthyComponents: minHealthyComponents(app),
		Components:           componentHealth(s.components),
		Policies:             s.view.Spec.Policies,
		PolicyStatus:         st.Policies,
		Symptoms:             st.Symptoms,
		Sensors:              st.Sensors,
		CappedTimeouts:       r.cappedTimeouts(s.view.Spec.Sensors),
		Storm:                r.Storm.state(context.Background()),
	}
	_, in.PausedAnnotation = app.Annotations[v1alpha1.PausedAnnotation]
	if ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); ready != nil {
		in.Ready = &plan.Condition{Type: ready.Type, Status: ready.Status, Reason: ready.Reason, Message: ready.Message,
			Since: ready.LastTransitionTime.Time}
	}
	sum := plan.Summarize(in)
	for _, c := range sum.Conditions {
		copyCondition(app, c)
	}
	for _, typ := range sum.Absent {
		meta.RemoveStatusCondition(&st.Conditions, typ)
	}
	st.Phase = sum.Phase
	st.ObservedGeneration = app.Generation
}

func (r *AppReconciler) setCondition(s *session, typ string, ok bool, reason, msg string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	copyCondition(s.app, plan.Condition{Type: typ, Status: status, Reason: reason, Message: msg, Since: s.now})
}

// copyCondition sets a decided condition in the app's status, for its generation, with
// the message cut to the API's bound.
func copyCondition(app *v1alpha1.AutonomicApp, c plan.Condition) {
	meta.SetStatusCondition(&app.Status.Conditions, metav1.Condition{
		Type: c.Type, Status: c.Status, Reason: c.Reason, Message: knowledge.Truncate(c.Message, 32768),
		ObservedGeneration: app.Generation, LastTransitionTime: metav1.NewTime(c.Since),
	})
}
