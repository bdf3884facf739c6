package plan

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) *metav1.Time { t := metav1.NewTime(t0.Add(d)); return &t }

func ladder(giveUp *v1alpha1.GiveUp) v1alpha1.Policy {
	return v1alpha1.Policy{Name: "heal-web", Remediate: &v1alpha1.RemediatePolicy{
		When: []string{"CrashLooping", "Down"},
		Steps: []v1alpha1.RemediationStep{
			{Action: v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web"}}, Timeout: &metav1.Duration{Duration: 2 * time.Minute}},
			{Action: v1alpha1.Action{Rollback: &v1alpha1.ComponentAction{Component: "web"}}},
			{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "web keeps crashing"}}, Timeout: &metav1.Duration{Duration: 5 * time.Minute}},
		},
		GiveUp: giveUp,
	}}
}

func TestRemediate(t *testing.T) {
	crash := map[string]bool{"CrashLooping": true}
	giveUp := &v1alpha1.GiveUp{Episodes: 2, Within: metav1.Duration{Duration: time.Hour}}
	cases := []struct {
		name      string
		policy    v1alpha1.Policy
		state     v1alpha1.PolicyStatus
		active    map[string]bool
		now       time.Duration
		kind      Kind
		step      int32
		action    string
		nextCheck time.Duration // from t0; -1 for none
		// deadline is, for Act, when the step's timeout ends if it acts now (from t0).
		deadline time.Duration
		reason   string
		message  string
	}{
		{name: "idle when no symptom of the policy is active", policy: ladder(nil),
			active: map[string]bool{"Other": true}, kind: Idle, nextCheck: -1, reason: ReasonNoSymptoms, message: "None of CrashLooping, Down is active."},
		{name: "an active symptom opens an episode at step 1", policy: ladder(nil),
			active: crash, kind: Act, step: 1, action: "restartPods", nextCheck: -1, deadline: 2 * time.Minute, reason: ReasonSymptomActive,
			message: "CrashLooping is active: step 1 of 3, restartPods on web."},
		{name: "two active symptoms are both named", policy: ladder(nil),
			active: map[string]bool{"CrashLooping": true, "Down": true}, kind: Act, step: 1, action: "restartPods", nextCheck: -1,
			message: "CrashLooping, Down are active"},
		{name: "a step that acted waits for its timeout", policy: ladder(nil),
			state:  v1alpha1.PolicyStatus{Step: 1, EpisodeStart: at(0), StepStart: at(0), State: v1alpha1.PolicyActing},
			active: crash, now: time.Minute, kind: Wait, step: 1, nextCheck: 2 * time.Minute, reason: ReasonWaiting,
			message: "waiting until 2026-11-25T10:02:00Z for CrashLooping to clear"},
		{name: "the timeout runs out and the ladder escalates", policy: ladder(nil),
			state:  v1alpha1.PolicyStatus{Step: 1, EpisodeStart: at(0), StepStart: at(0)},
			active: crash, now: 2 * time.Minute, kind: Act, step: 2, action: "rollback", nextCheck: -1, deadline: 3 * time.Minute, reason: ReasonEscalating,
			message: "CrashLooping is still active after step 1 timed out: escalating to step 2 of 3, rollback on web."},
		{name: "a step without timeout waits the default minute", policy: ladder(nil),
			state:  v1alpha1.PolicyStatus{Step: 2, EpisodeStart: at(0), StepStart: at(2 * time.Minute)},
			active: crash, now: 2*time.Minute + 30*time.Second, kind: Wait, step: 2, nextCheck: 3 * time.Minute},
		{name: "a held step acts again when asked", policy: ladder(nil),
			state:  v1alpha1.PolicyStatus{Step: 2, EpisodeStart: at(0), State: v1alpha1.PolicyHeld, Reason: ReasonCooldown},
			active: crash, now: 10 * time.Minute, kind: Act, step: 2, action: "rollback", nextCheck: -1, deadline: 11 * time.Minute},
		{name: "the last step's timeout runs out: exhausted, a person is needed", policy: ladder(nil),
			state:  v1alpha1.PolicyStatus{Step: 3, EpisodeStart: at(0), StepStart: at(3 * time.Minute)},
			active: crash, now: 8 * time.Minute, kind: Exhausted, step: 3, nextCheck: -1, reason: ReasonLadderExhausted,
			message: "All 3 steps ran and CrashLooping is still active: a person is needed."},
		{name: "symptoms clear: the episode closes", policy: ladder(nil),
			state:  v1alpha1.PolicyStatus{Step: 2, EpisodeStart: at(0), StepStart: at(2 * time.Minute)},
			active: map[string]bool{}, now: 2*time.Minute + 10*time.Second, kind: Healed, step: 2, nextCheck: -1, reason: ReasonHealed,
			message: "Healed: CrashLooping, Down cleared at step 2 of 3."},
		{name: "a healed policy keeps saying how its last episode ended", policy: ladder(nil),
			state:  v1alpha1.PolicyStatus{State: v1alpha1.PolicyIdle, Reason: ReasonHealed, Message: "Healed: CrashLooping, Down cleared at step 2 of 3."},
			active: map[string]bool{}, now: time.Hour, kind: Idle, nextCheck: -1, reason: ReasonHealed, message: "Healed: CrashLooping, Down cleared at step 2 of 3."},
		{name: "an exhausted ladder closes when the symptoms clear", policy: ladder(nil),
			state:  v1alpha1.PolicyStatus{Step: 3, EpisodeStart: at(0), StepStart: at(3 * time.Minute), State: v1alpha1.PolicyGaveUp},
			active: map[string]bool{}, now: 20 * time.Minute, kind: Healed, step: 3, nextCheck: -1},
		{name: "giveUp counts a new episode", policy: ladder(giveUp),
			state:  v1alpha1.PolicyStatus{RecentEpisodes: []metav1.Time{*at(0)}},
			active: crash, now: 10 * time.Minute, kind: Act, step: 1, action: "restartPods", nextCheck: -1},
		{name: "giveUp stops a new episode once the count is reached within the window", policy: ladder(giveUp),
			state:  v1alpha1.PolicyStatus{RecentEpisodes: []metav1.Time{*at(0), *at(10 * time.Minute)}},
			active: crash, now: 20 * time.Minute, kind: GiveUp, nextCheck: time.Hour, reason: ReasonGaveUp,
			message: "Gave up: CrashLooping is active, but 2 episodes started within 1h0m0s (giveUp.episodes is 2); a person is needed. The policy may act again after 2026-11-25T11:00:00Z."},
		{name: "while calm after giving up the policy is idle and says when it may act again", policy: ladder(giveUp),
			state:  v1alpha1.PolicyStatus{RecentEpisodes: []metav1.Time{*at(0), *at(10 * time.Minute)}},
			active: map[string]bool{}, now: 30 * time.Minute, kind: Idle, nextCheck: time.Hour,
			message: "giveUp allows no new episode before 2026-11-25T11:00:00Z."},
		{name: "episodes older than the window no longer count", policy: ladder(giveUp),
			state:  v1alpha1.PolicyStatus{RecentEpisodes: []metav1.Time{*at(0), *at(10 * time.Minute)}},
			active: crash, now: 61 * time.Minute, kind: Act, step: 1, nextCheck: -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Remediate(RemediationInput{Now: t0.Add(tc.now), Policy: tc.policy, State: tc.state, Active: tc.active})
			if d.Kind != tc.kind {
				t.Fatalf("kind = %s, want %s (%s)", d.Kind, tc.kind, d.Message)
			}
			if tc.step != 0 && d.Step != tc.step {
				t.Errorf("step = %d, want %d", d.Step, tc.step)
			}
			if tc.action != "" && (d.Action == nil || ActionName(*d.Action) != tc.action) {
				t.Errorf("action = %v, want %s", d.Action, tc.action)
			}
			if tc.nextCheck < 0 && !d.NextCheck.IsZero() {
				t.Errorf("nextCheck = %s, want none", d.NextCheck)
			}
			if tc.nextCheck >= 0 && !d.NextCheck.Equal(t0.Add(tc.nextCheck)) {
				t.Errorf("nextCheck = %s, want %s", d.NextCheck, t0.Add(tc.nextCheck))
			}
			if got := StepDeadline(d, t0.Add(tc.now)); tc.deadline > 0 && !got.Equal(t0.Add(tc.deadline)) {
				t.Errorf("step deadline = %s, want %s: the ladder must be looked at again when the step times out", got, t0.Add(tc.deadline))
			} else if tc.kind != Act && !got.IsZero() {
				t.Errorf("step deadline = %s for a %s decision, want none", got, tc.kind)
			}
			if tc.reason != "" && d.Reason != tc.reason {
				t.Errorf("reason = %s, want %s", d.Reason, tc.reason)
			}
			if !strings.Contains(d.Message, tc.message) {
				t.Errorf("message = %q, want it to contain %q", d.Message, tc.message)
			}
			if d.Message == "" || d.Next.Message != d.Message {
				t.Errorf("every decision must carry its message into the state: %q vs %q", d.Message, d.Next.Message)
			}
			if d.Next.Name != "heal-web" {
				t.Errorf("state name = %q", d.Next.Name)
			}
		})
	}
}

func TestRemediateNewEpisodeIsRecordedForGiveUp(t *testing.T) {
	giveUp := &v1alpha1.GiveUp{Episodes: 3, Within: metav1.Duration{Duration: time.Hour}}
	d := Remediate(RemediationInput{Now: t0, Policy: ladder(giveUp), Active: map[string]bool{"Down": true}})
	if !d.NewEpisode || len(d.Next.RecentEpisodes) != 1 || d.Next.EpisodeStart == nil || d.Next.Step != 1 {
		t.Fatalf("a new episode must be opened and counted: %+v", d.Next)
	}
	st := Acted(d, "id-1", t0)
	if st.StepStart == nil || !st.StepStart.Time.Equal(t0) || st.LastAction != "id-1" || st.State != v1alpha1.PolicyActing {
		t.Fatalf("Acted must start the step's timeout and remember the action: %+v", st)
	}
	// Without giveUp nothing is kept.
	d = Remediate(RemediationInput{Now: t0, Policy: ladder(nil), Active: map[string]bool{"Down": true}})
	if len(d.Next.RecentEpisodes) != 0 {
		t.Fatalf("without giveUp no episode history is kept: %v", d.Next.RecentEpisodes)
	}
}

func TestHeldKeepsTheStepUnacted(t *testing.T) {
	d := Remediate(RemediationInput{Now: t0, Policy: ladder(nil), Active: map[string]bool{"Down": true}})
	st := Held(d, Verdict{Held: true, Reason: ReasonCooldown, Message: "Cooldown: wait."})
	if st.State != v1alpha1.PolicyHeld || st.Reason != ReasonCooldown || st.StepStart != nil || st.Step != 1 {
		t.Fatalf("held state = %+v", st)
	}
	if st.Message != "Step 1 (restartPods) is held: Cooldown: wait." {
		t.Fatalf("message = %q", st.Message)
	}
	// The next decision tries the same step again.
	d2 := Remediate(RemediationInput{Now: t0.Add(time.Minute), Policy: ladder(nil), State: st, Active: map[string]bool{"Down": true}})
	if d2.Kind != Act || d2.Step != 1 {
		t.Fatalf("after a hold the same step is tried again: %s step %d", d2.Kind, d2.Step)
	}
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		a    v1alpha1.Action
		want string
	}{
		{v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web"}}, "restartPods on web"},
		{v1alpha1.Action{RolloutRestart: &v1alpha1.ComponentAction{Component: "db"}}, "rolloutRestart on db"},
		{v1alpha1.Action{Scale: &v1alpha1.ScaleAction{Component: "web"}}, "scale on web"},
		{v1alpha1.Action{Failover: &v1alpha1.FailoverAction{Policy: "fo"}}, "failover of fo"},
		{v1alpha1.Action{DrainNode: &v1alpha1.NodeAction{Component: "web"}}, "drainNode on web"},
		{v1alpha1.Action{CordonNode: &v1alpha1.NodeAction{Component: "web"}}, "cordonNode on web"},
		{v1alpha1.Action{Webhook: &v1alpha1.WebhookAction{URL: "https://x"}}, "webhook"},
		{v1alpha1.Action{RunJob: &v1alpha1.RunJobAction{}}, "runJob"},
		{v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "m"}}, "notify"},
		{v1alpha1.Action{}, "unknown"},
	} {
		if got := Describe(tc.a); got != tc.want {
			t.Errorf("Describe = %q, want %q", got, tc.want)
		}
	}
}
