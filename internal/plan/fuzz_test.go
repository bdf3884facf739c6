package plan

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// FuzzRemediate drives a ladder through arbitrary sequences of symptom changes, clock
// steps and guard verdicts, and checks the invariants every decision must keep.
func FuzzRemediate(f *testing.F) {
	f.Add([]byte{1, 10, 0, 200, 1, 200, 0, 5})
	f.Add([]byte{1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 255, 255})
	f.Add([]byte{3, 120, 3, 120, 3, 120, 0, 0, 3, 1})
	f.Fuzz(func(t *testing.T, script []byte) {
		pol := ladder(&v1alpha1.GiveUp{Episodes: 3, Within: metav1.Duration{Duration: time.Hour}})
		st := v1alpha1.PolicyStatus{}
		now := t0
		for i := 0; i+1 < len(script); i += 2 {
			active := map[string]bool{"CrashLooping": script[i]&1 == 1, "Down": script[i]&2 == 2}
			now = now.Add(time.Duration(script[i+1]) * time.Second)
			d := Remediate(RemediationInput{Now: now, Policy: pol, State: st, Active: active})
			if d.Status.Message == "" || d.Status.Reason == "" {
				t.Fatalf("decision %s without reason or message", d.Kind)
			}
			if d.Status.Step < 0 || int(d.Status.Step) > len(pol.Remediate.Steps) {
				t.Fatalf("step %d out of range", d.Status.Step)
			}
			if !d.NextCheck.IsZero() && !d.NextCheck.After(now) && d.Kind != Act {
				t.Fatalf("%s asks to be rechecked in the past: %s <= %s", d.Kind, d.NextCheck, now)
			}
			if len(d.Status.RecentEpisodes) > int(pol.Remediate.GiveUp.Episodes) {
				t.Fatalf("more episodes than giveUp allows: %d", len(d.Status.RecentEpisodes))
			}
			switch d.Kind {
			case Act:
				if d.Intent == nil || d.Intent.Step < 1 {
					t.Fatalf("act without an action")
				}
				if script[i]&4 == 4 {
					st = HeldStatus(d.Intent, Verdict{Held: true, Reason: ReasonCooldown, Message: "held"})
				} else {
					st = ActedStatus(d.Intent, "id", now)
				}
			default:
				if d.Intent != nil {
					t.Fatalf("%s carries an intent", d.Kind)
				}
				st = d.Status
			}
		}
	})
}
