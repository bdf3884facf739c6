// Package monitoring holds Homeostat's monitoring mixin (the Grafana dashboards in
// dashboards/, the alerts in prometheus-rules.yaml) and reads the dashboards' queries,
// with their template variables filled in, for the tests that parse them and run them
// against a real Prometheus. It decides nothing and is not linked into the manager.
package monitoring

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
)

// Dashboards are the dashboards' JSON files, under dashboards/.
//
//go:embed dashboards/*.json
var Dashboards embed.FS

// Query is one query of a dashboard panel.
type Query struct {
	// Dashboard is the dashboard's file name; Panel the panel's title; RefID the target's.
	Dashboard, Panel, RefID string
	// Expr is the PromQL with the template variables filled in.
	Expr string
}

func (q Query) String() string {
	return fmt.Sprintf("%s, panel %q, target %s: %s", q.Dashboard, q.Panel, q.RefID, q.Expr)
}

// panel is what a query needs of a Grafana panel; a row holds panels of its own.
type panel struct {
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// variable matches Grafana's three spellings of a variable: $name, ${name} (with an
// optional :format) and [[name]].
var variable = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

// DashboardQueries returns every query of every panel (rows included) of the dashboard
// file (a name under dashboards/), with each variable replaced by its value in vars
// ("__rate_interval" for $__rate_interval). A variable vars lacks is an error.
func DashboardQueries(file string, vars map[string]string) ([]Query, error) {
	b, err := fs.ReadFile(Dashboards, "dashboards/"+file)
	if err != nil {
		return nil, err
	}
	var d struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var out []Query
	var missing []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				if t.Expr == "" {
					continue
				}
				expr := variable.ReplaceAllStringFunc(t.Expr, func(m string) string {
					sub := variable.FindStringSubmatch(m)
					name := sub[1] + sub[2] + sub[3]
					v, ok := vars[name]
					if !ok {
						missing = append(missing, name)
						return m
					}
					return v
				})
				out = append(out, Query{Dashboard: file, Panel: p.Title, RefID: t.RefID, Expr: expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if len(missing) > 0 {
		slices.Sort(missing)
		return out, fmt.Errorf("%s: no value for the variables %s", file, strings.Join(slices.Compact(missing), ", "))
	}
	return out, nil
}
