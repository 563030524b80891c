package main

// The consumer-group scenario: three members of one group join one after another, one
// leaves, and the group consumes and commits all 600 records of a 6-partition topic.
//
// Members use kgo's defaults: the classic protocol with the cooperative-sticky balancer
// (kgo v1.22 uses KIP-848 only when asked with ServerSideBalancer), autocommit every 5 s,
// and a commit of what was polled when partitions are revoked. Each member records what it owns
// in the OnPartitions callbacks; a partition handed to one member while another still owns
// it is an overlap, and fails the scenario.

import (
	"context"
	"fmt"
	"log"
	"sort"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	groupPartitions     = 6
	recordsPerPartition = 100
)

// groupState is what the members of the scenario saw, under one lock.
type groupState struct {
	mu       sync.Mutex
	owned    map[string]map[int32]bool // member -> partitions it owns now
	consumed map[[2]int64]bool         // {partition, offset} consumed by any member
	overlaps []string                  // assignments of a partition another member owned
}

func (s *groupState) assign(member string, ps []int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps {
		for other, owned := range s.owned {
			if other != member && owned[p] {
				s.overlaps = append(s.overlaps, fmt.Sprintf("partition %d assigned to %s while %s owns it", p, member, other))
			}
		}
		s.owned[member][p] = true
	}
}

func (s *groupState) release(member string, ps []int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps {
		delete(s.owned[member], p)
	}
}

// settled reports whether every listed member owns at least one partition and between them
// they own each partition exactly once.
func (s *groupState) settled(members ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	count := map[int32]int{}
	for _, m := range members {
		if len(s.owned[m]) == 0 {
			return fmt.Errorf("member %s owns no partition yet (%s)", m, s.describeLocked())
		}
		for p := range s.owned[m] {
			count[p]++
		}
	}
	for p := int32(0); p < groupPartitions; p++ {
		if count[p] != 1 {
			return fmt.Errorf("partition %d is owned by %d members (%s)", p, count[p], s.describeLocked())
		}
	}
	return nil
}

func (s *groupState) describeLocked() string {
	names := make([]string, 0, len(s.owned))
	for m := range s.owned {
		names = append(names, m)
	}
	sort.Strings(names)
	out := ""
	for _, m := range names {
		ps := []int{}
		for p := range s.owned[m] {
			ps = append(ps, int(p))
		}
		sort.Ints(ps)
		out += fmt.Sprintf("%s:%v ", m, ps)
	}
	return out
}

// member is one consumer of the group, polling in its own goroutine until closed.
type member struct {
	name string
	cl   *kgo.Client
	done chan struct{}
}

func startMember(ctx context.Context, e env, st *groupState, group, topic, name string) (*member, error) {
	st.mu.Lock()
	st.owned[name] = map[int32]bool{}
	st.mu.Unlock()
	cl, err := newClient(e,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			log.Printf("%s assigned %v", name, m[topic])
			st.assign(name, m[topic])
		}),
		// Setting this replaces kgo's default revoke, a blocking commit of what was polled:
		// do that commit here too, then forget the partitions.
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			log.Printf("%s revoked %v", name, m[topic])
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				log.Printf("%s: commit on revoke: %v", name, err)
			}
			st.release(name, m[topic])
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			log.Printf("%s lost %v", name, m[topic])
			st.release(name, m[topic])
		}),
	)
	if err != nil {
		return nil, err
	}
	m := &member{name: name, cl: cl, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			fetches := cl.PollFetches(ctx)
			if fetches.IsClientClosed() || ctx.Err() != nil {
				return
			}
			fetches.EachError(func(t string, p int32, err error) { log.Printf("%s: fetch %s[%d]: %v", name, t, p, err) })
			st.mu.Lock()
			fetches.EachRecord(func(r *kgo.Record) { st.consumed[[2]int64{int64(r.Partition), r.Offset}] = true })
			st.mu.Unlock()
		}
	}()
	return m, nil
}

// stop closes the member (leaving the group, committing on revoke) and waits for its loop.
func (m *member) stop() {
	m.cl.Close()
	<-m.done
}

func consumerGroup(ctx context.Context, e env) error {
	topic := e.topic("consumer-group")
	group := fmt.Sprintf("compat-%s-group-%s", clientName, e.runID)
	adm, err := newClient(e)
	if err != nil {
		return err
	}
	admin := kadm.NewClient(adm)
	defer admin.Close()
	if err := createTopic(ctx, admin, topic, groupPartitions, nil); err != nil {
		return err
	}
	prod, err := newClient(e, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer prod.Close()
	var recs []*kgo.Record
	for p := int32(0); p < groupPartitions; p++ {
		for i := 0; i < recordsPerPartition; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(strconv.Itoa(i))})
		}
	}
	if err := produceSync(ctx, prod, recs...); err != nil {
		return err
	}

	st := &groupState{owned: map[string]map[int32]bool{}, consumed: map[[2]int64]bool{}}
	var members []*member
	defer func() {
		for _, m := range members {
			if m != nil {
				m.stop()
			}
		}
	}()
	var names []string
	for _, name := range []string{"member-1", "member-2", "member-3"} {
		m, err := startMember(ctx, e, st, group, topic, name)
		if err != nil {
			return err
		}
		members = append(members, m)
		names = append(names, name)
		if err := eventually(ctx, func() error { return st.settled(names...) }); err != nil {
			return fmt.Errorf("after starting %s: %w", name, err)
		}
	}
	log.Printf("three members assigned; stopping member-2")
	members[1].stop()
	members[1] = nil
	if err := eventually(ctx, func() error { return st.settled("member-1", "member-3") }); err != nil {
		return fmt.Errorf("after stopping member-2: %w", err)
	}
	if err := eventually(ctx, func() error {
		st.mu.Lock()
		defer st.mu.Unlock()
		if n := len(st.consumed); n != groupPartitions*recordsPerPartition {
			return fmt.Errorf("the group consumed %d distinct records of %d", n, groupPartitions*recordsPerPartition)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := eventually(ctx, func() error {
		ors, err := admin.FetchOffsets(ctx, group)
		if err != nil {
			return err
		}
		for p := int32(0); p < groupPartitions; p++ {
			o, ok := ors.Lookup(topic, p)
			if !ok || o.Err != nil || o.At != recordsPerPartition {
				return fmt.Errorf("committed offset of partition %d is %d (err %v), want %d", p, o.At, o.Err, recordsPerPartition)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	st.mu.Lock()
	overlaps := st.overlaps
	st.mu.Unlock()
	if len(overlaps) > 0 {
		return fmt.Errorf("partitions owned by two members at once: %v", overlaps)
	}
	return nil
}
