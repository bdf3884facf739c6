// Package execute is the Execute stage of the MAPE-K loop: the effectors that change the
// cluster on an app's behalf, one file per action.
//
// An action goes through two calls. Prepare fixes its concrete targets (the pods to evict,
// the revision to return to, the absolute replica count) from what the monitor gathered,
// before the controller writes the intent to the ledger; it reads nothing from the API
// server. Execute then carries out the intent as recorded. Every effector is idempotent:
// it stamps the action id (annotation autonomic.homeostat.dev/action-id) on what it
// changes, and a second Execute of the same record recognises its own earlier effect (or
// repeats a deterministic write the API server treats as a no-op), so a crash and a retry
// never act twice. Execute reports an Outcome and emits an Event on the app. Observe
// only reads: it says whether a recorded intent's effect is already complete on its
// target and with what outcome, so that a resumed intent a guard now holds is recorded
// with its real outcome when its effect is there, and cancelled when it is not.
//
// One effector is not an app's action: UncordonNode, beside the cordon it undoes, lifts a
// node action's cordon when the node controller's plan.DecideUncordon says so.
//
// The package decides nothing: whether to act, and when, is the plan's judgement, and the
// guards run before Prepare. It never writes the app's status, never polls or waits for a
// rollout to finish, and never reads the wall clock for a decision: times it writes come
// from the ledger record.
package execute
