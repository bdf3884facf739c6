// Package controllers holds Homeostat's reconcilers, one per kind. Each is thin: it
// gathers (internal/monitor and the cache), analyzes (internal/analyze), asks plan for
// one plan.Decision per policy, carries every decision out on one act path (act.go:
// guards, the tenant's rights of internal/rights, the intent recorded in
// internal/knowledge, the effectors of internal/execute, plan.Completed) and writes
// status once. The node controller closes the loop of node actions: it lifts a cordon
// Homeostat made, and nobody else, once plan.DecideUncordon says the node is healthy
// again.
//
// The reconcilers own the wiring: watches, indexes, the cache transform, metrics, Events,
// the order of the ledger writes, and the bookkeeping that outlives a reconcile (the
// storm breaker's count of unhealthy apps and the flip that reconciles every app, an
// autoscaler's recommendations and scale events). The judgement is plan's: each
// policy's next move and its verdicts on earlier actions, the guards, an app's health,
// phase and conditions (plan.Summarize) and the storm breaker's rule (plan.Storm); the
// controllers copy what plan decides into status. See docs/architecture.md.
package controllers
