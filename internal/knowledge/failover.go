package knowledge

import (
	"slices"
	"strings"
	"time"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// failoverAction is the action name of failover records.
var failoverAction = v1alpha1.Action{Failover: &v1alpha1.FailoverAction{}}.Kind()

// FailoverOf reads what a failover record changes; ok is false for records of other
// actions and for failover records that do not say.
func FailoverOf(rec v1alpha1.ActionRecord) (fo v1alpha1.FailoverRecord, ok bool) {
	if rec.Action != failoverAction {
		return v1alpha1.FailoverRecord{}, false
	}
	if rec.Failover != nil {
		return *rec.Failover, true
	}
	return legacyFailover(rec)
}

// FailoverChange is a failover record read back from the ledger: what it changed, and
// when and why it was decided.
type FailoverChange struct {
	v1alpha1.FailoverRecord
	// At is when the intent was recorded.
	At time.Time
	// Reason is the record's reason, the sentence the decision gave.
	Reason string
}

func failoverChange(rec v1alpha1.ActionRecord, fo v1alpha1.FailoverRecord) *FailoverChange {
	return &FailoverChange{FailoverRecord: fo, At: rec.Time.Time, Reason: rec.Reason}
}

// FailoverHistory reads the failover policy's latest own change that took effect and
// its latest traffic move that took effect (the same record when the latest change was
// a move); nil when the ledger holds none. A ladder's demotion is not a change of the
// policy.
func FailoverHistory(st *v1alpha1.AutonomicAppStatus, policy string) (last, lastMove *FailoverChange) {
	for _, rec := range st.History {
		if rec.Policy != policy || rec.Result != v1alpha1.ResultSucceeded {
			continue
		}
		fo, ok := FailoverOf(rec)
		if !ok || fo.Phase == v1alpha1.FailoverDemote {
			continue
		}
		ch := failoverChange(rec, fo)
		if last == nil {
			last = ch
		}
		if fo.Phase == v1alpha1.FailoverMoveTraffic {
			return last, ch
		}
	}
	return last, nil
}

// LastFailoverRecord is the newest record of the failover policy's own changes,
// whatever its result; nil when there is none.
func LastFailoverRecord(st *v1alpha1.AutonomicAppStatus, policy string) *v1alpha1.ActionRecord {
	for i := range st.History {
		if rec := &st.History[i]; rec.Policy == policy && rec.Action == failoverAction {
			return rec
		}
	}
	return nil
}

// LatestFailoverChange is the app's newest action when it belongs to the failover
// policy's failover (one of its changes, or a ladder's demotion of its primary) and took
// effect; nil otherwise. A change that continues it is not held by cooldown.
func LatestFailoverChange(st *v1alpha1.AutonomicAppStatus, policy string) *FailoverChange {
	if len(st.History) == 0 {
		return nil
	}
	rec := st.History[0]
	fo, ok := FailoverOf(rec)
	if !ok || fo.Policy != policy || rec.Result != v1alpha1.ResultSucceeded {
		return nil
	}
	return failoverChange(rec, fo)
}

// DemotedPrimaries maps each primary of the failover policy that a remediation ladder's
// failover action demoted during the ladder's open episode to that ladder; nil when
// none is. ladders names the app's remediation policies: only their open episodes
// (status step and episodeStart set) count, and only demotions that took effect.
func DemotedPrimaries(st *v1alpha1.AutonomicAppStatus, policy string, ladders []string) map[string]string {
	var out map[string]string
	for _, ps := range st.Policies {
		if !slices.Contains(ladders, ps.Name) || ps.Step == 0 || ps.EpisodeStart == nil {
			continue
		}
		for _, rec := range st.History {
			if rec.Policy != ps.Name || rec.Result != v1alpha1.ResultSucceeded || rec.Time.Before(ps.EpisodeStart) {
				continue
			}
			if fo, ok := FailoverOf(rec); ok && fo.Phase == v1alpha1.FailoverDemote && fo.Policy == policy {
				if out == nil {
					out = map[string]string{}
				}
				out[fo.Component] = ps.Name
			}
		}
	}
	return out
}

// legacyFailover reads a failover record written before records had the failover field,
// when what it changes was kept as key=value entries of its Objects after the object
// itself: failover=<phase>, component=<candidate>, from=<candidate> and, for a ladder's
// Demote, policy=<failover policy> (else the record's own policy); a MoveTraffic named
// its Service as Service/<name>.
//
// It is the upgrade path, and nothing else may read that form: an intent recorded by
// the previous version can still be Pending when this one starts, and is resumed from
// what this returns, and the history the elections read keeps such records until newer
// ones push them out. Nothing writes the form any more.
func legacyFailover(rec v1alpha1.ActionRecord) (v1alpha1.FailoverRecord, bool) {
	fo := v1alpha1.FailoverRecord{Policy: rec.Policy}
	for _, o := range rec.Objects {
		if svc, ok := strings.CutPrefix(o, "Service/"); ok {
			fo.Service = svc
			continue
		}
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			continue
		}
		switch k {
		case "failover":
			fo.Phase = v1alpha1.FailoverPhase(v)
		case "policy":
			fo.Policy = v
		case "component":
			fo.Component = v
		case "from":
			fo.From = v
		}
	}
	if fo.Phase == "" || fo.Component == "" {
		return v1alpha1.FailoverRecord{}, false
	}
	return fo, true
}
