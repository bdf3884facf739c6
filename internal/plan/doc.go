// Package plan is where Homeostat's judgement lives: given what the monitor observed,
// which symptoms the analyzer found active, the policy's state from the ledger and a
// time, it decides what a remediation ladder does next (start an episode, act, wait,
// escalate, give up) and whether the guards let an action through.
//
// It is pure: no client, no goroutines, no time.Now(). Every input, including the clock,
// is passed in, and every output carries a reason a person can act on, so each decision
// can be table-tested, replayed from recorded inputs, and explained in status.
package plan
