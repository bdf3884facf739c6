// Package analyze is the Analyze stage of the MAPE-K loop: it turns what the Monitor
// stage observed into symptoms.
//
// It decides:
//
//   - whether an app's symptom expressions are valid: each is CEL over `components`,
//     `sensors` and `app` that must compile, return a bool and name only declared
//     components, component fields, sensors and app fields (Compile, ValidateApp, the
//     latter also checking the policies' references to symptoms and components);
//   - whether each symptom's expression holds for a given Input (Compiled.Eval);
//   - whether each symptom is active, with `for` / `clearFor` hysteresis, and when the
//     next pending change falls due (Step, Advance), so the controller requeues then.
//
// It never does I/O: no Kubernetes client, no sensor polling, no status writes, no
// Events, no logging. It never reads the clock: `now` is an argument, so every decision
// is a pure function that a table test with a fake clock can replay. Its only state is
// a bounded, concurrency-safe cache of compiled expressions.
//
// Evaluation never panics: an expression that fails (for example it reads a sensor that
// is unavailable without guarding it with has()) yields an Evaluation with Err set, which
// hysteresis counts as not holding.
package analyze
