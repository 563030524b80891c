package main

// The scenarios with consumer groups: consumer-group (its steps and checks are
// gokit.RunConsumerGroup's) and resume-committed.
//
// Members use sarama's defaults (the classic protocol with the range assignor, eager
// rebalancing, autocommit of marked offsets every second and at the end of each session)
// except Consumer.Offsets.Initial: sarama starts a group without committed offsets at the
// newest offset, and both scenarios read records produced before the group existed, so
// they start at the oldest (auto.offset.reset=earliest). In consumer-group each member
// reports what it owns to the gokit.GroupTracker from its session's Setup and Cleanup.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strconv"
	"sync"

	"odradek/compat/gokit"

	"github.com/IBM/sarama"
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
func startMember(ctx context.Context, e gokit.Env, group, topic, name string, h handler) (*member, error) {
	cfg := newConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Return.Errors = true
	g, err := sarama.NewConsumerGroup([]string{e.Bootstrap}, group, cfg)
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

// Stop closes the member (committing, leaving the group) and waits for its loop.
func (m *member) Stop() {
	if err := m.group.Close(); err != nil {
		log.Printf("%s: close: %v", m.name, err)
	}
	<-m.done
}

func consumerGroup(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("consumer-group")
	group := e.ID("group")
	if err := createTopicWithAdmin(ctx, e, topic, gokit.GroupPartitions); err != nil {
		return err
	}
	p, err := newSyncProducer(e, func(cfg *sarama.Config) { cfg.Producer.Partitioner = sarama.NewManualPartitioner })
	if err != nil {
		return err
	}
	var msgs []*sarama.ProducerMessage
	for part := int32(0); part < gokit.GroupPartitions; part++ {
		for i := 0; i < gokit.RecordsPerPartition; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: part, Value: sarama.StringEncoder(strconv.Itoa(i))})
		}
	}
	err = sendAll(p, msgs)
	p.Close()
	if err != nil {
		return err
	}

	t := gokit.NewGroupTracker(gokit.GroupPartitions)
	start := func(name string) (gokit.GroupMember, error) {
		return startMember(ctx, e, group, topic, name, handler{
			setup: func(s sarama.ConsumerGroupSession) {
				log.Printf("%s assigned %v (generation %d)", name, s.Claims()[topic], s.GenerationID())
				t.Assigned(name, s.Claims()[topic]...)
			},
			cleanup: func(s sarama.ConsumerGroupSession) {
				log.Printf("%s releases %v", name, s.Claims()[topic])
				t.Released(name, s.Claims()[topic]...)
			},
			message: func(s sarama.ConsumerGroupSession, m *sarama.ConsumerMessage) {
				t.Consumed(m.Partition, m.Offset)
				s.MarkMessage(m, "")
			},
		})
	}
	return withAdmin(e, func(adm sarama.ClusterAdmin) error {
		return gokit.RunConsumerGroup(ctx, t, start, committedOffsets(adm, group, topic, gokit.GroupPartitions))
	})
}

// committedOffsets fetches group's committed offsets of partitions 0..n-1 of topic with adm.
func committedOffsets(adm sarama.ClusterAdmin, group, topic string, n int32) gokit.CommittedOffsets {
	return func(context.Context) (map[int32]int64, error) {
		ps := make([]int32, n)
		for i := range ps {
			ps[i] = int32(i)
		}
		resp, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: ps})
		if err != nil {
			return nil, err
		}
		if resp.Err != sarama.ErrNoError {
			return nil, fmt.Errorf("offset fetch: %w", resp.Err)
		}
		out := map[int32]int64{}
		for _, p := range ps {
			if b := resp.GetBlock(topic, p); b != nil {
				if b.Err != sarama.ErrNoError {
					return nil, fmt.Errorf("partition %d: %w", p, b.Err)
				}
				out[p] = b.Offset
			}
		}
		return out, nil
	}
}

// resumeCommitted: a group member commits offset 4 after four records; the next member of
// the group starts there.
func resumeCommitted(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("resume-committed")
	group := e.ID("resume")
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
		m.Stop()
		mu.Lock()
		defer mu.Unlock()
		return fmt.Errorf("first consumer: %d records read: %w", len(first), ctx.Err())
	}
	m.Stop()
	for i, msg := range first {
		if msg.Offset != int64(i) {
			return fmt.Errorf("first consumer: record %d at offset %d", i, msg.Offset)
		}
	}
	if err := withAdmin(e, func(adm sarama.ClusterAdmin) error {
		return gokit.CheckCommitted(ctx, committedOffsets(adm, group, topic, 1), 1, 4)
	}); err != nil {
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
	defer m.Stop()
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
