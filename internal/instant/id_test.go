package instant

import "testing"

func TestServerID(t *testing.T) {
	for _, n := range []int64{1, 42, 99999999, 123456789012} {
		id := ServerID(n)
		if !ValidID(id) {
			t.Errorf("ServerID(%d) = %q: not a valid session ID", n, id)
		}
		if got, ok := ParseServerID(id); !ok || got != n {
			t.Errorf("ParseServerID(%q) = %d, %v", id, got, ok)
		}
	}
	if ServerID(42) != "ir-00000042" {
		t.Errorf("ServerID(42) = %q", ServerID(42))
	}
	if !ValidID(NewID()) || len(NewID()) != len(ServerID(42)) {
		t.Errorf("local IDs (%s) and server IDs (%s) differ in shape", NewID(), ServerID(42))
	}
	for _, id := range []string{"42", "ir-00000042"} {
		if n, ok := ParseServerID(id); !ok || n != 42 {
			t.Errorf("ParseServerID(%q) = %d, %v", id, n, ok)
		}
	}
	for _, id := range []string{"", "0", "-3", "ir-0000abcd", "ir-42", "x-00000042", "ir-00000000"} {
		if n, ok := ParseServerID(id); ok {
			t.Errorf("ParseServerID(%q) = %d, want refused", id, n)
		}
	}
}
