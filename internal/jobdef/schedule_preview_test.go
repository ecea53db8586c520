package jobdef

import (
	"errors"
	"testing"
	"time"
)

func TestNextRuns(t *testing.T) {
	now := time.Date(2026, 11, 22, 6, 7, 0, 0, time.Local)
	runs, after, err := NextRuns("*/30 * * * *", now, 3)
	want := []time.Time{now.Add(23 * time.Minute), now.Add(53 * time.Minute), now.Add(83 * time.Minute)}
	if err != nil || after != "" || len(runs) != 3 {
		t.Fatalf("*/30: %v %q %v", runs, after, err)
	}
	for i := range want {
		if !runs[i].Equal(want[i]) {
			t.Fatalf("*/30: %v, want %v", runs, want)
		}
	}
	if runs, after, err := NextRuns("after nightly", now, 3); err != nil || after != "nightly" || len(runs) != 0 {
		t.Fatalf("after nightly: %v %q %v", runs, after, err)
	}
	if runs, after, err := NextRuns("", now, 3); err != nil || after != "" || len(runs) != 0 {
		t.Fatalf("on demand: %v %q %v", runs, after, err)
	}
	_, _, err = NextRuns("0 25 * * *", now, 3)
	var fe *FieldError
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) || fe.Field != "schedule" || err.Error() != ValidateSchedule("0 25 * * *").Error() {
		t.Fatalf("0 25 * * *: %v", err)
	}
}
