package cli

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/knowledge"
)

// timelineInput is what the gatherer read for one app: the app, its components'
// workloads, and the namespace's ReplicaSets, pods and Events, each as far as the user
// may read it.
type timelineInput struct {
	App *v1alpha1.AutonomicApp
	// Workloads are the components' workloads that could be read: *appsv1.Deployment,
	// *appsv1.StatefulSet or *appsv1.ReplicaSet.
	Workloads []client.Object
	// ReplicaSets and Pods are the namespace's, metadata only.
	ReplicaSets []metav1.PartialObjectMetadata
	Pods        []metav1.PartialObjectMetadata
	// Events and CoreEvents are the namespace's Events as the two APIs serve them; one
	// Event may be in both.
	Events     []eventsv1.Event
	CoreEvents []corev1.Event
	// Warnings say what could not be read.
	Warnings []string
}

// homeostatSource is the source of what Homeostat recorded about the app.
const homeostatSource = "Homeostat"

// homeostatReporter is the reporting controller of Homeostat's Events.
const homeostatReporter = "homeostat"

// The Event reasons the timeline recognises in Homeostat's Events on the app: a
// symptom's change, an action's result and an action's outcome. The controllers emit them.
const (
	reasonSymptomActive  = "SymptomBecameActive"
	reasonSymptomCleared = "SymptomCleared"
	reasonDryRun         = "DryRun"
)

// rank orders the entries of one second, cause before effect. The status keeps times to
// the second while Events keep microseconds, so within a second the order is by rank,
// then by time, then as gathered.
type rank int

const (
	// rankCause: a workload's Warning Events (a container crashing) come before
	// Homeostat notices them.
	rankCause rank = iota
	rankSymptom
	rankCondition
	// rankOutcome: an earlier action is judged before the next step acts.
	rankOutcome
	rankAction
	// rankHomeostat: Homeostat's other Events (a plan, an action in progress).
	rankHomeostat
	// rankEffect: a workload's Normal Events (pods created, a ReplicaSet scaled) follow
	// the action that caused them.
	rankEffect
)

// timelineItem is an entry with what orders it: at is when it happened as precisely as
// is known, which for a record may be finer than its time (see intentTime).
type timelineItem struct {
	TimelineEntry
	at   time.Time
	rank rank
	seq  int
}

// timelineEvent is an Event as either API serves it.
type timelineEvent struct {
	key                 string
	regarding           corev1.ObjectReference
	typ, reason, note   string
	action, reporter    string
	first, last         time.Time
	count               int32
	actionID, symptom   string
	used                bool
	regardsApp, isChild bool
}

// actionIDPattern finds the action id in Homeostat's Event notes: "(action <id>)" or
// "(restartPods on Deployment/web, action <id>)".
var actionIDPattern = regexp.MustCompile(`\baction ([^\s(),]+)\)`)

// symptomNotePattern reads the symptom of a SymptomBecameActive or SymptomCleared note.
var symptomNotePattern = regexp.MustCompile(`^Symptom (\S+) (?:became active|cleared)\.$`)

// buildTimeline joins what in holds into the entries of the window [since, ...], oldest
// first; with limit > 0 only the latest limit entries are kept.
func buildTimeline(in timelineInput, now, since time.Time, limit int) TimelineResult {
	app := in.App
	res := TimelineResult{Namespace: app.Namespace, App: app.Name, Now: now.UTC(), Since: since.UTC(),
		Warnings: in.Warnings, Entries: []TimelineEntry{}}
	b := &timelineBuilder{}
	events := timelineEvents(in)
	classifyAppEvents(app, events)

	// The app's status: symptoms, conditions, then the history, oldest first.
	for _, s := range app.Status.Symptoms {
		b.symptom(s, events)
	}
	for _, c := range app.Status.Conditions {
		b.condition(c)
	}
	for i := len(app.Status.History) - 1; i >= 0; i-- {
		b.record(app.Status.History[i], events)
	}

	// The Events: the app's that no status entry took, then its components'.
	matchers := componentMatchers(in)
	children := map[string]string{}
	for _, c := range app.Spec.Components {
		if c.AppRef != nil {
			children[c.AppRef.Name] = c.Name
		}
	}
	for _, e := range events {
		switch {
		case e.used:
		case e.regardsApp:
			b.appEvent(app, e)
		case refIsKind(e.regarding, "AutonomicApp", v1alpha1.GroupVersion.Group):
			if comp, ok := children[e.regarding.Name]; ok {
				b.objectEvent(e, comp)
			}
		default:
			if comp := ownerOf(matchers, e.regarding); comp != "" {
				b.objectEvent(e, comp)
			}
		}
	}

	b.snapToIntents()
	items := slices.DeleteFunc(b.items, func(it timelineItem) bool {
		last := it.Time
		if it.LastTime != nil {
			last = *it.LastTime
		}
		return last.Before(since)
	})
	slices.SortStableFunc(items, func(a, b timelineItem) int {
		return cmp.Or(
			a.at.Truncate(time.Second).Compare(b.at.Truncate(time.Second)),
			cmp.Compare(a.rank, b.rank),
			a.at.Compare(b.at),
			cmp.Compare(a.seq, b.seq))
	})
	if limit > 0 && len(items) > limit {
		res.Omitted = len(items) - limit
		items = items[res.Omitted:]
	}
	for _, it := range items {
		res.Entries = append(res.Entries, it.TimelineEntry)
	}
	return res
}

// timelineBuilder collects the entries in the order they are found.
type timelineBuilder struct {
	items []timelineItem
	// intents are the precise times of the records' intents.
	intents []time.Time
}

func (b *timelineBuilder) add(e TimelineEntry, r rank) *timelineItem {
	e.Time = e.Time.UTC()
	if e.LastTime != nil {
		t := e.LastTime.UTC()
		e.LastTime = &t
	}
	b.items = append(b.items, timelineItem{TimelineEntry: e, at: e.Time, rank: r, seq: len(b.items)})
	return &b.items[len(b.items)-1]
}

// snapToIntents orders a symptom's Event with the intent it triggered. The manager takes
// the time once per reconcile, stamps the intent with it and emits the symptom's Event
// a little later, so across a second's boundary the Event would follow its intent: a
// symptom's Event less than a second after an intent is ordered at the intent's time,
// and before it by rank.
func (b *timelineBuilder) snapToIntents() {
	for i := range b.items {
		it := &b.items[i]
		if it.Kind != TimelineSymptom || it.Source != homeostatSource {
			continue
		}
		for _, t := range b.intents {
			if !it.at.Before(t) && it.at.Before(t.Add(time.Second)) {
				it.at = t
				break
			}
		}
	}
}

// intentTime is when the intent of r was recorded, to the millisecond the manager encodes
// in the id (knowledge.NewID: <policy>-<unix ms in base 36>-<random>), else its time.
func intentTime(r v1alpha1.ActionRecord) time.Time {
	parts := strings.Split(r.ID, "-")
	if len(parts) >= 3 {
		if ms, err := strconv.ParseInt(parts[len(parts)-2], 36, 64); err == nil {
			t := time.UnixMilli(ms).UTC()
			if !t.Before(r.Time.Time) && t.Before(r.Time.Add(time.Second)) {
				return t
			}
		}
	}
	return r.Time.UTC()
}

// symptom adds a symptom's last change from status, unless its Event says it already.
func (b *timelineBuilder) symptom(s v1alpha1.SymptomStatus, events []*timelineEvent) {
	if s.Since == nil || s.Since.IsZero() {
		return
	}
	reason, typ, verb := reasonSymptomCleared, corev1.EventTypeNormal, "cleared"
	if s.Active {
		reason, typ, verb = reasonSymptomActive, corev1.EventTypeWarning, "became active"
	}
	for _, e := range events {
		if e.regardsApp && e.symptom == s.Name && e.reason == reason && nearEvent(s.Since.Time, e.first, e.last) {
			return
		}
	}
	b.add(TimelineEntry{Time: s.Since.Time, Source: homeostatSource, Kind: TimelineSymptom, Type: typ, Reason: reason,
		Message: "Symptom " + s.Name + " " + verb + ".", Symptom: s.Name}, rankSymptom)
}

// condition adds a condition's last transition.
func (b *timelineBuilder) condition(c metav1.Condition) {
	if c.LastTransitionTime.IsZero() {
		return
	}
	typ := corev1.EventTypeNormal
	if !conditionIsGood(c.Type, c.Status) {
		typ = corev1.EventTypeWarning
	}
	b.add(TimelineEntry{Time: c.LastTransitionTime.Time, Source: homeostatSource, Kind: TimelineCondition, Type: typ,
		Reason: c.Reason, Message: c.Message, Condition: &TimelineConditionChange{Type: c.Type, Status: string(c.Status)}}, rankCondition)
}

// conditionIsGood is true when a condition of the app is as a healthy app has it.
func conditionIsGood(typ string, status metav1.ConditionStatus) bool {
	switch typ {
	case v1alpha1.ConditionReady, v1alpha1.ConditionHealthy, v1alpha1.ConditionSensorsAvailable:
		return status == metav1.ConditionTrue
	case v1alpha1.ConditionNeedsAttention, v1alpha1.ConditionStalled:
		return status != metav1.ConditionTrue
	}
	return true
}

// record adds an action record: its intent with its result, and its outcome once judged.
// The Events that say the same (the action's result, the verdict) are taken by it; the
// verdict's Event lends it its message, which says why.
func (b *timelineBuilder) record(r v1alpha1.ActionRecord, events []*timelineEvent) {
	resultReason := "Action" + string(cmp.Or(r.Result, v1alpha1.ResultPending))
	eventReason := resultReason
	if r.Result == v1alpha1.ResultSkipped {
		eventReason = reasonDryRun
	}
	who := recordActor(r)
	for _, e := range events {
		if !e.regardsApp || !isResultReason(e.reason) {
			continue
		}
		switch {
		case e.actionID == r.ID && (r.Result == v1alpha1.ResultPending || r.Result == ""):
			// The status has not caught up with the effector yet: its Event has the result.
			e.used, resultReason = true, e.reason
		case e.reason != eventReason:
		case e.actionID == r.ID,
			e.actionID == "" && e.action == r.Action && strings.HasPrefix(e.note, who) && nearEvent(r.Time.Time, e.first, e.last):
			e.used = true
		}
	}
	typ := corev1.EventTypeNormal
	if resultReason == "ActionFailed" || resultReason == "ActionForbidden" {
		typ = corev1.EventTypeWarning
	}
	it := b.add(TimelineEntry{Time: r.Time.Time, Source: homeostatSource, Kind: TimelineAction, Type: typ, Reason: resultReason,
		Message: actionMessage(r), Component: r.Component, Action: r.Action, ActionID: r.ID}, rankAction)
	it.at = intentTime(r)
	b.intents = append(b.intents, it.at)

	if r.Outcome == "" || r.OutcomeAt == nil {
		return
	}
	if r.Outcome == v1alpha1.OutcomeUnknown && r.Result != v1alpha1.ResultSucceeded && r.Result != v1alpha1.ResultPending {
		return // it changed nothing: there was nothing to judge, and its result says so
	}
	reason := knowledge.OutcomeEventReason(r.Outcome)
	typ = corev1.EventTypeNormal
	if r.Outcome == v1alpha1.OutcomeIneffective {
		typ = corev1.EventTypeWarning
	}
	msg := who + ": " + r.Action + " (action " + r.ID + ") is " + knowledge.OutcomeWord(r.Outcome) + "."
	for _, e := range events {
		if e.regardsApp && e.reason == reason && e.actionID == r.ID {
			e.used, msg = true, e.note
		}
	}
	rk := rankOutcome
	if r.OutcomeAt.Truncate(time.Second).Equal(r.Time.Truncate(time.Second)) {
		rk = rankAction // judged the second it acted: after its action
	}
	b.add(TimelineEntry{Time: r.OutcomeAt.Time, Source: homeostatSource, Kind: TimelineOutcome, Type: typ, Reason: reason,
		Message: msg, Component: r.Component, Action: r.Action, ActionID: r.ID}, rk)
}

// appEvent adds an Event on the app that no status entry took.
func (b *timelineBuilder) appEvent(app *v1alpha1.AutonomicApp, e *timelineEvent) {
	entry := e.entry()
	if e.reporter != homeostatReporter {
		entry.Source = "AutonomicApp/" + app.Name
	} else {
		entry.Source = homeostatSource
	}
	r := rankHomeostat
	switch {
	case e.symptom != "":
		entry.Kind, entry.Symptom, r = TimelineSymptom, e.symptom, rankSymptom
	case isOutcomeReason(e.reason) && e.actionID != "":
		entry.Kind, r = TimelineOutcome, rankOutcome
	case isResultReason(e.reason):
		entry.Kind, r = TimelineAction, rankAction
	}
	if e.actionID != "" || entry.Kind == TimelineAction {
		entry.Action, entry.ActionID = e.action, e.actionID
	}
	b.add(entry, r)
}

// objectEvent adds an Event on a component's workload, ReplicaSet, pod or child app.
func (b *timelineBuilder) objectEvent(e *timelineEvent, component string) {
	entry := e.entry()
	entry.Source = e.regarding.Kind + "/" + e.regarding.Name
	entry.Component = component
	r := rankEffect
	if e.typ == corev1.EventTypeWarning {
		r = rankCause
	}
	b.add(entry, r)
}

func (e *timelineEvent) entry() TimelineEntry {
	entry := TimelineEntry{Time: e.first, Kind: TimelineEvent, Type: cmp.Or(e.typ, corev1.EventTypeNormal), Reason: e.reason, Message: e.note}
	if e.count > 1 {
		last := e.last
		entry.LastTime, entry.Count = &last, e.count
	}
	return entry
}

// timelineEvents merges the two APIs' views of the namespace's Events: an Event is the
// same object in both, with one uid.
func timelineEvents(in timelineInput) []*timelineEvent {
	var out []*timelineEvent
	seen := map[string]bool{}
	add := func(e *timelineEvent) {
		if seen[e.key] {
			return
		}
		seen[e.key] = true
		if e.last.Before(e.first) {
			e.last = e.first
		}
		e.count = max(e.count, 1)
		out = append(out, e)
	}
	for i := range in.Events {
		add(newTimelineEvent(&in.Events[i]))
	}
	for i := range in.CoreEvents {
		ev := asEventsV1(&in.CoreEvents[i])
		add(newTimelineEvent(&ev))
	}
	return out
}

// newTimelineEvent is an Event as the timeline reads it: from its series when it
// repeated, else from its count.
func newTimelineEvent(ev *eventsv1.Event) *timelineEvent {
	e := &timelineEvent{
		key:       timelineEventKey(ev.UID, ev.Namespace, ev.Name),
		regarding: ev.Regarding,
		typ:       ev.Type, reason: ev.Reason, note: ev.Note, action: ev.Action,
		reporter: cmp.Or(ev.ReportingController, ev.DeprecatedSource.Component),
		first:    firstNonZero(ev.EventTime.Time, ev.DeprecatedFirstTimestamp.Time, ev.CreationTimestamp.Time),
		count:    1,
	}
	e.last = e.first
	switch {
	case ev.Series != nil:
		e.last, e.count = ev.Series.LastObservedTime.Time, ev.Series.Count
	case ev.DeprecatedCount > 1:
		e.last, e.count = ev.DeprecatedLastTimestamp.Time, ev.DeprecatedCount
	}
	return e
}

// asEventsV1 is a core/v1 Event in events.k8s.io/v1's fields, as the API server maps
// one to the other. A core Event's first time is its firstTimestamp, which events.k8s.io
// keeps as deprecatedFirstTimestamp and prefers eventTime to: put first what core prefers.
func asEventsV1(ev *corev1.Event) eventsv1.Event {
	out := eventsv1.Event{
		ObjectMeta: ev.ObjectMeta, Regarding: ev.InvolvedObject,
		Type: ev.Type, Reason: ev.Reason, Note: ev.Message, Action: ev.Action,
		ReportingController: ev.ReportingController, DeprecatedSource: ev.Source,
		EventTime:                metav1.MicroTime{Time: firstNonZero(ev.FirstTimestamp.Time, ev.EventTime.Time)},
		DeprecatedFirstTimestamp: ev.FirstTimestamp, DeprecatedLastTimestamp: ev.LastTimestamp, DeprecatedCount: ev.Count,
	}
	if ev.Series != nil {
		out.Series = &eventsv1.EventSeries{Count: ev.Series.Count, LastObservedTime: ev.Series.LastObservedTime}
	}
	return out
}

func timelineEventKey(uid types.UID, ns, name string) string {
	if uid != "" {
		return string(uid)
	}
	return ns + "/" + name
}

func firstNonZero(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// classifyAppEvents marks the Events on the app, and reads the action id and symptom
// Homeostat's notes name.
func classifyAppEvents(app *v1alpha1.AutonomicApp, events []*timelineEvent) {
	for _, e := range events {
		r := e.regarding
		if !refIsKind(r, "AutonomicApp", v1alpha1.GroupVersion.Group) || r.Name != app.Name ||
			(r.Namespace != "" && r.Namespace != app.Namespace) || (r.UID != "" && app.UID != "" && r.UID != app.UID) {
			continue
		}
		e.regardsApp = true
		if e.reporter != homeostatReporter {
			continue
		}
		if m := actionIDPattern.FindStringSubmatch(e.note); m != nil {
			e.actionID = m[1]
		}
		if e.reason == reasonSymptomActive || e.reason == reasonSymptomCleared {
			if m := symptomNotePattern.FindStringSubmatch(e.note); m != nil {
				e.symptom = m[1]
			}
		}
	}
}

// refIsKind is true when ref is of kind in group; a reference without an apiVersion is
// taken at its kind.
func refIsKind(ref corev1.ObjectReference, kind, group string) bool {
	if ref.Kind != kind {
		return false
	}
	if ref.APIVersion == "" {
		return true
	}
	g, _, found := strings.Cut(ref.APIVersion, "/")
	if !found {
		g = "" // the core group: "v1"
	}
	return g == group
}

// componentMatchers are the matchers of the components that name a workload.
func componentMatchers(in timelineInput) []*workloadMatcher {
	var out []*workloadMatcher
	for _, c := range in.App.Spec.Components {
		if c.WorkloadRef == nil {
			continue
		}
		var obj client.Object
		for _, w := range in.Workloads {
			if w.GetName() == c.WorkloadRef.Name && kindOf(w) == c.WorkloadRef.Kind {
				obj = w
			}
		}
		out = append(out, newWorkloadMatcher(c, obj, in.ReplicaSets, in.Pods))
	}
	return out
}

// ownerOf is the component whose workload, ReplicaSet or pod ref is, or "".
func ownerOf(ms []*workloadMatcher, ref corev1.ObjectReference) string {
	for _, m := range ms {
		switch {
		case refIsKind(ref, m.kind, "apps") && ref.Name == m.name:
			if ref.UID == "" || m.uid == "" || ref.UID == m.uid {
				return m.component
			}
		case refIsKind(ref, "ReplicaSet", "apps") && m.ownsReplicaSet(ref.Name):
			return m.component
		case refIsKind(ref, "Pod", "") && m.ownsPod(ref.Name):
			return m.component
		}
	}
	return ""
}

// nearEvent is true when t, a time of the status kept to the second, is the time of an Event
// seen from first to last.
func nearEvent(t, first, last time.Time) bool {
	const slack = 5 * time.Second
	return !t.Before(first.Add(-slack)) && !t.After(last.Add(slack))
}

// recordActor names the policy and step of a record as Homeostat's messages do: "Policy
// heal-web step 2".
func recordActor(r v1alpha1.ActionRecord) string {
	switch {
	case r.Policy == "":
		return homeostatSource
	case r.Step > 0:
		return "Policy " + r.Policy + " step " + strconv.Itoa(int(r.Step))
	}
	return "Policy " + r.Policy
}

// actionMessage says what a record decided, on what, why, and what became of it.
func actionMessage(r v1alpha1.ActionRecord) string {
	var b strings.Builder
	b.WriteString(recordActor(r))
	b.WriteString(": ")
	if r.Reason != "" {
		b.WriteString(fullStop(r.Reason))
	} else {
		b.WriteString(r.Action + ".")
	}
	switch {
	case len(r.Objects) > 0 && r.Target != "":
		b.WriteString(" On " + r.Target + ": " + strings.Join(r.Objects, ", ") + ".")
	case len(r.Objects) > 0:
		b.WriteString(" On " + strings.Join(r.Objects, ", ") + ".")
	case r.Target != "" && !strings.Contains(r.Message, r.Target):
		b.WriteString(" On " + r.Target + ".")
	}
	switch {
	case r.Message != "":
		b.WriteString(" " + fullStop(r.Message))
	case r.Result == v1alpha1.ResultPending || r.Result == "":
		b.WriteString(" Not carried out yet.")
	}
	return b.String()
}

// fullStop ends s with a full stop unless it ends with punctuation already.
func fullStop(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s[len(s)-1:], ".!?") {
		return s
	}
	return s + "."
}

// kindOf is the kind of a workload as the client reads it (typed objects carry no kind).
func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *appsv1.Deployment:
		return "Deployment"
	case *appsv1.StatefulSet:
		return "StatefulSet"
	case *appsv1.ReplicaSet:
		return "ReplicaSet"
	}
	return obj.GetObjectKind().GroupVersionKind().Kind
}

func isOutcomeReason(reason string) bool {
	return reason == "ActionVerified" || reason == "ActionIneffective" || reason == "ActionOutcomeUnknown"
}

// isResultReason is true for the reasons of the Events that report an action's result.
func isResultReason(reason string) bool {
	switch reason {
	case "ActionSucceeded", "ActionFailed", "ActionForbidden", "ActionCancelled", reasonDryRun:
		return true
	}
	return false
}
