// Package controllers holds Homeostat's reconcilers, one per kind. Each is thin: it
// gathers (internal/monitor), analyzes (internal/analyze), plans (internal/plan), records
// the intent (internal/knowledge), executes (internal/execute) and writes status once.
//
// The reconcilers own the wiring: watches, indexes, the cache transform, metrics, Events,
// the order of the ledger writes, and the bookkeeping that outlives a reconcile (the
// storm breaker's count of unhealthy apps and the flip that reconciles every app). The
// judgement is plan's: an app's health, phase and conditions come from plan.Summarize,
// and the storm breaker engages by plan.Storm; the controllers copy what plan decides
// into status.
package controllers
