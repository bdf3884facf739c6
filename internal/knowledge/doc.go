// Package knowledge is the ledger Homeostat keeps in an AutonomicApp's status: action
// records (an intent written before its effector runs, its result after), the bounded
// history, and the counts the guards read from it (recent action times, the last
// action). The ledger is what lets a restarted operator resume a ladder at the step it
// was on and never act twice.
//
// It only reads and edits a status value; it never talks to the API server and never
// reads the clock: times are passed in.
package knowledge
