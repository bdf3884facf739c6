// Package replay backtests an app's healing policies: it replays recorded sensor history
// through the same pure code the manager decides with, under a fake clock, and reports
// the decisions the policies would have made.
//
// Each step of the range is one reconcile, in the manager's order (controllers'
// reconcile, analyze, runPolicies, apply, act): the symptoms are evaluated over the
// recorded component sensors and polled sensors (analyze.Compiled.Eval) with their
// for/clearFor hysteresis (analyze.Step); then every policy, in spec order, is decided
// by plan (plan.Remediate, plan.DecideAutoscale with the recommendations and scale
// events kept between steps as the manager keeps them); an intent passes plan.CheckGuards
// with the cooldown and maxActions counted from the simulated ledger (internal/knowledge,
// the manager's own ledger helpers), and is then recorded as carried out; plan's verdicts
// on earlier actions are written into their records. It decides, per run:
//
//   - the decisions: each action carried out, each intent a guard held, each ladder that
//     healed, ran out or gave up, each autoscaler that started holding, with plan's reason;
//   - the replicas of each autoscaled component over time;
//   - per policy, the actions, the holds, the episodes, the flaps, the replicas (min, max,
//     time-weighted mean) and, per autoscale metric, the time outside its band or target;
//   - and, for two runs over the same history, how they compare (Compare).
//
// A flap is a scale of an autoscale policy that reverses the direction of the same
// policy's previous scale within the flap window: the larger of the policy's scale-down
// stabilization window and 5 minutes (FlapMinWindow). The window widens with the
// stabilization window because a scale down can only come that long after the load fell,
// so a scale up soon after it is the signature of an autoscaler chasing noise. A metric's
// time outside its goal counts the steps at which its value (after the load model) was
// above or below its band, or its ratio to its target outside the behavior's tolerance.
//
// Modelling assumptions, each a choice a backtest has to make:
//
//   - The replay starts as a freshly started manager: no symptom active, no episode open,
//     no autoscaler memory, an empty ledger. Decisions fall on step times; the manager,
//     event-driven, may decide up to one step earlier.
//   - The policies run as if the app were Active: its mode, the paused annotation, the
//     storm breaker, a stale cache, the node guard and the tenant's rights are not
//     replayed. Another autoscaler of the workload (an HPA) is not recorded and not
//     assumed.
//   - Scaling is simulated. Each autoscaled component starts at the replicas given (the
//     recorded desiredReplicas) and changes only by the simulated actions. The load is
//     conserved, read the way plan's recommender reads each metric: a metric plan takes
//     as a per-replica figure (an averageUtilization target, a per-pod average; a value
//     target, which plan scales by value/target; a band, whose total plan takes as the
//     value times the replicas) reads the recorded value times the recorded replicas
//     divided by the simulated replicas (at zero simulated replicas, the load of one);
//     an averageValue metric is a total that plan divides by the replicas itself, so it
//     reads as recorded. Symptoms read every sensor as recorded.
//   - A sensor absent from a step is unavailable; its consecutive failed polls are
//     estimated from how long it has been absent and its interval (for onSensorFailure).
//     Resource sensors' pod counts are not recorded: the simulated replicas count as ready.
//     A predictive autoscaler forecasts from the values the replay fed it over the last
//     15 minutes, as the manager keeps them.
//   - Every action succeeds at once, except a scale that would change nothing, which
//     fails as its effector does. The effect of remediation cannot be simulated: the
//     component sensors show what really happened, so a ladder that acted differently
//     from the real one still sees the recorded symptoms. maxUnhealthyPods reads the
//     recorded pods: desiredReplicas in all, those not ready unhealthy.
//   - Failover policies are not simulated: their election reads the Service's selector and
//     the workloads' selectors and pod labels, which are not recorded, and their effect
//     (where traffic goes) shapes the recorded health. Result.NotSimulated says so per
//     policy.
//   - A step without any recorded component sensor is a gap: the manager (or the
//     scraping) was not running, and nothing is decided.
//
// It never does I/O and never reads the clock: the history and the range are its input.
// It imports only the standard library, the API types (with the apimachinery types they
// are made of), analyze, plan, and knowledge for the ledger's rules.
package replay
