// Package fair shares a fixed set of workers among tenants. Its Queue hands out items
// round-robin over the tenants that have some waiting, and never more than a set number
// of one tenant's items at once, so one tenant's slow work (sensors whose endpoints hang,
// webhooks whose receivers stall) holds at most its share of the workers and never
// delays another tenant's items by more than a turn.
//
// The manager's tenants are namespaces: the sensor poller and the webhook effector each
// run one Queue. The package decides nothing about what an item is or when it is due; it
// starts no goroutine and reads no clock.
package fair
