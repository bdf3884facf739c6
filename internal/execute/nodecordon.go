package execute

import (
	"context"
	"fmt"
	"strings"

	"github.com/homeostat-dev/homeostat/internal/rights"
)

func init() { register(KindCordonNode, cordonNode{}) }

// cordonNode marks the nodes that host a component's unhealthy pods unschedulable, so
// no new pod lands there; the pods already there keep running. It stamps the action id
// and the app on each node, which is how the node guard knows the app holds it.
type cordonNode struct{}

func (cordonNode) prepare(req Request) (Prepared, error) {
	return prepareNodes(req, req.Action.CordonNode, "cordon", false)
}

// accesses are the patches of the nodes the record names. Nodes are cluster-scoped: a
// tenant's ServiceAccount has no rights on them unless the cluster admin grants them.
func (cordonNode) accesses(req Request) ([]rights.Access, error) {
	return nodePatches(req.Record.Objects), nil
}

func (cordonNode) execute(ctx context.Context, e *Effectors, req Request) Outcome {
	if len(req.Record.Objects) == 0 {
		return failed("The ledger record names no nodes to cordon")
	}
	var cordoned, already, gone, problems []string
	for i, name := range req.Record.Objects {
		if err := ctx.Err(); err != nil {
			problems = append(problems, fmt.Sprintf("Stopped before cordoning %s: %v", namesOf(req.Record.Objects[i:]), err))
			break
		}
		switch res, msg := e.cordon(ctx, name, stampOf(req)); res {
		case nodeCordoned:
			cordoned = append(cordoned, name)
		case nodeWasCordoned:
			already = append(already, name)
		case nodeGone:
			gone = append(gone, name)
		default:
			problems = append(problems, strings.TrimSuffix(msg, "."))
		}
	}

	summary := cordonSummary(len(req.Record.Objects), cordoned, already, gone)
	if len(problems) > 0 {
		return failed("%s. %s", strings.Join(problems, "; "), summary)
	}
	return succeeded("%s", summary)
}

// cordonSummary says what became of the total nodes a cordonNode record names.
func cordonSummary(total int, cordoned, already, gone []string) string {
	summary := fmt.Sprintf("Cordoned %d of %d nodes", len(cordoned), total)
	if len(cordoned) > 0 {
		summary += " (" + namesOf(cordoned) + ")"
	}
	if len(already) > 0 {
		summary += fmt.Sprintf("; %d already cordoned by this action (%s)", len(already), namesOf(already))
	}
	if len(gone) > 0 {
		summary += fmt.Sprintf("; %d gone from the cluster (%s)", len(gone), namesOf(gone))
	}
	return summary
}

// observe reports a cordon as done once every node the record names is unschedulable and
// stamped with the action id and the app. A node that is gone holds no effect to see.
func (cordonNode) observe(ctx context.Context, e *Effectors, req Request) (Outcome, bool) {
	if !e.observeCordons(ctx, req) {
		return Outcome{}, false
	}
	n := len(req.Record.Objects)
	return succeeded("%s", cordonSummary(n, nil, req.Record.Objects, nil)), true
}
