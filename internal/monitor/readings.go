package monitor

import (
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/text"
)

// Bounds of a sensor's history: the samples younger than HistoryWindow, at most
// HistoryLimit of them, whichever is fewer. They cover the default forecast history
// (10m) at the default interval (15s) with room to spare, and cap memory at a few KiB per
// sensor however short the interval.
const (
	HistoryWindow = 15 * time.Minute
	HistoryLimit  = 512
)

// maxNotifiedFailures is the highest failureThreshold the API allows for an autoscaler's
// onSensorFailure: every failed poll up to this count notifies the controller, so a
// Fallback threshold is always seen; beyond it a sensor that keeps failing the same way
// is quiet.
const maxNotifiedFailures = 100

// Reading is the last poll of one sensor.
type Reading struct {
	// Value is the last good value; it is what the sensor reads while Err is empty.
	// After a failure it still holds the last good value, for status, but the sensor
	// is unavailable.
	Value float64
	// Err says why the sensor is unavailable; empty while it is available.
	Err string
	// At is when Value was read; zero if the sensor never read a value.
	At time.Time
	// ConsecutiveFailures counts failed polls since the last success.
	ConsecutiveFailures int
	// Pods details the pods behind Value, for the HPA's missing-data rules; set only by
	// resource sensors, whose value is an average over a component's pods, and nil for
	// every other kind. Like Value, it is the last good poll's.
	Pods *PodCounts
}

// PodCounts are the pods of a component behind a resource sensor's value, grouped as
// the HPA groups them (groupPods) for its missing-data rules: terminating and finished
// pods are left out, pending pods are unready, a pod without a metric is missing, a
// pod that is not ready is unready, and the rest are ready.
type PodCounts struct {
	// Ready are the ready pods that reported a metric: the value is their average.
	Ready int
	// Missing are the running pods that reported no metric (just started, or not
	// scraped yet): the HPA counts them as using 100% of their request on a scale down
	// and 0% on a scale up.
	Missing int
	// Unready are the pending pods, and the running pods that are not ready but
	// reported a metric: the HPA counts them as using 0% on a scale up and ignores them
	// otherwise.
	Unready int
}

// Available says whether the sensor has a current value.
func (r Reading) Available() bool { return r.Err == "" && !r.At.IsZero() }

// maxStatusError is the API's bound on status.sensors[].error.
const maxStatusError = 1024

// Status is the reading as the app's status.sensors[] entry of the named sensor. The
// value is the shortest decimal that reads back as the same float64.
func (r Reading) Status(name string) v1alpha1.SensorStatus {
	s := v1alpha1.SensorStatus{Name: name, Error: text.Truncate(r.Err, maxStatusError), ConsecutiveFailures: int32(min(r.ConsecutiveFailures, math.MaxInt32))}
	if !r.At.IsZero() {
		s.Value = strconv.FormatFloat(r.Value, 'g', -1, 64)
		s.ObservedAt = &metav1.Time{Time: r.At}
	}
	return s
}

// Sample is one good value of a sensor's history.
type Sample struct {
	At    time.Time
	Value float64
}

// Readings is the in-memory store of the polled sensors' last readings and recent
// history, keyed by app and sensor. The poller writes it; the app reconciler reads it.
// It is safe for concurrent use. It lives in memory only: after a restart (or a change
// of leader) sensors are polled again at once, and history starts over.
type Readings struct {
	mu   sync.RWMutex
	apps map[types.NamespacedName]map[string]*sensorRecord
}

type sensorRecord struct {
	last    Reading
	history []Sample // oldest first
}

// NewReadings returns an empty store.
func NewReadings() *Readings {
	return &Readings{apps: map[types.NamespacedName]map[string]*sensorRecord{}}
}

// Get returns a copy of the app's readings by sensor name, available or not. A declared
// sensor that was not polled yet is absent.
func (r *Readings) Get(app types.NamespacedName) map[string]Reading {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string]Reading, len(r.apps[app]))
	for name, rec := range r.apps[app] {
		rd := rec.last
		rd.Pods = clonePods(rd.Pods)
		out[name] = rd
	}
	return out
}

// Values returns the value of each available sensor of the app: what symptom
// expressions read as `sensors`. An unavailable sensor is absent, so `has(sensors.x)`
// is false while it fails.
func (r *Readings) Values(app types.NamespacedName) map[string]float64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string]float64, len(r.apps[app]))
	for name, rec := range r.apps[app] {
		if rec.last.Available() {
			out[name] = rec.last.Value
		}
	}
	return out
}

// History returns a copy of the sensor's recent good values, oldest first: those
// younger than HistoryWindow (measured from the newest), at most HistoryLimit.
func (r *Readings) History(app types.NamespacedName, sensor string) []Sample {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if rec := r.apps[app][sensor]; rec != nil {
		return slices.Clone(rec.history)
	}
	return nil
}

// Forget drops everything about the app.
func (r *Readings) Forget(app types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.apps, app)
}

// Suspend marks every available reading unavailable with reason, keeping its last value
// and the history: the values are no longer being read (this replica lost its Lease),
// so nothing may act on them until a poll reads them again. It is not a failure of the
// sensor: its count of consecutive failures is left alone.
func (r *Readings) Suspend(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, recs := range r.apps {
		for _, rec := range recs {
			if rec.last.Err == "" {
				rec.last.Err = reason
			}
		}
	}
}

// forgetSensor drops one sensor of the app.
func (r *Readings) forgetSensor(app types.NamespacedName, sensor string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.apps[app], sensor)
	if len(r.apps[app]) == 0 {
		delete(r.apps, app)
	}
}

// record stores the outcome of one poll at time at (value and pods, or err) and says
// whether the controller should hear of it: the sensor became available or
// unavailable, its value or pod counts changed, its error changed, or it failed again
// with at most maxNotifiedFailures failures in a row. A poll that read the same as
// before changes nothing worth a reconcile.
func (r *Readings) record(app types.NamespacedName, sensor string, value float64, pods *PodCounts, err error, at time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	recs := r.apps[app]
	if recs == nil {
		recs = map[string]*sensorRecord{}
		r.apps[app] = recs
	}
	rec := recs[sensor]
	known := rec != nil
	if !known {
		rec = &sensorRecord{}
		recs[sensor] = rec
	}
	old := rec.last
	if err == nil {
		rec.last = Reading{Value: value, At: at, Pods: clonePods(pods)}
		rec.history = appendSample(rec.history, Sample{At: at, Value: value})
		return !known || !old.Available() || old.Value != value || !samePods(old.Pods, pods)
	}
	msg := err.Error()
	if msg == "" {
		msg = "the poll failed without saying why"
	}
	rec.last.Err = msg
	rec.last.ConsecutiveFailures = old.ConsecutiveFailures + 1
	return !known || old.Err != msg || rec.last.ConsecutiveFailures <= maxNotifiedFailures
}

// clonePods copies the counts, so the store shares no memory with a probe or a caller.
func clonePods(p *PodCounts) *PodCounts {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

func samePods(a, b *PodCounts) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// appendSample adds s and drops the samples beyond the history's bounds.
func appendSample(h []Sample, s Sample) []Sample {
	h = append(h, s)
	drop := max(0, len(h)-HistoryLimit)
	cutoff := s.At.Add(-HistoryWindow)
	for drop < len(h) && h[drop].At.Before(cutoff) {
		drop++
	}
	if drop == 0 {
		return h
	}
	// Shift rather than reslice, so the backing array does not grow without bound.
	return slices.Delete(h, 0, drop)
}
