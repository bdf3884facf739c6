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

func verifying(p v1alpha1.Policy, d time.Duration) v1alpha1.Policy {
	p.Remediate.VerifyFor = &metav1.Duration{Duration: d}
	return p
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
		{name: "symptoms clear: the episode stays open for the verification window (the step's timeout)", policy: ladder(nil),
			state:  v1alpha1.PolicyStatus{Step: 2, EpisodeStart: at(0), StepStart: at(2 * time.Minute)},
			active: map[string]bool{}, now: 2*time.Minute + 10*time.Second, kind: Wait, step: 2, nextCheck: 3*time.Minute + 10*time.Second, reason: ReasonVerifying,
			message: "CrashLooping, Down cleared at 2026-11-25T10:02:10Z, at step 2 of 3 (rollback) it acted; the episode closes as healed if they stay clear until 2026-11-25T10:03:10Z."},
		{name: "symptoms that stayed clear for the window: the episode closes healed", policy: ladder(nil),
			state:  v1alpha1.PolicyStatus{Step: 2, EpisodeStart: at(0), StepStart: at(2 * time.Minute), VerifyingSince: at(2*time.Minute + 10*time.Second)},
			active: map[string]bool{}, now: 3*time.Minute + 10*time.Second, kind: Healed, nextCheck: -1, reason: ReasonHealed,
			message: "Healed: CrashLooping, Down cleared at step 2 of 3 and stayed clear for 1m0s."},
		{name: "a symptom back inside the window continues the same episode and waits out the step", policy: ladder(nil),
			state:  v1alpha1.PolicyStatus{Step: 1, EpisodeStart: at(0), StepStart: at(0), VerifyingSince: at(30 * time.Second)},
			active: crash, now: time.Minute, kind: Wait, step: 1, nextCheck: 2 * time.Minute, reason: ReasonWaiting},
		{name: "a symptom back after the step's timeout escalates at once", policy: ladder(nil),
			state:  v1alpha1.PolicyStatus{Step: 1, EpisodeStart: at(0), StepStart: at(0), VerifyingSince: at(30 * time.Second)},
			active: crash, now: 2*time.Minute + time.Second, kind: Act, step: 2, action: "rollback", nextCheck: -1, reason: ReasonEscalating},
		{name: "verifyFor sets the window", policy: verifying(ladder(nil), 10*time.Second),
			state:  v1alpha1.PolicyStatus{Step: 1, EpisodeStart: at(0), StepStart: at(0)},
			active: map[string]bool{}, now: 5 * time.Second, kind: Wait, step: 1, nextCheck: 15 * time.Second, reason: ReasonVerifying},
		{name: "verifyFor 0s closes the episode as soon as the symptoms clear", policy: verifying(ladder(nil), 0),
			state:  v1alpha1.PolicyStatus{Step: 1, EpisodeStart: at(0), StepStart: at(0)},
			active: map[string]bool{}, now: 5 * time.Second, kind: Healed, nextCheck: -1, reason: ReasonHealed},
		{name: "a step a guard held also waits out the window before its episode closes", policy: ladder(nil),
			state:  v1alpha1.PolicyStatus{Step: 1, EpisodeStart: at(0), State: v1alpha1.PolicyHeld, Reason: ReasonCooldown},
			active: map[string]bool{}, now: 5 * time.Second, kind: Wait, step: 1, nextCheck: 2*time.Minute + 5*time.Second, reason: ReasonVerifying,
			message: "at step 1 of 3 (restartPods) before it acted"},
		{name: "a healed policy keeps saying how its last episode ended", policy: ladder(nil),
			state:  v1alpha1.PolicyStatus{State: v1alpha1.PolicyIdle, Reason: ReasonHealed, Message: "Healed: CrashLooping, Down cleared at step 2 of 3."},
			active: map[string]bool{}, now: time.Hour, kind: Idle, nextCheck: -1, reason: ReasonHealed, message: "Healed: CrashLooping, Down cleared at step 2 of 3."},
		{name: "an exhausted ladder stays exhausted while the symptoms hold", policy: ladder(nil),
			state:  v1alpha1.PolicyStatus{Step: 3, EpisodeStart: at(0), StepStart: at(3 * time.Minute), State: v1alpha1.PolicyGaveUp, Reason: ReasonLadderExhausted, Message: "All 3 steps ran."},
			active: crash, now: 20 * time.Minute, kind: Exhausted, step: 3, nextCheck: -1, reason: ReasonLadderExhausted},
		{name: "an exhausted ladder closes once the symptoms stayed clear for the window", policy: ladder(nil),
			state:  v1alpha1.PolicyStatus{Step: 3, EpisodeStart: at(0), StepStart: at(3 * time.Minute), State: v1alpha1.PolicyGaveUp, VerifyingSince: at(14 * time.Minute)},
			active: map[string]bool{}, now: 20 * time.Minute, kind: Healed, nextCheck: -1},
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
				t.Fatalf("kind = %s, want %s (%s)", d.Kind, tc.kind, d.Status.Message)
			}
			if tc.step != 0 && d.Status.Step != tc.step {
				t.Errorf("step = %d, want %d", d.Status.Step, tc.step)
			}
			if (d.Kind == Act) != (d.Intent != nil) {
				t.Fatalf("a %s decision with intent %v", d.Kind, d.Intent)
			}
			if tc.action != "" && (d.Intent == nil || ActionName(d.Intent.Action) != tc.action) {
				t.Errorf("intent = %v, want %s", d.Intent, tc.action)
			}
			if tc.nextCheck < 0 && !d.NextCheck.IsZero() {
				t.Errorf("nextCheck = %s, want none", d.NextCheck)
			}
			if tc.nextCheck >= 0 && !d.NextCheck.Equal(t0.Add(tc.nextCheck)) {
				t.Errorf("nextCheck = %s, want %s", d.NextCheck, t0.Add(tc.nextCheck))
			}
			if tc.deadline > 0 {
				if got := t0.Add(tc.now).Add(d.Intent.RecheckAfter); !got.Equal(t0.Add(tc.deadline)) {
					t.Errorf("step deadline = %s, want %s: the ladder must be looked at again when the step times out", got, t0.Add(tc.deadline))
				}
			}
			if tc.reason != "" && d.Status.Reason != tc.reason {
				t.Errorf("reason = %s, want %s", d.Status.Reason, tc.reason)
			}
			if d.Status.Message == "" || !strings.Contains(d.Status.Message, tc.message) {
				t.Errorf("message = %q, want it to contain %q", d.Status.Message, tc.message)
			}
			if d.Intent != nil && d.Intent.Reason != d.Status.Message {
				t.Errorf("the intent's reason must be the policy's message: %q vs %q", d.Intent.Reason, d.Status.Message)
			}
			if d.Status.Name != "heal-web" {
				t.Errorf("state name = %q", d.Status.Name)
			}
		})
	}
}

func TestRemediateNewEpisodeIsRecordedForGiveUp(t *testing.T) {
	giveUp := &v1alpha1.GiveUp{Episodes: 3, Within: metav1.Duration{Duration: time.Hour}}
	d := Remediate(RemediationInput{Now: t0, Policy: ladder(giveUp), Active: map[string]bool{"Down": true}})
	if !d.NewEpisode || len(d.Status.RecentEpisodes) != 1 || d.Status.EpisodeStart == nil || d.Status.Step != 1 {
		t.Fatalf("a new episode must be opened and counted: %+v", d.Status)
	}
	st := ActedStatus(d.Intent, "id-1", t0)
	if st.StepStart == nil || !st.StepStart.Time.Equal(t0) || st.LastAction != "id-1" || st.State != v1alpha1.PolicyActing {
		t.Fatalf("Acted must start the step's timeout and remember the action: %+v", st)
	}
	// Without giveUp nothing is kept.
	d = Remediate(RemediationInput{Now: t0, Policy: ladder(nil), Active: map[string]bool{"Down": true}})
	if len(d.Status.RecentEpisodes) != 0 {
		t.Fatalf("without giveUp no episode history is kept: %v", d.Status.RecentEpisodes)
	}
}

func TestHeldKeepsTheStepUnacted(t *testing.T) {
	d := Remediate(RemediationInput{Now: t0, Policy: ladder(nil), Active: map[string]bool{"Down": true}})
	st := HeldStatus(d.Intent, Verdict{Held: true, Reason: ReasonCooldown, Message: "Cooldown: wait."})
	if st.State != v1alpha1.PolicyHeld || st.Reason != ReasonCooldown || st.StepStart != nil || st.Step != 1 {
		t.Fatalf("held state = %+v", st)
	}
	if st.Message != "Step 1 (restartPods) is held: Cooldown: wait." {
		t.Fatalf("message = %q", st.Message)
	}
	// The next decision tries the same step again.
	d2 := Remediate(RemediationInput{Now: t0.Add(time.Minute), Policy: ladder(nil), State: st, Active: map[string]bool{"Down": true}})
	if d2.Kind != Act || d2.Intent.Step != 1 {
		t.Fatalf("after a hold the same step is tried again: %s step %d", d2.Kind, d2.Status.Step)
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

// TestAFixThatDoesNotHoldEscalatesInsteadOfGivingUp replays a crash-looping release
// whose symptom has no clearFor: restartPods replaces the pod, the symptom is false for
// an instant, the replacement crash-loops again. The episode must stay open, the ladder
// must escalate to rollback at restartPods' timeout, and the policy must never give up
// before the ladder ran: a recovery that does not hold is not a recovery.
func TestAFixThatDoesNotHoldEscalatesInsteadOfGivingUp(t *testing.T) {
	pol := v1alpha1.Policy{Name: "heal-web", Remediate: &v1alpha1.RemediatePolicy{
		When: []string{"CrashLooping"},
		Steps: []v1alpha1.RemediationStep{
			{Action: v1alpha1.Action{RestartPods: &v1alpha1.RestartPodsAction{Component: "web"}}, Timeout: &metav1.Duration{Duration: 15 * time.Second}},
			{Action: v1alpha1.Action{Rollback: &v1alpha1.ComponentAction{Component: "web"}}, Timeout: &metav1.Duration{Duration: 30 * time.Second}},
			{Action: v1alpha1.Action{Notify: &v1alpha1.NotifyAction{Message: "web keeps crashing"}}},
		},
		GiveUp: &v1alpha1.GiveUp{Episodes: 3, Within: metav1.Duration{Duration: time.Hour}},
	}}
	type change struct {
		at     time.Duration
		active bool
	}
	cases := []struct {
		name string
		// flicker is when the symptom changes until the rollback runs; the rollback heals
		// for good one second after it acts.
		flicker []change
		// wantVerifiedAt is when the episode closes healed.
		wantRollbackAt, wantVerifiedAt time.Duration
	}{
		{name: "the symptom clears for an instant after each restart",
			flicker: []change{{0, true}, {time.Second, false}, {2 * time.Second, true}, {6 * time.Second, false}, {7 * time.Second, true},
				{11 * time.Second, false}, {12 * time.Second, true}},
			wantRollbackAt: 15 * time.Second, wantVerifiedAt: 46 * time.Second},
		{name: "the symptom clears for longer than a flicker but less than the window",
			flicker:        []change{{0, true}, {time.Second, false}, {13 * time.Second, true}},
			wantRollbackAt: 15 * time.Second, wantVerifiedAt: 46 * time.Second},
		{name: "the symptom comes back inside the window but after the step's timeout: escalates at once",
			flicker:        []change{{0, true}, {10 * time.Second, false}, {20 * time.Second, true}},
			wantRollbackAt: 20 * time.Second, wantVerifiedAt: 51 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := v1alpha1.PolicyStatus{}
			active := false
			outcomes := map[int32]Outcome{}
			var rollbackAt, healedAt time.Duration = -1, -1
			next := 0
			for now := time.Duration(0); now <= 2*time.Minute && healedAt < 0; now += time.Second {
				for next < len(tc.flicker) && tc.flicker[next].at <= now {
					active = tc.flicker[next].active
					next++
				}
				if rollbackAt >= 0 && now >= rollbackAt+time.Second {
					active = false // the rollback healed the release
				}
				d := Remediate(RemediationInput{Now: t0.Add(now), Policy: pol, State: st, Active: map[string]bool{"CrashLooping": active}})
				for _, o := range d.Outcomes {
					if _, dup := outcomes[o.Step]; dup {
						t.Fatalf("step %d judged twice", o.Step)
					}
					outcomes[o.Step] = o
				}
				switch d.Kind {
				case GiveUp, Exhausted:
					t.Fatalf("at %s the policy is %s (%s) before the ladder ran", now, d.Kind, d.Status.Message)
				case Act:
					if d.Intent.Step == 2 {
						rollbackAt = now
					}
					if d.NewEpisode && now > 0 {
						t.Fatalf("at %s a new episode opened: the first one must go on", now)
					}
					st = ActedStatus(d.Intent, "id", t0.Add(now))
				case Healed:
					healedAt = now
					st = d.Status
				default:
					st = d.Status
				}
			}
			if rollbackAt != tc.wantRollbackAt {
				t.Errorf("rollback acted at %s, want %s (restartPods' timeout)", rollbackAt, tc.wantRollbackAt)
			}
			if healedAt != tc.wantVerifiedAt {
				t.Errorf("episode closed at %s, want %s (rollback's timeout after the symptom cleared)", healedAt, tc.wantVerifiedAt)
			}
			if o := outcomes[1]; o.Outcome != v1alpha1.OutcomeIneffective || !o.Since.Equal(t0) {
				t.Errorf("restartPods outcome = %+v, want Ineffective for the records since %s", o, t0)
			}
			if o := outcomes[2]; o.Outcome != v1alpha1.OutcomeVerified || !o.Since.Equal(t0.Add(tc.wantRollbackAt)) {
				t.Errorf("rollback outcome = %+v, want Verified", o)
			}
			if len(st.RecentEpisodes) != 1 {
				t.Errorf("giveUp counted %d episodes, want 1: each episode counts once", len(st.RecentEpisodes))
			}
		})
	}
}
