// Package clock is Holdfast's one source of time. Code that reads the time,
// sleeps or waits on a timer takes a Clock — usually a Clock field of its
// options, nil meaning Real — instead of calling time.Now, time.Sleep or
// time.NewTimer, so that tests drive time with a Fake instead of waiting
// for it. The linter refuses time.Now outside this package.
//
//   - Real is the wall clock. Main wiring and tests construct it; a nil
//     Clock in options means Real (Or).
//   - Fake is virtual time for tests: it moves only when the test calls
//     Set or Advance, or when code Sleeps on it (Sleep moves the clock to
//     the sleeper's deadline and returns at once). Timers fire when the
//     clock passes their deadline, so a loop "poll, sleep, give up after
//     60 s" runs its 60 s of virtual time at once and deterministically.
//   - Deadline is for net.Conn and file deadlines, which the kernel checks
//     against the real clock whatever the code's Clock says.
//
// Durations measured for display (a backup took 3.2 s) use the injected
// clock too: Since(start).
package clock
