package storagetest

import (
	"context"
	"errors"
	"testing"
)

func TestFaulty(t *testing.T) {
	ctx := context.Background()
	errFull := errors.New("disk full")
	data := []byte("0123456789")
	tests := []struct {
		name  string
		fault Fault
		// results of three Loads of "chunks/a" (err or content), then of
		// a Load of "index/b"
		want []string
	}{
		{"load error", Fault{Op: OpLoad}, []string{"err", "err", "err", "err"}},
		{"prefix", Fault{Op: OpLoad, Prefix: "chunks/"}, []string{"err", "err", "err", "0123456789"}},
		{"skip and times", Fault{Op: OpLoad, Skip: 1, Times: 1}, []string{"0123456789", "err", "0123456789", "0123456789"}},
		{"short read", Fault{Op: OpLoad, Prefix: "chunks/", Short: true}, []string{"01234", "01234", "01234", "0123456789"}},
		{"corrupt", Fault{Op: OpLoad, Prefix: "chunks/", Corrupt: true, Times: 1}, []string{"01234\xca6789", "0123456789", "0123456789", "0123456789"}},
		{"save fault does not touch loads", Fault{Op: OpSave, Err: errFull}, []string{"0123456789", "0123456789", "0123456789", "0123456789"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMem()
			for _, name := range []string{"chunks/a", "index/b"} {
				if err := m.Save(ctx, name, data); err != nil {
					t.Fatal(err)
				}
			}
			f := NewFaulty(m)
			f.Add(tc.fault)
			var got []string
			for _, name := range []string{"chunks/a", "chunks/a", "chunks/a", "index/b"} {
				b, err := f.Load(ctx, name)
				switch {
				case errors.Is(err, ErrInjected):
					got = append(got, "err")
				case err != nil:
					t.Fatalf("load %s: %v", name, err)
				default:
					got = append(got, string(b))
				}
			}
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Errorf("loads %q, want %q", got, tc.want)
					break
				}
			}
			if n := f.Calls(OpLoad); n != 4 {
				t.Errorf("%d loads counted, want 4", n)
			}
			if again, err := m.Load(ctx, "chunks/a"); err != nil || string(again) != string(data) {
				t.Errorf("the wrapped backend changed: %q, %v", again, err)
			}
		})
	}
}

func TestFaultySaveError(t *testing.T) {
	ctx := context.Background()
	errFull := errors.New("disk full")
	f := NewFaulty(NewMem())
	f.Add(Fault{Op: OpSave, Skip: 2, Err: errFull})
	for i, want := range []error{nil, nil, errFull, errFull} {
		if err := f.Save(ctx, "f", []byte{byte(i)}); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("save %d: %v, want %v", i, err, want)
		}
	}
	f.Clear()
	if err := f.Save(ctx, "f", []byte("x")); err != nil {
		t.Errorf("save after Clear: %v", err)
	}
	if n := f.Calls(OpSave); n != 5 {
		t.Errorf("%d saves counted, want 5", n)
	}
}
