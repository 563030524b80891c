package gokit

// The consumer-group scenario apart from the client: three members of one group join one
// after another, one leaves, and the group consumes and commits all 600 records of a
// 6-partition topic, with no partition owned by two members at once.
//
// A driver produces the records, then calls RunConsumerGroup with a function that starts
// one member of its client. That member reports to a GroupTracker from its client's own
// callbacks: Assigned when the client hands it partitions, Released when it gives them up
// (revoked, lost, its session or generation over), Consumed for each record. The tracker
// sees an overlap when a partition is assigned to one member while another still owns it;
// whether a member gives up its partitions before another gets them is the client's and the
// broker's rebalance protocol at work, which is what the scenario checks.

import (
	"context"
	"fmt"
	"log"
	"sort"
	"strings"
	"sync"
)

// GroupPartitions and RecordsPerPartition are the consumer-group scenario's topic: 6
// partitions of 100 records each.
const (
	GroupPartitions     = 6
	RecordsPerPartition = 100
)

// GroupTracker is what the members of a group saw, under one lock: which partitions each
// member owns now, which records any of them consumed, and the overlaps. Its methods may be
// called from any goroutine.
type GroupTracker struct {
	partitions int32
	mu         sync.Mutex
	owned      map[string]map[int32]bool // member -> partitions it owns now
	consumed   map[[2]int64]bool         // {partition, offset} consumed by any member
	overlaps   []string                  // assignments of a partition another member owned
}

// NewGroupTracker tracks a group consuming a topic of partitions partitions (0..n-1).
func NewGroupTracker(partitions int32) *GroupTracker {
	return &GroupTracker{partitions: partitions, owned: map[string]map[int32]bool{}, consumed: map[[2]int64]bool{}}
}

// Join registers member as owning nothing yet: Settled then reports it as waiting for
// partitions instead of ignoring it. RunConsumerGroup joins each member before starting it.
func (t *GroupTracker) Join(member string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.owned[member] == nil {
		t.owned[member] = map[int32]bool{}
	}
}

// Assigned records that member now owns partitions ps. A partition another member still
// owns is an overlap (recorded, and reported by Overlaps); member owns it anyway. A member
// not joined yet is joined.
func (t *GroupTracker) Assigned(member string, ps ...int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.owned[member] == nil {
		t.owned[member] = map[int32]bool{}
	}
	for _, p := range ps {
		for other, owned := range t.owned {
			if other != member && owned[p] {
				t.overlaps = append(t.overlaps, fmt.Sprintf("partition %d assigned to %s while %s owns it", p, member, other))
			}
		}
		t.owned[member][p] = true
	}
}

// Released records that member no longer owns partitions ps (those it did not own are
// ignored).
func (t *GroupTracker) Released(member string, ps ...int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range ps {
		delete(t.owned[member], p)
	}
}

// Consumed records that some member consumed the record at offset of partition; a record
// consumed twice counts once.
func (t *GroupTracker) Consumed(partition int32, offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.consumed[[2]int64{int64(partition), offset}] = true
}

// Settled reports whether every listed member owns at least one partition and between them
// they own each partition exactly once; the error describes what each member owns.
func (t *GroupTracker) Settled(members ...string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	count := map[int32]int{}
	for _, m := range members {
		if len(t.owned[m]) == 0 {
			return fmt.Errorf("member %s owns no partition yet (%s)", m, t.describeLocked())
		}
		for p := range t.owned[m] {
			count[p]++
		}
	}
	for p := int32(0); p < t.partitions; p++ {
		if count[p] != 1 {
			return fmt.Errorf("partition %d is owned by %d members (%s)", p, count[p], t.describeLocked())
		}
	}
	return nil
}

// ConsumedAll reports whether the members consumed perPartition distinct records of each
// partition between them (counted over all members, stopped ones included).
func (t *GroupTracker) ConsumedAll(perPartition int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	want := int(t.partitions) * perPartition
	if n := len(t.consumed); n != want {
		return fmt.Errorf("the group consumed %d distinct records of %d", n, want)
	}
	return nil
}

// Overlaps fails when a partition was ever assigned to a member while another owned it.
func (t *GroupTracker) Overlaps() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.overlaps) > 0 {
		return fmt.Errorf("partitions owned by two members at once: %v", t.overlaps)
	}
	return nil
}

// describeLocked renders what each member owns, members and partitions sorted:
// "member-1:[0 1 2] member-2:[3 4 5] ".
func (t *GroupTracker) describeLocked() string {
	names := make([]string, 0, len(t.owned))
	for m := range t.owned {
		names = append(names, m)
	}
	sort.Strings(names)
	var out strings.Builder
	for _, m := range names {
		ps := []int{}
		for p := range t.owned[m] {
			ps = append(ps, int(p))
		}
		sort.Ints(ps)
		fmt.Fprintf(&out, "%s:%v ", m, ps)
	}
	return out.String()
}

// GroupMember is one running member of the consumer-group scenario.
type GroupMember interface {
	// Stop closes the member (committing what its client commits on close, leaving the
	// group) and returns when its goroutines are done.
	Stop()
}

// CommittedOffsets fetches a group's committed offsets of one topic by partition; a
// partition's own error (rather than "none committed") is an error of the call.
type CommittedOffsets func(ctx context.Context) (map[int32]int64, error)

// CheckCommitted checks that the group committed offset want on partitions 0..n-1.
func CheckCommitted(ctx context.Context, committed CommittedOffsets, n int32, want int64) error {
	got, err := committed(ctx)
	if err != nil {
		return fmt.Errorf("fetch committed offsets: %w", err)
	}
	for p := int32(0); p < n; p++ {
		o, ok := got[p]
		if !ok {
			return fmt.Errorf("partition %d has no committed offset, want %d", p, want)
		}
		if o != want {
			return fmt.Errorf("committed offset of partition %d is %d, want %d", p, o, want)
		}
	}
	return nil
}

// RunConsumerGroup plays the consumer-group scenario once the topic holds its records:
// start member-1, member-2 and member-3 with start, each once the group has settled with
// the ones before it (every member owns a partition, every partition one owner); stop
// member-2 and wait for member-1 and member-3 to settle; wait until the group consumed
// every record and committed RecordsPerPartition on every partition; fail on any overlap.
// Every wait is bounded by ctx; the members still running are stopped on return.
func RunConsumerGroup(ctx context.Context, t *GroupTracker, start func(name string) (GroupMember, error), committed CommittedOffsets) error {
	var members []GroupMember
	defer func() {
		for _, m := range members {
			if m != nil {
				m.Stop()
			}
		}
	}()
	var names []string
	for _, name := range []string{"member-1", "member-2", "member-3"} {
		t.Join(name)
		m, err := start(name)
		if err != nil {
			return err
		}
		members = append(members, m)
		names = append(names, name)
		if err := Eventually(ctx, func() error { return t.Settled(names...) }); err != nil {
			return fmt.Errorf("after starting %s: %w", name, err)
		}
	}
	log.Printf("three members assigned; stopping member-2")
	members[1].Stop()
	members[1] = nil
	if err := Eventually(ctx, func() error { return t.Settled("member-1", "member-3") }); err != nil {
		return fmt.Errorf("after stopping member-2: %w", err)
	}
	if err := Eventually(ctx, func() error { return t.ConsumedAll(RecordsPerPartition) }); err != nil {
		return err
	}
	if err := Eventually(ctx, func() error { return CheckCommitted(ctx, committed, t.partitions, RecordsPerPartition) }); err != nil {
		return err
	}
	return t.Overlaps()
}
