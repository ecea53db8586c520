package api

import (
	"testing"
	"time"
)

// TestLongPollOutOfLatency: a proxy's tasks/next long poll is counted but
// not observed in the latency histogram; other routes are both.
func TestLongPollOutOfLatency(t *testing.T) {
	m := newMetrics()
	m.observe(Route{Method: "POST", Path: "/api/v1/agents/tasks/next"}, 204, 25*time.Second)
	m.observe(Route{Method: "GET", Path: "/api/v1/jobs"}, 200, 3*time.Millisecond)
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]uint64{} // family → route → count
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			route := ""
			for _, l := range mt.GetLabel() {
				if l.GetName() == "route" {
					route = l.GetValue()
				}
			}
			if got[f.GetName()] == nil {
				got[f.GetName()] = map[string]uint64{}
			}
			if h := mt.GetHistogram(); h != nil {
				got[f.GetName()][route] += h.GetSampleCount()
			} else {
				got[f.GetName()][route] += uint64(mt.GetCounter().GetValue())
			}
		}
	}
	reqs, lat := got["holdfast_api_requests_total"], got["holdfast_api_request_duration_seconds"]
	if reqs["/api/v1/agents/tasks/next"] != 1 || reqs["/api/v1/jobs"] != 1 {
		t.Errorf("requests counted: %v", reqs)
	}
	if _, ok := lat["/api/v1/agents/tasks/next"]; ok || lat["/api/v1/jobs"] != 1 {
		t.Errorf("latency observed: %v, want /api/v1/jobs only", lat)
	}
}
