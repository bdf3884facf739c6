package controllers

import (
	"context"
	"fmt"
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
	"github.com/homeostat-dev/homeostat/internal/leader"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
	"github.com/homeostat-dev/homeostat/internal/rights"
	"github.com/homeostat-dev/homeostat/internal/text"
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
	// Rights says as whom each app acts and authorizes its actions; see rights.Checker.
	// Nil: apps that name no ServiceAccount act as the manager, and an app that names one
	// is refused everything.
	Rights  *rights.Checker
	Metrics *Metrics
	// SensorGauges exports every app's polled and component sensors as gauges
	// (homeostat_sensor_value, homeostat_component_sensor, homeostat_component_phase);
	// false exports none of them (--sensor-gauges=false).
	SensorGauges bool
	// Storm is the cluster-wide storm breaker.
	Storm *stormBreaker
	// NodeAdmin is the cluster admin's policy on node actions; the zero value restricts
	// nothing.
	NodeAdmin plan.NodeAdmin
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
	// Leader lets reconciles through only while this replica holds the Lease; nil
	// always does.
	Leader *leader.Gate
}

// SetupWithManager watches apps, their workloads and pods, and child apps. Every watch
// maps a change to exactly the apps that name it, through the cache indexes.
func (r *AppReconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.AutonomicApp{}, indexHeldByNodes, heldByNodesIndex); err != nil {
		return fmt.Errorf("indexing apps by the node guard's hold: %w", err)
	}
	b := ctrl.NewControllerManagedBy(mgr).
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
		Named("autonomicapp")
	if r.Leader != nil {
		b = b.WatchesRawSource(leadershipSource{gate: r.Leader, list: r.leadershipRequests})
	}
	c, err := b.Build(gate(r.Leader, r))
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
		// after the write, so the worker is free meanwhile; by now it is usually over. A
		// cache that does not catch up fails the request, which is retried with backoff.
		cached := &v1alpha1.AutonomicApp{ObjectMeta: metav1.ObjectMeta{Namespace: req.Namespace, Name: req.Name}}
		if err := waitForCacheToBeUpToDate(ctx, r.Client, r.Clock, cached, rv.(string)); err != nil {
			return ctrl.Result{}, err
		}
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
	if sub, ok := r.Rights.SubjectOf(app); ok {
		s.subject = &sub
	}
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
	// scales holds, per autoscale policy that intends a scale in this pass, the
	// recommender's decision, to remember the scale event once it is carried out.
	scales map[string]plan.AutoscaleDecision
	// subject is the ServiceAccount the app acts as; nil when it acts as the manager.
	subject *rights.Subject
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

// leadershipRequests are the apps a replica that has just become the leader reconciles:
// every app in the cache, and every app it still remembers, so that one deleted while it
// stood by (its delete event dropped by the gate) is found gone and forgotten.
func (r *AppReconciler) leadershipRequests(ctx context.Context) []reconcile.Request {
	out := appRequests(ctx, r.Client)
	seen := make(map[types.NamespacedName]bool, len(out))
	for _, req := range out {
		seen[req.NamespacedName] = true
	}
	remembered := r.Storm.known()
	if r.Poller != nil {
		remembered = append(remembered, r.Poller.Apps()...)
	}
	remembered = append(remembered, r.Metrics.seriesApps()...)
	for _, k := range remembered {
		if !seen[k] {
			seen[k] = true
			out = append(out, reconcile.Request{NamespacedName: k})
		}
	}
	return out
}

func (r *AppReconciler) forget(key types.NamespacedName) {
	r.triggers.forget(key)
	r.written.Delete(key)
	r.Storm.forget(context.Background(), key)
	r.autoscalers.forget(key)
	if r.Poller != nil {
		r.Poller.Forget(key)
	}
	r.Metrics.forgetSensorSeries(key)
	r.Metrics.forgetStatusSeries(key)
}

// reconcile is the loop: monitor, analyze, plan, execute, and the status that explains it.
func (r *AppReconciler) reconcile(ctx context.Context, s *session) (time.Time, error) {
	app := s.app
	st := &app.Status

	// Knowledge: the app's own healing and the shared policies that select it.
	shared, err := monitor.SharedPolicies(ctx, r.Client, app)
	if err != nil {
		return time.Time{}, err
	}
	s.view, s.merged = plan.MergedView(app, shared)
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
	key := types.NamespacedName{Namespace: app.Namespace, Name: app.Name}
	if r.SensorGauges {
		r.Metrics.exportComponents(key, components)
	}
	// The storm breaker counts an app only when its health can be judged.

	// Validate what CEL in the CRD cannot: symptom expressions and cross references.
	if errs := analyze.ValidateMerged(s.view, s.merged.PolicyFromShared); len(errs) > 0 {
		r.Storm.observe(ctx, key, notJudged)
		r.setCondition(s, v1alpha1.ConditionReady, false, v1alpha1.ReasonInvalidSpec,
			"The spec is invalid and no policy runs until it is fixed: "+validationMessage(errs))
		r.finishStatus(s)
		return s.next, nil
	}
	if herr := analyze.CheckHierarchy(app, r.lookupApp(ctx, app.Namespace)); herr != nil {
		r.Storm.observe(ctx, key, notJudged)
		r.setCondition(s, v1alpha1.ConditionReady, false, herr.Reason, herr.Error())
		r.finishStatus(s)
		return s.next, nil
	}
	if missing := missingComponents(components); missing != "" {
		r.Storm.observe(ctx, key, notJudged)
		r.setCondition(s, v1alpha1.ConditionReady, false, v1alpha1.ReasonComponentNotFound, missing)
	} else {
		r.Storm.observe(ctx, key, judgedAs(rollup(app, components).Healthy))
		r.setCondition(s, v1alpha1.ConditionReady, true, v1alpha1.ReasonReconciled, "Every component resolves and every symptom compiles.")
	}

	// Analyze.
	active := r.analyze(s)
	if held, err := r.checkServiceAccount(ctx, s); held || err != nil {
		r.finishStatus(s)
		return s.next, err
	}

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

// sensorStatus reports the last reading of every declared sensor, in spec order, and
// exports the available ones as gauges.
func (r *AppReconciler) sensorStatus(s *session) {
	key := types.NamespacedName{Namespace: s.app.Namespace, Name: s.app.Name}
	readings := r.readings(key)
	if r.SensorGauges {
		r.Metrics.exportSensors(key, s.view.Spec.Sensors, readings)
	}
	out := make([]v1alpha1.SensorStatus, 0, len(s.view.Spec.Sensors))
	for _, sn := range s.view.Spec.Sensors {
		st := v1alpha1.SensorStatus{Name: sn.Name, Error: "Not polled yet."}
		if rd, ok := readings[sn.Name]; ok {
			st = rd.Status(sn.Name)
		}
		st.Source = s.merged.Sources[plan.EntrySensor+"/"+sn.Name]
		out = append(out, st)
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
		next.Source = s.merged.Sources[plan.EntrySymptom+"/"+sym.Name]
		s.requeueAt(check)
		out = append(out, next)
		if next.Active {
			active[sym.Name] = true
		}
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

// finishStatus copies the app's summary (plan.Summarize: its health, phase and
// conditions) into status, sets the observed generation, and exports the status gauges.
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
		Overrides:            s.merged.Overrides,
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
	r.Metrics.exportStatus(types.NamespacedName{Namespace: app.Namespace, Name: app.Name}, st)
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
		Type: c.Type, Status: c.Status, Reason: c.Reason, Message: text.Truncate(c.Message, 32768),
		ObservedGeneration: app.Generation, LastTransitionTime: metav1.NewTime(c.Since),
	})
}
