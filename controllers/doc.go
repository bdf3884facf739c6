// Package controllers holds Homeostat's reconcilers, one per kind. Each is thin: it
// gathers (internal/monitor), analyzes (internal/analyze), plans (internal/plan), records
// the intent (internal/knowledge), executes (internal/execute) and writes status once.
//
// The reconcilers own the wiring (watches, indexes, the cache transform, metrics, Events)
// and the order of the ledger writes; they hold no judgement of their own.
package controllers
