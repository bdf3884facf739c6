package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"sigs.k8s.io/yaml"
)

// print writes v as -o asks: JSON or YAML of v, or the text render draws.
func (o *Options) print(v any, render func(t *Text)) error {
	return printTo(o.Streams.Out, o.Output, o.width(), v, render)
}

func printTo(w io.Writer, format string, width int, v any, render func(t *Text)) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding JSON: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding YAML: %w", err)
		}
		_, err = w.Write(b)
		return err
	}
	t := &Text{Width: width}
	render(t)
	_, err := io.WriteString(w, t.String())
	return err
}

// Text lays out lines for a terminal of Width columns: long lines wrap at spaces and
// continue under their first character, indented as their first line.
type Text struct {
	Width int
	b     strings.Builder
}

func (t *Text) String() string { return t.b.String() }

// Line writes one line at indent (in columns), wrapped to the width; continuation lines
// are indented by hang more columns.
func (t *Text) Line(indent, hang int, s string) {
	pad := strings.Repeat(" ", indent)
	for i, l := range Wrap(s, t.Width-indent, hang) {
		if i > 0 {
			t.b.WriteString(pad + strings.Repeat(" ", hang))
		} else {
			t.b.WriteString(pad)
		}
		t.b.WriteString(l)
		t.b.WriteByte('\n')
	}
}

// Linef is Line with a format.
func (t *Text) Linef(indent, hang int, format string, args ...any) {
	t.Line(indent, hang, fmt.Sprintf(format, args...))
}

// Blank writes an empty line.
func (t *Text) Blank() { t.b.WriteByte('\n') }

// Table writes rows as columns separated by two spaces, each column as wide as its widest
// cell; the last column wraps to the width, under its own start. With no rows it writes
// nothing.
func (t *Text) Table(indent int, rows [][]string) {
	if len(rows) == 0 {
		return
	}
	n := 0
	for _, r := range rows {
		n = max(n, len(r))
	}
	widths := make([]int, n)
	for _, r := range rows {
		for i, c := range r[:len(r)-1] {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		col := indent
		for i, c := range r[:len(r)-1] {
			b.WriteString(c)
			pad := widths[i] - utf8.RuneCountInString(c) + 2
			b.WriteString(strings.Repeat(" ", pad))
			col += widths[i] + 2
		}
		last := r[len(r)-1]
		room := t.Width - col
		if room < 20 {
			// Too narrow for columns: the last cell goes on lines of its own.
			t.Line(indent, 0, strings.TrimRight(b.String(), " "))
			t.Line(indent+4, 0, last)
			continue
		}
		lines := Wrap(last, room, 0)
		t.b.WriteString(strings.Repeat(" ", indent) + b.String() + lines[0] + "\n")
		for _, l := range lines[1:] {
			t.b.WriteString(strings.Repeat(" ", col) + l + "\n")
		}
	}
}

// Wrap breaks s into lines of at most width columns at spaces; lines after the first
// are hang columns narrower (they are indented by the caller). A word longer than a line
// stays whole.
func Wrap(s string, width, hang int) []string {
	width = max(width, 10)
	var lines []string
	var cur strings.Builder
	curLen := 0
	limit := width
	for _, word := range strings.Fields(s) {
		wl := utf8.RuneCountInString(word)
		if curLen > 0 && curLen+1+wl > limit {
			lines = append(lines, cur.String())
			cur.Reset()
			curLen = 0
			limit = max(width-hang, 10)
		}
		if curLen > 0 {
			cur.WriteByte(' ')
			curLen++
		}
		cur.WriteString(word)
		curLen += wl
	}
	if curLen > 0 || len(lines) == 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

// short is a duration as a spec would say it: 30s, 2m, 1h30m, 1m30s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
