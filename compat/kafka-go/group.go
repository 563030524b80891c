package main

// The scenarios with consumer groups.
//
// consumer-group (its steps and checks are gokit.RunConsumerGroup's) uses kafka-go's
// ConsumerGroup, the API under its group Reader that shows each generation's assignments:
// per generation, one partition Reader per assigned partition starts at the committed
// offset (or the first offset: StartOffset's default) and commits each message it reads,
// as the group Reader does by default. A member owns a partition, for the
// gokit.GroupTracker, from the start of its partition goroutine until that goroutine ends,
// which kafka-go waits for before it joins the next generation. resume-committed uses the
// group Reader itself.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strconv"

	"odradek/compat/gokit"

	"github.com/segmentio/kafka-go"
)

// member is one ConsumerGroup member, running generations in its own goroutine until closed.
type member struct {
	name string
	cg   *kafka.ConsumerGroup
	done chan struct{}
}

// startMember joins group as name, consuming topic and reporting to t until stopped or
// ctx ends.
func startMember(ctx context.Context, e gokit.Env, t *gokit.GroupTracker, group, topic, name string) (*member, error) {
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: group, Brokers: []string{e.Bootstrap}, Topics: []string{topic},
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
				t.Assigned(name, int32(pa.ID))
				gen.Start(func(ctx context.Context) {
					defer t.Released(name, int32(pa.ID))
					consumePartition(ctx, e, t, gen, name, topic, pa)
				})
			}
		}
	}()
	return m, nil
}

// consumePartition reads one assigned partition until the generation ends, committing
// each message.
func consumePartition(ctx context.Context, e gokit.Env, t *gokit.GroupTracker, gen *kafka.Generation, name, topic string, pa kafka.PartitionAssignment) {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{e.Bootstrap}, Topic: topic, Partition: pa.ID,
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
		t.Consumed(int32(m.Partition), m.Offset)
		if err := gen.CommitOffsets(map[string]map[int]int64{topic: {m.Partition: m.Offset + 1}}); err != nil {
			log.Printf("%s: partition %d: commit %d: %v", name, pa.ID, m.Offset+1, err)
		}
	}
}

// Stop closes the member (leaving the group) and waits for its loop.
func (m *member) Stop() {
	if err := m.cg.Close(); err != nil {
		log.Printf("%s: close: %v", m.name, err)
	}
	<-m.done
}

func consumerGroup(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("consumer-group")
	group := e.ID("group")
	if err := createTopic(ctx, e, topic, gokit.GroupPartitions); err != nil {
		return err
	}
	var msgs []kafka.Message
	for p := 0; p < gokit.GroupPartitions; p++ {
		for i := 0; i < gokit.RecordsPerPartition; i++ {
			msgs = append(msgs, kafka.Message{Partition: p, Value: []byte(strconv.Itoa(i))})
		}
	}
	// kafka-go's Writer picks partitions with its Balancer and ignores Message.Partition:
	// a balancer that returns it places each record.
	byPartition := kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return m.Partition })
	if err := writeAcked(ctx, e, topic, func(w *kafka.Writer) { w.Balancer = byPartition }, msgs...); err != nil {
		return err
	}
	t := gokit.NewGroupTracker(gokit.GroupPartitions)
	start := func(name string) (gokit.GroupMember, error) {
		return startMember(ctx, e, t, group, topic, name)
	}
	return gokit.RunConsumerGroup(ctx, t, start, committedOffsets(e, group, topic, gokit.GroupPartitions))
}

// committedOffsets fetches group's committed offsets of partitions 0..n-1 of topic.
func committedOffsets(e gokit.Env, group, topic string, n int) gokit.CommittedOffsets {
	return func(ctx context.Context) (map[int32]int64, error) {
		ps := make([]int, n)
		for i := range ps {
			ps[i] = i
		}
		resp, err := newClient(e).OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
		if err != nil {
			return nil, fmt.Errorf("offset fetch: %w", err)
		}
		if resp.Error != nil {
			return nil, fmt.Errorf("offset fetch: %w", resp.Error)
		}
		out := map[int32]int64{}
		for _, p := range resp.Topics[topic] {
			if p.Error != nil {
				return nil, fmt.Errorf("partition %d: %w", p.Partition, p.Error)
			}
			out[int32(p.Partition)] = p.CommittedOffset
		}
		return out, nil
	}
}

// resumeCommitted: a group Reader commits offset 4 after four records; the next Reader of
// the group starts there.
func resumeCommitted(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("resume-committed")
	group := e.ID("resume")
	if err := createTopic(ctx, e, topic, 1); err != nil {
		return err
	}
	if err := writeNumbered(ctx, e, topic, 10); err != nil {
		return err
	}
	newReader := func(name string) *kafka.Reader {
		return kafka.NewReader(kafka.ReaderConfig{Brokers: []string{e.Bootstrap}, GroupID: group, Topic: topic,
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
	if err := gokit.CheckCommitted(ctx, committedOffsets(e, group, topic, 1), 1, 4); err != nil {
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
