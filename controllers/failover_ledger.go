package controllers

// This file holds the second half of act(): recording decided intents and carrying them
// out. act() (autonomicapp_controller.go) prepares an action's targets from the action
// itself and checks the guards; a failover policy prepares its own change (a phase of a
// move, not an action a user wrote) and checks the guards itself, then both go through
// carryOut. It is meant to move next to act(), which then ends in `return r.carryOut(...)`.

import (
	"context"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/execute"
	"github.com/homeostat-dev/homeostat/internal/knowledge"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

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
// records are written as Skipped and nothing runs. With no target prepared, the action is
// recorded once as Failed with prepareErr (so a ladder moves on, and a failover waits
// before it tries again).
func (r *AppReconciler) carryOut(ctx context.Context, s *session, in actInput, ready []preparedTarget, prepareErr error) (actResult, error) {
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
			Result: v1alpha1.ResultPending, DryRun: app.Spec.Mode == v1alpha1.ModeDryRun, DetectedAt: &detected,
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
		return actResult{LastID: last}, nil
	}

	// Knowledge first: the intents are durable before anything changes.
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
