package controllers

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestParseClusterKinds(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []schema.GroupKind
		wantErr string
	}{
		{in: ""},
		{in: " , "},
		{in: "Node", want: []schema.GroupKind{{Kind: "Node"}}},
		{in: "Node, StorageClass.storage.k8s.io,Node", want: []schema.GroupKind{{Kind: "Node"}, {Group: "storage.k8s.io", Kind: "StorageClass"}}},
		{in: "storage.k8s.io/StorageClass", wantErr: "is not a kind as Kind.group"},
		{in: "Secret", wantErr: "object sensors never read Secrets"},
		{in: "Node,secret", wantErr: "object sensors never read Secrets"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseClusterKinds(tc.in)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %v, %v; want an error containing %q", got, err, tc.wantErr)
			case tc.wantErr == "" && (err != nil || !slices.Equal(got, tc.want)):
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
