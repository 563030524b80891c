package main

// The scenarios with consumer groups.
//
// consumer-group uses kafka-go's ConsumerGroup, the API under its group Reader that shows
// each generation's assignments: per generation, one partition Reader per assigned
// partition starts at the committed offset (or the first offset: StartOffset's default)
// and commits each message it reads, as the group Reader does by default. A member owns a
// partition from the start of its partition goroutine until that goroutine ends, which
// kafka-go waits for before it joins the next generation; a partition handed to one member
// while another still owns it is an overlap, and fails the scenario. Three members join
// one after another, one leaves, and the group consumes and commits all 600 records of a
// 6-partition topic. resume-committed uses the group Reader itself.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sort"
	"strconv"
	"sync"

	"github.com/segmentio/kafka-go"
)

const (
	groupPartitions     = 6
	recordsPerPartition = 100
)

// groupState is what the members of consumer-group saw, under one lock.
type groupState struct {
	mu       sync.Mutex
	owned    map[string]map[int]bool // member -> partitions it owns now
	consumed map[[2]int64]bool       // {partition, offset} consumed by any member
	overlaps []string                // assignments of a partition another member owned
}

func (s *groupState) assign(member string, p int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for other, owned := range s.owned {
		if other != member && owned[p] {
			s.overlaps = append(s.overlaps, fmt.Sprintf("partition %d assigned to %s while %s owns it", p, member, other))
		}
	}
	s.owned[member][p] = true
}

func (s *groupState) release(member string, p int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.owned[member], p)
}

// settled reports whether every listed member owns at least one partition and between them
// they own each partition exactly once.
func (s *groupState) settled(members ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	count := map[int]int{}
	for _, m := range members {
		if len(s.owned[m]) == 0 {
			return fmt.Errorf("member %s owns no partition yet (%s)", m, s.describeLocked())
		}
		for p := range s.owned[m] {
			count[p]++
		}
	}
	for p := 0; p < groupPartitions; p++ {
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
			ps = append(ps, p)
		}
		sort.Ints(ps)
		out += fmt.Sprintf("%s:%v ", m, ps)
	}
	return out
}

// member is one ConsumerGroup member, running generations in its own goroutine until closed.
type member struct {
	name string
	cg   *kafka.ConsumerGroup
	done chan struct{}
}

func startMember(ctx context.Context, e env, st *groupState, group, topic, name string) (*member, error) {
	st.mu.Lock()
	st.owned[name] = map[int]bool{}
	st.mu.Unlock()
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: group, Brokers: []string{e.bootstrap}, Topics: []string{topic},
		Logger: logger(name), ErrorLogger: errorLogger(name),
	})
	if err != nil {
		return nil, fmt.Errorf("%s: consumer group: %w", name, err)
	}
	m := &member{name: name, cg: cg, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			gen, err := cg.Next(ctx)
			if errors.Is(err, kafka.ErrGroupClosed) || ctx.Err() != nil {
				return
			}
			if err != nil {
				log.Printf("%s: next generation: %v", name, err)
				continue
			}
			var ids []int
			for _, pa := range gen.Assignments[topic] {
				ids = append(ids, pa.ID)
			}
			log.Printf("%s: generation %d assigns %v", name, gen.ID, ids)
			for _, pa := range gen.Assignments[topic] {
				st.assign(name, pa.ID)
				gen.Start(func(ctx context.Context) {
					defer st.release(name, pa.ID)
					consumePartition(ctx, e, st, gen, name, topic, pa)
				})
			}
		}
	}()
	return m, nil
}

// consumePartition reads one assigned partition until the generation ends, committing
// each message.
func consumePartition(ctx context.Context, e env, st *groupState, gen *kafka.Generation, name, topic string, pa kafka.PartitionAssignment) {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{e.bootstrap}, Topic: topic, Partition: pa.ID,
		Logger: logger(name), ErrorLogger: errorLogger(name)})
	// Close waits for the fetch in flight (a long poll of up to 10 s); the generation need
	// not: once ReadMessage returned on the generation's end, nothing more is read or
	// committed from this partition.
	defer func() { go r.Close() }()
	if err := r.SetOffset(pa.Offset); err != nil {
		log.Printf("%s: partition %d: set offset %d: %v", name, pa.ID, pa.Offset, err)
		return
	}
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Printf("%s: partition %d: %v", name, pa.ID, err)
			}
			return
		}
		st.mu.Lock()
		st.consumed[[2]int64{int64(m.Partition), m.Offset}] = true
		st.mu.Unlock()
		if err := gen.CommitOffsets(map[string]map[int]int64{topic: {m.Partition: m.Offset + 1}}); err != nil {
			log.Printf("%s: partition %d: commit %d: %v", name, pa.ID, m.Offset+1, err)
		}
	}
}

// stop closes the member (leaving the group) and waits for its loop.
func (m *member) stop() {
	if err := m.cg.Close(); err != nil {
		log.Printf("%s: close: %v", m.name, err)
	}
	<-m.done
}

func consumerGroup(ctx context.Context, e env) error {
	topic := e.topic("consumer-group")
	group := fmt.Sprintf("compat-%s-group-%s", clientName, e.runID)
	if err := createTopic(ctx, e, topic, groupPartitions); err != nil {
		return err
	}
	var msgs []kafka.Message
	for p := 0; p < groupPartitions; p++ {
		for i := 0; i < recordsPerPartition; i++ {
			msgs = append(msgs, kafka.Message{Partition: p, Value: []byte(strconv.Itoa(i))})
		}
	}
	// kafka-go's Writer picks partitions with its Balancer and ignores Message.Partition:
	// a balancer that returns it places each record.
	byPartition := kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return m.Partition })
	if err := writeAcked(ctx, e, topic, func(w *kafka.Writer) { w.Balancer = byPartition }, msgs...); err != nil {
		return err
	}

	st := &groupState{owned: map[string]map[int]bool{}, consumed: map[[2]int64]bool{}}
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
	if err := eventually(ctx, func() error { return checkCommitted(ctx, e, group, topic, groupPartitions, recordsPerPartition) }); err != nil {
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
func checkCommitted(ctx context.Context, e env, group, topic string, n int, want int64) error {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	resp, err := newClient(e).OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		return fmt.Errorf("offset fetch: %w", err)
	}
	if resp.Error != nil {
		return fmt.Errorf("offset fetch: %w", resp.Error)
	}
	got := map[int]kafka.OffsetFetchPartition{}
	for _, p := range resp.Topics[topic] {
		got[p.Partition] = p
	}
	for _, p := range ps {
		if o, ok := got[p]; !ok || o.Error != nil || o.CommittedOffset != want {
			return fmt.Errorf("committed offset of partition %d: %+v, want %d", p, o, want)
		}
	}
	return nil
}

// resumeCommitted: a group Reader commits offset 4 after four records; the next Reader of
// the group starts there.
func resumeCommitted(ctx context.Context, e env) error {
	topic := e.topic("resume-committed")
	group := fmt.Sprintf("compat-%s-resume-%s", clientName, e.runID)
	if err := createTopic(ctx, e, topic, 1); err != nil {
		return err
	}
	if err := writeNumbered(ctx, e, topic, 10); err != nil {
		return err
	}
	newReader := func(name string) *kafka.Reader {
		return kafka.NewReader(kafka.ReaderConfig{Brokers: []string{e.bootstrap}, GroupID: group, Topic: topic,
			Logger: logger(name), ErrorLogger: errorLogger(name)})
	}
	first := newReader("first")
	var four []kafka.Message
	for len(four) < 4 {
		m, err := first.FetchMessage(ctx)
		if err != nil {
			first.Close()
			return fmt.Errorf("first reader, after %d records: %w", len(four), err)
		}
		four = append(four, m)
	}
	for i, m := range four {
		if m.Offset != int64(i) {
			first.Close()
			return fmt.Errorf("first reader: record %d at offset %d", i, m.Offset)
		}
	}
	if err := first.CommitMessages(ctx, four[3]); err != nil {
		first.Close()
		return fmt.Errorf("commit offset 4: %w", err)
	}
	if err := first.Close(); err != nil {
		return fmt.Errorf("closing the first reader: %w", err)
	}
	if err := checkCommitted(ctx, e, group, topic, 1, 4); err != nil {
		return fmt.Errorf("after the first reader: %w", err)
	}
	second := newReader("second")
	// Close waits for the Reader's fetch in flight (a long poll of up to 10 s) before it
	// leaves the group; the scenario is over, so let that happen apart.
	defer func() { go second.Close() }()
	for i := 4; i < 10; i++ {
		m, err := second.ReadMessage(ctx)
		if err != nil {
			return fmt.Errorf("second reader, after %d records: %w", i-4, err)
		}
		if m.Offset != int64(i) || string(m.Value) != strconv.Itoa(i) {
			return fmt.Errorf("second reader: record %d is offset %d value %q, want offset %d", i-4, m.Offset, m.Value, i)
		}
	}
	return nil
}
