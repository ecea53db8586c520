package orchestrator

import "github.com/holdfast-backup/holdfast/internal/server/taskproto"

// Bottleneck tells which stage of the data path limited a session: the
// share of the busy time the tasks' workers spent reading the source,
// processing on the proxy (hash, compress, encrypt), moving data over the
// network, and in the repository's verify-and-store. The stage with the
// largest share is the one to improve first.
type Bottleneck struct {
	Source  float64 `json:"source"`
	Proxy   float64 `json:"proxy"`
	Network float64 `json:"network"`
	Target  float64 `json:"target"`
	Limit   string  `json:"limit"` // source, proxy, network or target; "" when nothing was measured
}

func bottleneck(st taskproto.Stages) *Bottleneck {
	total := st.SourceNanos + st.ProxyNanos + st.NetworkNanos + st.TargetNanos
	if total <= 0 {
		return nil
	}
	share := func(n int64) float64 { return float64(int(float64(n)/float64(total)*1000+0.5)) / 1000 }
	b := &Bottleneck{Source: share(st.SourceNanos), Proxy: share(st.ProxyNanos),
		Network: share(st.NetworkNanos), Target: share(st.TargetNanos)}
	b.Limit, _ = maxStage([]string{"source", "proxy", "network", "target"},
		[]int64{st.SourceNanos, st.ProxyNanos, st.NetworkNanos, st.TargetNanos})
	return b
}

func maxStage(names []string, vals []int64) (string, int64) {
	best, bv := "", int64(0)
	for i, v := range vals {
		if v > bv {
			best, bv = names[i], v
		}
	}
	return best, bv
}
