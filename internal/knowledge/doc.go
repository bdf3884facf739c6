// Package knowledge is the ledger Homeostat keeps in an AutonomicApp's status: action
// records (an intent written before its effector runs, its result after), the bounded
// history, and what the stages read back from it: the counts the guards read (recent
// action times, the last action) and a failover policy's history (its last changes and
// traffic move, and the primaries ladders demoted), as typed values the controller maps
// to the plan's inputs. It also keeps each record's outcome: the verdicts plan reaches
// (Judge), the records still to be judged (Unjudged, LastUnjudged), and Unknown at once
// for a record that changed nothing. The ledger is what lets a restarted operator resume
// a ladder at the step it was on and never act twice.
//
// It only reads and edits a status value; it never talks to the API server and never
// reads the clock: times are passed in. It imports only the API types and internal/text.
package knowledge
