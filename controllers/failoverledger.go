package controllers

import (
	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/knowledge"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// planChange is a failover change read from the ledger as an election reads it; nil
// when there is none. The record's phases are the plan's, string for string.
func planChange(ch *knowledge.FailoverChange) *plan.FailoverChange {
	if ch == nil {
		return nil
	}
	return &plan.FailoverChange{Phase: plan.FailoverPhase(ch.Phase), Component: ch.Component, From: ch.From,
		At: ch.At, Reason: ch.Reason}
}

// ladderNames names the app's remediation policies: the ladders whose failover action
// can demote a failover policy's primary.
func ladderNames(app *v1alpha1.AutonomicApp) []string {
	var out []string
	for _, p := range app.Spec.Policies {
		if p.Remediate != nil {
			out = append(out, p.Name)
		}
	}
	return out
}
