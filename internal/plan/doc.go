// Package plan is where Homeostat's judgement lives. Given what the monitor observed,
// which symptoms the analyzer found active, the policies' state from the ledger and a
// time, it decides:
//
//   - what each policy does next, as one Decision shared by every kind: the status to
//     show, at most one Intent, the verdicts (Verified, Ineffective, Unknown) on earlier
//     actions, and when to look again (Remediate, DecideAutoscale, DecideFailover), and
//     how a policy reads once its intent ended (Completed);
//   - what a remediation ladder does next (start an episode, act, wait, verify that a
//     recovery holds, escalate, give up);
//   - whether the guards, the node guard among them, let an action through, and whether
//     an intent an earlier run left may be carried on (CheckGuards, CheckResume, NodeGuard
//     with the admin's node policy);
//   - whether a node a node action cordoned, and nobody else, is uncordoned now that it
//     is healthy again (DecideUncordon);
//   - an autoscaler's replicas, as the HPA would, and a failover's primary;
//   - how shared healing policies merge into an app's own, what an enforced
//     ClusterHealingPolicy replaces there, and how its guards bound the app's (Merge);
//   - the app's summary: its health rollup, its phase, and the conditions its status
//     carries (Summarize);
//   - the cluster-wide storm breaker's rule: when too many apps are unhealthy at once for
//     disruptive actions to run (Storm).
//
// It is pure: no client, no goroutines, no time.Now(). Every input, including the clock,
// is passed in, and every output carries a reason a person can act on, so each decision
// can be table-tested, replayed from recorded inputs, and explained in status. Counting
// the apps, keeping state between reconciles and writing status are the controllers'.
package plan
