package scheduler

import (
	"fmt"
	"strconv"
	"strings"
)

// Cron is a parsed five-field cron expression (see the package
// documentation for the syntax and the Vixie day rule).
type Cron struct {
	expr                          string
	minute, hour, dom, month, dow uint64 // bit i set: value i matches
	domStar, dowStar              bool   // field text began with "*"
}

// CronError describes a malformed cron expression.
type CronError struct {
	Expr  string
	Field string // "" when the expression as a whole is wrong
	Msg   string
}

func (e *CronError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("cron %q: %s", e.Expr, e.Msg)
	}
	return fmt.Sprintf("cron %q: %s field: %s", e.Expr, e.Field, e.Msg)
}

type cronField struct {
	name     string
	min, max int
	names    []string // names[i] stands for min+i
}

var cronFields = [5]cronField{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day-of-month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
		"JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}},
	{name: "day-of-week", min: 0, max: 7, names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}},
}

var cronMacros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// ParseCron parses a cron expression: five fields or a macro such as
// "@daily".
func ParseCron(expr string) (*Cron, error) {
	text := strings.TrimSpace(expr)
	if m, ok := cronMacros[strings.ToLower(text)]; ok {
		text = m
	}
	fields := strings.Fields(text)
	if len(fields) != 5 {
		return nil, &CronError{Expr: expr, Msg: fmt.Sprintf("want 5 fields (minute hour day-of-month month day-of-week), got %d", len(fields))}
	}
	var sets [5]uint64
	for i, f := range fields {
		set, err := cronFields[i].parse(f)
		if err != nil {
			return nil, &CronError{Expr: expr, Field: cronFields[i].name, Msg: err.Error()}
		}
		sets[i] = set
	}
	if sets[4]&(1<<7) != 0 { // 7 is Sunday too
		sets[4] = sets[4]&^(1<<7) | 1
	}
	c := &Cron{expr: strings.TrimSpace(expr), minute: sets[0], hour: sets[1], dom: sets[2],
		month: sets[3], dow: sets[4], domStar: fields[2][0] == '*', dowStar: fields[4][0] == '*'}
	if msg := c.impossible(); msg != "" {
		return nil, &CronError{Expr: expr, Msg: msg}
	}
	return c, nil
}

// String returns the expression as given.
func (c *Cron) String() string { return c.expr }

// daysInMonth is the longest length of each month (February 29).
var daysInMonth = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// impossible reports why an expression can never fire, or "". Only the
// day-of-month AND day-of-week case can: with OR, every week has a match.
func (c *Cron) impossible() string {
	if !c.domStar && !c.dowStar {
		return ""
	}
	for m := 1; m <= 12; m++ {
		if c.month&(1<<m) == 0 {
			continue
		}
		for d := 1; d <= daysInMonth[m]; d++ {
			if c.dom&(1<<d) != 0 {
				return ""
			}
		}
	}
	return "no selected day of month occurs in the selected months"
}

// parse reads a comma-separated list of items into a bit set.
func (f *cronField) parse(text string) (uint64, error) {
	var set uint64
	for item := range strings.SplitSeq(text, ",") {
		bits, err := f.parseItem(item)
		if err != nil {
			return 0, err
		}
		set |= bits
	}
	return set, nil
}

// parseItem reads "*", "v", "a-b", each optionally followed by "/step"
// ("v/step" means v-max/step).
func (f *cronField) parseItem(item string) (uint64, error) {
	rng, stepText, hasStep := strings.Cut(item, "/")
	lo, hi := f.min, f.max
	if rng != "*" {
		from, to, isRange := strings.Cut(rng, "-")
		var err error
		if lo, err = f.value(from); err != nil {
			return 0, err
		}
		switch {
		case isRange:
			if hi, err = f.value(to); err != nil {
				return 0, err
			}
			if f.name == "day-of-week" && hi == 0 && lo > 0 {
				hi = 7 // MON-SUN
			}
		case !hasStep:
			hi = lo
		}
	}
	step := 1
	if hasStep {
		n, err := f.number(stepText)
		if err != nil || n < 1 || n > f.max {
			return 0, fmt.Errorf("bad step %q in %q", stepText, item)
		}
		step = n
	}
	if lo > hi {
		return 0, fmt.Errorf("range %q runs backwards", item)
	}
	var set uint64
	for v := lo; v <= hi; v += step {
		set |= 1 << v
	}
	return set, nil
}

// value reads a number in the field's range or one of its names.
func (f *cronField) value(text string) (int, error) {
	for i, name := range f.names {
		if strings.EqualFold(text, name) {
			return f.min + i, nil
		}
	}
	n, err := f.number(text)
	if err != nil {
		return 0, fmt.Errorf("bad value %q", text)
	}
	if n < f.min || n > f.max {
		return 0, fmt.Errorf("value %d out of range %d-%d", n, f.min, f.max)
	}
	return n, nil
}

// number reads a short unsigned decimal number.
func (f *cronField) number(text string) (int, error) { return smallNumber(text, 4) }

// smallNumber reads an unsigned decimal number of at most maxLen digits.
func smallNumber(text string, maxLen int) (int, error) {
	if text == "" || len(text) > maxLen {
		return 0, strconv.ErrSyntax
	}
	for _, r := range text {
		if r < '0' || r > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.Atoi(text)
}
