package controllers

import (
	"strings"
	"time"
	"unicode"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func durationOf(d *metav1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.Duration
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func joinList(items []string) string { return strings.Join(items, "; ") }

// titleWord turns "became active" into "BecameActive" for an Event reason.
func titleWord(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if r == ' ' {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

func klogKey(o client.Object) klog.ObjectRef { return klog.KObj(o) }
