// Package text holds the string helpers that every stage of the loop shares, so that each
// job has one implementation: today Truncate, which bounds a message to what the API
// accepts.
//
// It is a leaf: it imports only the standard library, so any package may import it
// (internal/plan, which imports only the standard library and the API types, does not:
// the controller bounds the plan's messages where it writes them to status).
package text
