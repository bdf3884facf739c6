package knowledge

import (
	"strings"

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
