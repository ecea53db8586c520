package throttle_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/holdfast-backup/holdfast/internal/throttle"
)

func show(rate int64, rule string) { fmt.Printf("%d %q\n", rate, rule) }

func ExampleRules_Match() {
	rules, err := throttle.ParseRules(`
# backup traffic rules
wan: 10.0.0.0/8 -> 192.168.50.0/24 10MiB/s mon-fri 08:00-18:00
night: any -> 2001:db8::/32 100Mbit/s daily 22:00-06:00
office: -> 192.168.0.0/16 1.5MB/s sat,sun
`, time.UTC)
	if err != nil {
		panic(err)
	}
	for _, r := range rules {
		fmt.Println(r)
	}
	src, dst := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("192.168.50.9")
	monday := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	show(rules.Match(src, dst, monday))
	show(rules.Match(src, dst, monday.Add(12*time.Hour)))
	show(rules.Match(src, dst, monday.Add(-48*time.Hour))) // Saturday
	// Output:
	// wan: 10.0.0.0/8 -> 192.168.50.0/24 10MiB/s mon-fri 08:00-18:00
	// night: any -> 2001:db8::/32 12500KB/s daily 22:00-06:00
	// office: any -> 192.168.0.0/16 1500KB/s sat,sun
	// 10485760 "wan"
	// 0 ""
	// 1500000 "office"
}
