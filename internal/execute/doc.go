// Package execute is the Execute stage of the MAPE-K loop: the effectors that change the
// cluster on an app's behalf, one file per action.
//
// An action goes through two calls. Prepare fixes its concrete targets (the pods to evict,
// the revision to return to, the absolute replica count) from what the monitor gathered,
// before the controller writes the intent to the ledger; it reads nothing from the API
// server. When the app acts as a ServiceAccount (Request.Subject), Prepare also lists the
// requests the action will make on the app's behalf (Prepared.Accesses; Accesses for a
// recorded intent), for the controller to authorize as that ServiceAccount first, and
// refuses outright what no grant can allow (a runJob's Job that would run as another
// ServiceAccount). Execute then carries out the intent as recorded. Every effector is idempotent:
// it stamps the action id (annotation autonomic.homeostat.dev/action-id) on what it
// changes, and a second Execute of the same record recognises its own earlier effect (or
// repeats a deterministic write the API server treats as a no-op), so a crash and a retry
// never act twice. Execute reports an Outcome and emits an Event on the app. Observe
// only reads: it says whether a recorded intent's effect is already complete on its
// target and with what outcome, so that a resumed intent a guard now holds is recorded
// with its real outcome when its effect is there, and cancelled when it is not.
//
// An action that takes long never holds the reconcile: runJob and drainNode report
// Pending and are executed again on a later reconcile; a webhook's POST, with its
// retries, runs in the background on a WebhookRunner, a few at a time and shared fairly
// among namespaces, and a later Execute collects its outcome.
// One effector is not an app's action: UncordonNode, beside the cordon it undoes, lifts a
// node action's cordon when the node controller's plan.DecideUncordon says so.
//
// The package decides nothing: whether to act, and when, is the plan's judgement, and the
// guards run before Prepare. It never writes the app's status, never polls or waits for a
// rollout to finish, and never reads the wall clock for a decision: times it writes come
// from the ledger record.
package execute
