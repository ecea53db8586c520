// Package throttle implements network traffic rules: bandwidth limits for
// the backup data pipe selected by source network, target network and time
// of day.
//
// The building blocks are:
//
//   - Bucket, a token bucket (rate in bytes/s, burst in bytes) that is safe
//     for concurrent use, splits large waits into burst-sized pieces, takes
//     an injectable clock (internal/clock) and can change its rate at runtime;
//   - Rule and Rules, which pick the most restrictive (lowest-rate) rule
//     whose source and target prefixes contain a connection's addresses and
//     whose time windows are active;
//   - Shaper with its Conn, Reader and Writer wrappers, which pace I/O
//     through one shared Bucket per rule (all connections matching the same
//     rule share its bandwidth) and re-evaluate the rule periodically, so a
//     window that opens mid-transfer takes effect.
//
// # Rule grammar
//
// ParseRule reads one rule; ParseRules reads one rule per line and skips
// blank lines and lines starting with '#'. Tokens are separated by spaces;
// spaces next to ',' and around "->" are optional.
//
//	rule     = name ":" [ nets ] rate { window }
//	nets     = [ addrs ] "->" [ addrs ]          (no "->" means any -> any)
//	addrs    = "any" | "*" | prefix { "," prefix }
//	prefix   = IPv4 or IPv6 address, optionally "/" length (none = host)
//	rate     = number unit [ "/s" ]
//	number   = digits [ "." [ digits ] ] | "." digits
//	unit     = "B" | "KB" | "MB" | "GB" | "TB"          (powers of 1000)
//	         | "KiB" | "MiB" | "GiB" | "TiB"            (powers of 1024)
//	         | "kbit" | "Mbit" | "Gbit"                  (1000^n bits)
//	window   = days [ times ] | times
//	days     = dayspec { "," dayspec } | "daily"
//	dayspec  = day | day "-" day                 (ranges may wrap: fri-mon)
//	day      = "mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun"
//	times    = HH:MM "-" HH:MM                   (to may be 24:00; to < from
//	                                              crosses midnight)
//	name     = 1*64( letter | digit | "_" | "-" | "." )  (":" follows at once)
//
// Units and day names are case-insensitive. A window without times covers
// the whole of its days; times without days apply every day; a rule without
// windows is always active. A window that crosses midnight belongs to the
// day it starts on: "fri 22:00-06:00" is active Friday 22:00 to Saturday
// 06:00. Times are wall-clock times in the location passed to the parser,
// so a window keeps its local hours across daylight-saving changes.
//
// Example:
//
//	wan: 10.0.0.0/8 -> 192.168.50.0/24 10MiB/s mon-fri 08:00-18:00
//	night: any -> 2001:db8::/32 100Mbit/s daily 22:00-06:00
//	office: -> 192.168.0.0/16 1.5MB/s sat,sun
package throttle
