package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// timelineNow is the fake clock of the timeline tests: the fixtures are as the API server
// returns them at this time.
var timelineNow = time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC)

// loadTimelineFixture reads testdata/name, a YAML stream of the app, its workloads, the
// namespace's ReplicaSets and pods, and Events of both APIs, as the gatherer would.
func loadTimelineFixture(t *testing.T, name string) timelineInput {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	dec := serializer.NewCodecFactory(Scheme()).UniversalDeserializer()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var in timelineInput
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := dec.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, doc)
		}
		switch o := obj.(type) {
		case *v1alpha1.AutonomicApp:
			in.App = o
		case *appsv1.Deployment:
			in.Workloads = append(in.Workloads, o)
		case *appsv1.StatefulSet:
			in.Workloads = append(in.Workloads, o)
		case *appsv1.ReplicaSet:
			in.ReplicaSets = append(in.ReplicaSets, metav1.PartialObjectMetadata{ObjectMeta: o.ObjectMeta})
			if slices.ContainsFunc(in.App.Spec.Components, func(c v1alpha1.Component) bool {
				return c.WorkloadRef != nil && c.WorkloadRef.Kind == "ReplicaSet" && c.WorkloadRef.Name == o.Name
			}) {
				in.Workloads = append(in.Workloads, o)
			}
		case *corev1.Pod:
			in.Pods = append(in.Pods, metav1.PartialObjectMetadata{ObjectMeta: o.ObjectMeta})
		case *eventsv1.Event:
			in.Events = append(in.Events, *o)
		case *corev1.Event:
			in.CoreEvents = append(in.CoreEvents, *o)
		default:
			t.Fatalf("%s: unexpected %T", name, obj)
		}
	}
	return in
}

// timelineCase is one rendering of a fixture.
type timelineCase struct {
	name     string
	fixture  string
	since    time.Duration
	limit    int
	format   string
	width    int
	absolute bool
}

func TestTimelineRendersACrashLoopEpisode(t *testing.T) {
	for _, tc := range []timelineCase{
		{name: "timeline_crashloop_w100.txt", fixture: "timeline_crashloop.yaml", since: time.Hour, width: 100},
		{name: "timeline_crashloop_w50.txt", fixture: "timeline_crashloop.yaml", since: time.Hour, width: 50},
		{name: "timeline_crashloop.json", fixture: "timeline_crashloop.yaml", since: time.Hour, format: "json"},
		{name: "timeline_crashloop_absolute_limit.txt", fixture: "timeline_crashloop.yaml", since: 2 * time.Hour, limit: 6, width: 120, absolute: true},
		{name: "timeline_crashloop_quiet.txt", fixture: "timeline_crashloop.yaml", since: 5 * time.Second, width: 80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := buildTimeline(loadTimelineFixture(t, tc.fixture), timelineNow, timelineNow.Add(-tc.since), tc.limit)
			var out bytes.Buffer
			if err := printTo(&out, tc.format, tc.width, res, func(t *Text) { renderTimeline(t, res, tc.absolute) }); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, out.Bytes())
			if tc.format == "" {
				for i, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
					if n := len([]rune(l)); n > tc.width && !strings.Contains(strings.TrimSpace(l), " ") {
						continue // a single word longer than the line stays whole
					} else if n > tc.width {
						t.Errorf("line %d is %d columns wide, more than %d: %q", i+1, n, tc.width, l)
					}
				}
			}
		})
	}
}

// findEntry is the index of the first entry from i on that has kind and reason (and, when
// given, whose action or source is what), or -1.
func findEntry(es []TimelineEntry, from int, kind TimelineKind, reason, what string) int {
	for i := from; i < len(es); i++ {
		e := es[i]
		if e.Kind == kind && e.Reason == reason && (what == "" || e.Action == what || e.Source == what) {
			return i
		}
	}
	return -1
}

func TestTimelineShowsTheCrashLoopEpisodeInOrder(t *testing.T) {
	res := buildTimeline(loadTimelineFixture(t, "timeline_crashloop.yaml"), timelineNow, timelineNow.Add(-time.Hour), 0)
	// Through JSON, as a script reads it.
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var got TimelineResult
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	es := got.Entries
	steps := []struct {
		what               string
		kind               TimelineKind
		reason, actionOrBy string
	}{
		{"the pods crash", TimelineEvent, "BackOff", "Pod/web-57f4c9dd8x-k2x9p"},
		{"the symptom", TimelineSymptom, "SymptomBecameActive", ""},
		{"the intent", TimelineAction, "ActionSucceeded", "restartPods"},
		{"the eviction's effect", TimelineEvent, "Killing", "Pod/web-57f4c9dd8x-k2x9p"},
		{"step 1 judged", TimelineOutcome, "ActionIneffective", "restartPods"},
		{"the rollback", TimelineAction, "ActionSucceeded", "rollback"},
		{"the Deployment rolls back", TimelineEvent, "ScalingReplicaSet", "Deployment/web"},
		{"the symptom clears", TimelineSymptom, "SymptomCleared", ""},
		{"the rollback verified", TimelineOutcome, "ActionVerified", "rollback"},
	}
	at := 0
	for _, s := range steps {
		i := findEntry(es, at, s.kind, s.reason, s.actionOrBy)
		if i < 0 {
			t.Fatalf("%s (%s %s %s) is not after entry %d:\n%s", s.what, s.kind, s.reason, s.actionOrBy, at, b)
		}
		at = i + 1
	}
	if intent, created := findEntry(es, 0, TimelineAction, "ActionSucceeded", "restartPods"), findEntry(es, 0, TimelineEvent, "SuccessfulCreate", "ReplicaSet/web-57f4c9dd8x"); created > intent {
		t.Errorf("the first pod the bad ReplicaSet created is listed after the eviction")
	} else if findEntry(es, intent, TimelineEvent, "SuccessfulCreate", "ReplicaSet/web-57f4c9dd8x") < 0 {
		t.Errorf("the pod the ReplicaSet created in place of an evicted one is not listed after the eviction")
	}

	rp := es[findEntry(es, 0, TimelineAction, "ActionSucceeded", "restartPods")]
	if rp.ActionID != "heal-web-mxai1xjo-3f9a1c" || rp.Component != "web" || !strings.Contains(rp.Message, "web-57f4c9dd8x-k2x9p, web-57f4c9dd8x-w7m4q") {
		t.Errorf("the restartPods entry does not name its id, component and the pods it evicted: %+v", rp)
	}
	verified := es[findEntry(es, 0, TimelineOutcome, "ActionVerified", "rollback")]
	if verified.ActionID != "heal-web-mxai28zw-7be210" || !strings.Contains(verified.Message, "stayed clear for 15s") {
		t.Errorf("the verdict does not carry its Event's explanation: %+v", verified)
	}
	for _, e := range es {
		switch {
		case strings.Contains(e.Source, "web-api"), strings.Contains(e.Source, "web-bdf"):
			t.Errorf("an Event of another workload is in the timeline: %+v", e)
		case e.Reason == "LadderExhausted":
			t.Errorf("an Event of an earlier app named shop is in the timeline: %+v", e)
		case e.Time.Before(got.Since) && (e.LastTime == nil || e.LastTime.Before(got.Since)):
			t.Errorf("an entry before --since is in the timeline: %+v", e)
		case e.Kind == TimelineEvent && e.Source == homeostatSource && strings.HasPrefix(e.Reason, "Action"):
			t.Errorf("an Event that says what an action record says is listed beside it: %+v", e)
		}
	}
	if n := countEntries(es, TimelineSymptom, "SymptomBecameActive"); n != 1 {
		t.Errorf("the symptom's Event, listed through both APIs, is in the timeline %d times, want once", n)
	}
	if n := countEntries(es, TimelineSymptom, "SymptomCleared"); n != 1 {
		t.Errorf("the symptom's clearing, in status and in an Event, is in the timeline %d times, want once", n)
	}
	child := es[findEntry(es, 0, TimelineEvent, "SymptomBecameActive", "AutonomicApp/payments")]
	if child.Component != "payments" || child.Count != 3 || child.LastTime == nil {
		t.Errorf("the child app's repeated Event does not say its component, count and last time: %+v", child)
	}
	debug := findEntry(es, 0, TimelineEvent, "Unhealthy", "Pod/web-debug")
	if debug < 0 {
		t.Errorf("the Events of a pod web's selector matches are missing")
	}
}

func countEntries(es []TimelineEntry, kind TimelineKind, reason string) int {
	n := 0
	for _, e := range es {
		if e.Kind == kind && e.Reason == reason {
			n++
		}
	}
	return n
}

func TestTimelineFallsBackToTheStatusOnceEventsExpire(t *testing.T) {
	in := loadTimelineFixture(t, "timeline_crashloop.yaml")
	in.Events, in.CoreEvents = nil, nil
	res := buildTimeline(in, timelineNow, timelineNow.Add(-time.Hour), 0)
	var got []string
	for _, e := range res.Entries {
		got = append(got, string(e.Kind)+" "+e.Reason+" "+e.Action)
	}
	want := []string{
		"Action ActionSucceeded restartPods",
		"Outcome ActionIneffective restartPods",
		"Action ActionSucceeded rollback",
		"Condition ComponentsHealthy ",
		"Symptom SymptomCleared ",
		"Condition NoEpisode ",
		"Outcome ActionVerified rollback",
	}
	if !slices.Equal(got, want) {
		t.Errorf("entries from the status alone:\n got %q\nwant %q", got, want)
	}
	if m := res.Entries[1].Message; m != "Policy heal-web step 1: restartPods (action heal-web-mxai1xjo-3f9a1c) is ineffective." {
		t.Errorf("an outcome without its Event says %q", m)
	}
}

func TestTimelineTakesAnActionFromItsEventOnceTheRecordIsGone(t *testing.T) {
	in := loadTimelineFixture(t, "timeline_crashloop.yaml")
	in.App.Status.History = nil
	res := buildTimeline(in, timelineNow, timelineNow.Add(-time.Hour), 0)
	i := findEntry(res.Entries, 0, TimelineAction, "ActionSucceeded", "rollback")
	if i < 0 {
		t.Fatalf("no Action entry from the rollback's Event: %+v", res.Entries)
	}
	if e := res.Entries[i]; e.ActionID != "heal-web-mxai28zw-7be210" || e.Source != homeostatSource {
		t.Errorf("the Action entry from an Event: %+v", e)
	}
	if findEntry(res.Entries, 0, TimelineOutcome, "ActionVerified", "rollback") < 0 {
		t.Errorf("no Outcome entry from the verdict's Event")
	}
}

func TestTimelineOrdersTheEntriesOfOneSecondCauseBeforeEffect(t *testing.T) {
	res := buildTimeline(loadTimelineFixture(t, "timeline_crashloop.yaml"), timelineNow, timelineNow.Add(-time.Hour), 0)
	var second []string
	for _, e := range res.Entries {
		if e.Time.Truncate(time.Second).Equal(time.Date(2026, 12, 5, 14, 20, 12, 0, time.UTC)) {
			second = append(second, string(e.Kind)+" "+e.Reason+" "+e.Source)
		}
	}
	want := []string{
		"Symptom SymptomBecameActive Homeostat",
		"Action ActionSucceeded Homeostat",
		"Event SuccessfulCreate ReplicaSet/web-57f4c9dd8x",
		"Event Killing Pod/web-57f4c9dd8x-k2x9p",
		"Event Scheduled Pod/web-57f4c9dd8x-b2c4d",
	}
	if !slices.Equal(second, want) {
		t.Errorf("the entries of 14:20:12:\n got %q\nwant %q", second, want)
	}
}

func TestTimelineLimitKeepsTheLatestEntries(t *testing.T) {
	in := loadTimelineFixture(t, "timeline_crashloop.yaml")
	all := buildTimeline(in, timelineNow, timelineNow.Add(-time.Hour), 0)
	res := buildTimeline(in, timelineNow, timelineNow.Add(-time.Hour), 3)
	if len(res.Entries) != 3 || res.Omitted != len(all.Entries)-3 {
		t.Fatalf("--limit 3 kept %d entries and says %d were left out, of %d", len(res.Entries), res.Omitted, len(all.Entries))
	}
	if !slices.EqualFunc(res.Entries, all.Entries[len(all.Entries)-3:], func(a, b TimelineEntry) bool { return a.Time.Equal(b.Time) && a.Reason == b.Reason }) {
		t.Errorf("--limit 3 did not keep the latest three entries")
	}
}

func TestParseSinceTakesADurationOrAnRFC3339Time(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{in: "1h", want: timelineNow.Add(-time.Hour)},
		{in: "30m", want: timelineNow.Add(-30 * time.Minute)},
		{in: " 2h30m ", want: timelineNow.Add(-150 * time.Minute)},
		{in: "2026-12-05T14:00:00Z", want: time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)},
		{in: "2026-12-05T16:00:00+02:00", want: time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)},
		{in: "0s", err: true},
		{in: "-5m", err: true},
		{in: "yesterday", err: true},
		{in: "2026-12-05", err: true},
	} {
		got, err := parseSince(tc.in, timelineNow)
		if tc.err {
			if exitCode(err) != ExitUsage {
				t.Errorf("parseSince(%q) = %v, %v; want a usage error", tc.in, got, err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestRelativeTimeCountsWholeSecondsBeforeNow(t *testing.T) {
	now := timelineNow.Add(400 * time.Millisecond)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "now"},
		{-300 * time.Millisecond, "now"},
		{-900 * time.Millisecond, "-1s"},
		{-45 * time.Second, "-45s"},
		{-(3*time.Minute + 12*time.Second), "-3m12s"},
		{-(time.Hour + 2*time.Minute + 5*time.Second), "-1h02m05s"},
		{-(50 * time.Hour), "-2d02h"},
		{5 * time.Second, "+5s"},
	} {
		if got := relativeTime(now, now.Add(tc.d)); got != tc.want {
			t.Errorf("relativeTime(now%+v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestTimelineOrdersASymptomBeforeTheIntentItTriggeredAcrossASecond(t *testing.T) {
	// The reconcile took the time 14:20:12.990 (the record keeps 14:20:12, its id the
	// milliseconds) and emitted the symptom's Event 14 ms later, in the next second.
	app := &v1alpha1.AutonomicApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"},
		Spec: v1alpha1.AutonomicAppSpec{Components: []v1alpha1.Component{
			{Name: "web", WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}}}},
		Status: v1alpha1.AutonomicAppStatus{History: []v1alpha1.ActionRecord{{
			ID: "heal-web-mxai1y66-000001", Time: metav1.NewTime(time.Date(2026, 12, 5, 14, 20, 12, 0, time.UTC)),
			Policy: "heal-web", Step: 1, Action: "restartPods", Target: "Deployment/web", Result: v1alpha1.ResultSucceeded}}},
	}
	micro := func(ms int) metav1.MicroTime {
		return metav1.NewMicroTime(time.Date(2026, 12, 5, 14, 20, 13, ms*int(time.Millisecond), time.UTC))
	}
	in := timelineInput{App: app, Events: []eventsv1.Event{
		{ObjectMeta: metav1.ObjectMeta{Name: "a", UID: "a"}, EventTime: micro(100), Type: "Normal", Reason: "SuccessfulCreate",
			Regarding: corev1.ObjectReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-6b9d5c7f84"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "b", UID: "b"}, EventTime: micro(4), Type: "Warning", Reason: "SymptomBecameActive",
			ReportingController: "homeostat", Note: "Symptom CrashLooping became active.",
			Regarding: corev1.ObjectReference{APIVersion: "autonomic.homeostat.dev/v1alpha1", Kind: "AutonomicApp", Name: "shop"}},
	}}
	res := buildTimeline(in, timelineNow, timelineNow.Add(-time.Hour), 0)
	var got []string
	for _, e := range res.Entries {
		got = append(got, string(e.Kind)+" "+e.Reason)
	}
	want := []string{"Symptom SymptomBecameActive", "Action ActionSucceeded", "Event SuccessfulCreate"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestTimelineTakesAPendingRecordsResultFromItsEvent(t *testing.T) {
	in := loadTimelineFixture(t, "timeline_crashloop.yaml")
	rb := &in.App.Status.History[0]
	rb.Result, rb.Message, rb.Outcome, rb.OutcomeAt = v1alpha1.ResultPending, "", "", nil
	res := buildTimeline(in, timelineNow, timelineNow.Add(-time.Hour), 0)
	var rollbacks []TimelineEntry
	for _, e := range res.Entries {
		if e.Kind == TimelineAction && e.Action == "rollback" {
			rollbacks = append(rollbacks, e)
		}
	}
	if len(rollbacks) != 1 || rollbacks[0].Reason != "ActionSucceeded" || rollbacks[0].ActionID != rb.ID {
		t.Errorf("want one rollback entry with the result its Event reports, got %+v", rollbacks)
	}
}
