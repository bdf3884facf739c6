package plan

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// ReasonForbidden is the reason of a policy whose intent waits because the tenant's
// rights refused the same action a moment ago.
const ReasonForbidden = "Forbidden"

// ForbiddenRetryDelay is how long a policy waits before it asks the tenant's rights
// again for an action they refused: rights change when a person grants a Role, not by
// themselves, and a policy that decides the same action on every pass (an autoscaler)
// would otherwise record the same refusal on every pass.
const ForbiddenRetryDelay = time.Minute

// CheckForbidden holds an intent of action at step (0 outside a ladder) on components
// (its targets' names; "" for an action without one) while the policy's newest record,
// last, is a refusal of the same action at the same step on one of them by the tenant's
// rights, younger than ForbiddenRetryDelay; the verdict says until when. Anything else
// passes: another action, step or component, a record that is not Forbidden, none. A
// ladder's next step is another step, so a refusal never slows a ladder down.
func CheckForbidden(last *v1alpha1.ActionRecord, action string, step int32, components []string, now time.Time) Verdict {
	if last == nil || last.Result != v1alpha1.ResultForbidden || last.Action != action || last.Step != step ||
		!slices.Contains(components, last.Component) {
		return Verdict{}
	}
	until := last.Time.Add(ForbiddenRetryDelay)
	if !now.Before(until) {
		return Verdict{}
	}
	return Verdict{Held: true, Reason: ReasonForbidden, Until: until,
		Message: fmt.Sprintf("the tenant's rights refused it at %s (action %s: %s); they are asked again at %s.",
			stamp(last.Time.Time), last.ID, strings.TrimSuffix(last.Message, "."), stamp(until))}
}
