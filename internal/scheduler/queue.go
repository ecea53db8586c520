package scheduler

import "sort"

// queue holds the waiting tasks ordered by priority (higher first), then by
// submission sequence (FIFO). A requeued task keeps its sequence number and
// so returns to its old place.
type queue struct {
	items []*taskState
}

func (q *queue) before(a, b *taskState) bool {
	if a.task.Priority != b.task.Priority {
		return a.task.Priority > b.task.Priority
	}
	return a.seq < b.seq
}

func (q *queue) push(ts *taskState) {
	i := sort.Search(len(q.items), func(i int) bool { return q.before(ts, q.items[i]) })
	q.items = append(q.items, nil)
	copy(q.items[i+1:], q.items[i:])
	q.items[i] = ts
}

// remove deletes ts and reports whether it was queued.
func (q *queue) remove(ts *taskState) bool {
	i := sort.Search(len(q.items), func(i int) bool { return !q.before(q.items[i], ts) })
	if i == len(q.items) || q.items[i] != ts {
		return false
	}
	copy(q.items[i:], q.items[i+1:])
	q.items[len(q.items)-1] = nil
	q.items = q.items[:len(q.items)-1]
	return true
}

func (q *queue) len() int { return len(q.items) }
