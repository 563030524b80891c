package main

// The scenarios with consumer groups: consumer-group (three members join one after another,
// one leaves, the group consumes and commits all 600 records of a 6-partition topic) and
// resume-committed.
//
// Members use sarama's defaults (the classic protocol with the range assignor, eager
// rebalancing, autocommit of marked offsets every second and at the end of each session)
// except Consumer.Offsets.Initial: sarama starts a group without committed offsets at the
// newest offset, and both scenarios read records produced before the group existed, so
// they start at the oldest (auto.offset.reset=earliest). Each member records what it owns
// in Setup and Cleanup; a partition handed to one member while another still owns it is
// an overlap, and fails the scenario.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sort"
	"strconv"
	"sync"

	"github.com/IBM/sarama"
)

const (
	groupPartitions     = 6
	recordsPerPartition = 100
)

// handler adapts three functions to sarama.ConsumerGroupHandler. message is called for each
// message of each claim, from the claims' goroutines.
type handler struct {
	setup   func(sarama.ConsumerGroupSession)
	cleanup func(sarama.ConsumerGroupSession)
	message func(sarama.ConsumerGroupSession, *sarama.ConsumerMessage)
}

func (h handler) Setup(s sarama.ConsumerGroupSession) error {
	if h.setup != nil {
		h.setup(s)
	}
	return nil
}

func (h handler) Cleanup(s sarama.ConsumerGroupSession) error {
	if h.cleanup != nil {
		h.cleanup(s)
	}
	return nil
}

func (h handler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.message(s, m)
		case <-s.Context().Done():
			return nil
		}
	}
}

// member is one consumer of a group, running sessions in its own goroutine until closed.
type member struct {
	name  string
	group sarama.ConsumerGroup
	done  chan struct{}
}

// startMember joins group with h; the member's sessions run until stop or ctx ends.
func startMember(ctx context.Context, e env, group, topic, name string, h handler) (*member, error) {
	cfg := newConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Return.Errors = true
	g, err := sarama.NewConsumerGroup([]string{e.bootstrap}, group, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: consumer group: %w", name, err)
	}
	m := &member{name: name, group: g, done: make(chan struct{})}
	go func() {
		for err := range g.Errors() {
			log.Printf("%s: %v", name, err)
		}
	}()
	go func() {
		defer close(m.done)
		for {
			if err := g.Consume(ctx, []string{topic}, h); err != nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				}
				log.Printf("%s: consume: %v", name, err)
			}
			if ctx.Err() != nil {
				return
			}
		}
	}()
	return m, nil
}

// stop closes the member (committing, leaving the group) and waits for its loop.
func (m *member) stop() {
	if err := m.group.Close(); err != nil {
		log.Printf("%s: close: %v", m.name, err)
	}
	<-m.done
}

// groupState is what the members of consumer-group saw, under one lock.
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

func consumerGroup(ctx context.Context, e env) error {
	topic := e.topic("consumer-group")
	group := fmt.Sprintf("compat-%s-group-%s", clientName, e.runID)
	if err := createTopicWithAdmin(ctx, e, topic, groupPartitions); err != nil {
		return err
	}
	p, err := newSyncProducer(e, func(cfg *sarama.Config) { cfg.Producer.Partitioner = sarama.NewManualPartitioner })
	if err != nil {
		return err
	}
	var msgs []*sarama.ProducerMessage
	for part := int32(0); part < groupPartitions; part++ {
		for i := 0; i < recordsPerPartition; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: part, Value: sarama.StringEncoder(strconv.Itoa(i))})
		}
	}
	err = sendAll(p, msgs)
	p.Close()
	if err != nil {
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
		st.mu.Lock()
		st.owned[name] = map[int32]bool{}
		st.mu.Unlock()
		h := handler{
			setup: func(s sarama.ConsumerGroupSession) {
				log.Printf("%s assigned %v (generation %d)", name, s.Claims()[topic], s.GenerationID())
				st.assign(name, s.Claims()[topic])
			},
			cleanup: func(s sarama.ConsumerGroupSession) {
				log.Printf("%s releases %v", name, s.Claims()[topic])
				st.release(name, s.Claims()[topic])
			},
			message: func(s sarama.ConsumerGroupSession, m *sarama.ConsumerMessage) {
				st.mu.Lock()
				st.consumed[[2]int64{int64(m.Partition), m.Offset}] = true
				st.mu.Unlock()
				s.MarkMessage(m, "")
			},
		}
		m, err := startMember(ctx, e, group, topic, name, h)
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
	if err := withAdmin(e, func(adm sarama.ClusterAdmin) error {
		return eventually(ctx, func() error { return checkCommitted(adm, group, topic, groupPartitions, recordsPerPartition) })
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

// checkCommitted checks that group committed offset want on partitions 0..n-1 of topic.
func checkCommitted(adm sarama.ClusterAdmin, group, topic string, n int32, want int64) error {
	ps := make([]int32, n)
	for i := range ps {
		ps[i] = int32(i)
	}
	resp, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: ps})
	if err != nil {
		return err
	}
	if resp.Err != sarama.ErrNoError {
		return fmt.Errorf("offset fetch: %w", resp.Err)
	}
	for _, p := range ps {
		b := resp.GetBlock(topic, p)
		if b == nil || b.Err != sarama.ErrNoError || b.Offset != want {
			return fmt.Errorf("committed offset of partition %d: %+v, want %d", p, b, want)
		}
	}
	return nil
}

// resumeCommitted: a group member commits offset 4 after four records; the next member of
// the group starts there.
func resumeCommitted(ctx context.Context, e env) error {
	topic := e.topic("resume-committed")
	group := fmt.Sprintf("compat-%s-resume-%s", clientName, e.runID)
	if err := createTopicWithAdmin(ctx, e, topic, 1); err != nil {
		return err
	}
	if err := produceNumbered(e, topic, 10); err != nil {
		return err
	}
	var (
		mu       sync.Mutex
		first    []*sarama.ConsumerMessage
		fourDone = make(chan struct{})
	)
	m, err := startMember(ctx, e, group, topic, "first", handler{message: func(s sarama.ConsumerGroupSession, m *sarama.ConsumerMessage) {
		mu.Lock()
		defer mu.Unlock()
		if len(first) >= 4 {
			return // read past the fourth record, but neither marked nor committed
		}
		first = append(first, m)
		if len(first) == 4 {
			s.MarkMessage(m, "") // marks offset 4, the next to read
			s.Commit()
			close(fourDone)
		}
	}})
	if err != nil {
		return err
	}
	select {
	case <-fourDone:
	case <-ctx.Done():
		m.stop()
		mu.Lock()
		defer mu.Unlock()
		return fmt.Errorf("first consumer: %d records read: %w", len(first), ctx.Err())
	}
	m.stop()
	for i, msg := range first {
		if msg.Offset != int64(i) {
			return fmt.Errorf("first consumer: record %d at offset %d", i, msg.Offset)
		}
	}
	if err := withAdmin(e, func(adm sarama.ClusterAdmin) error { return checkCommitted(adm, group, topic, 1, 4) }); err != nil {
		return fmt.Errorf("after the first consumer: %w", err)
	}
	rest := make(chan *sarama.ConsumerMessage, 10)
	m, err = startMember(ctx, e, group, topic, "second", handler{message: func(s sarama.ConsumerGroupSession, m *sarama.ConsumerMessage) {
		select {
		case rest <- m:
		default: // more than expected: the check below fails on what came first
		}
		s.MarkMessage(m, "")
	}})
	if err != nil {
		return err
	}
	defer m.stop()
	for i := 4; i < 10; i++ {
		select {
		case msg := <-rest:
			if msg.Offset != int64(i) || string(msg.Value) != strconv.Itoa(i) {
				return fmt.Errorf("second consumer: record %d is offset %d value %q, want offset %d", i-4, msg.Offset, msg.Value, i)
			}
		case <-ctx.Done():
			return fmt.Errorf("second consumer: %d records read: %w", i-4, ctx.Err())
		}
	}
	return nil
}
