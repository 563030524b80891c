package main

// The consumer-group scenario with kgo's group consumer; the scenario's steps and checks
// are gokit.RunConsumerGroup's.
//
// Members use kgo's defaults: the classic protocol with the cooperative-sticky balancer
// (kgo v1.22 uses KIP-848 only when asked with ServerSideBalancer), autocommit every 5 s,
// and a commit of what was polled when partitions are revoked. Each member reports what it
// owns to the gokit.GroupTracker from the OnPartitions callbacks: assigned, revoked, lost.

import (
	"context"
	"fmt"
	"log"
	"strconv"

	"odradek/compat/gokit"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// member is one consumer of the group, polling in its own goroutine until closed.
type member struct {
	name string
	cl   *kgo.Client
	done chan struct{}
}

// startMember joins group as name, consuming topic and reporting to t until stopped or
// ctx ends.
func startMember(ctx context.Context, e gokit.Env, t *gokit.GroupTracker, group, topic, name string) (*member, error) {
	cl, err := newClient(e,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			log.Printf("%s assigned %v", name, m[topic])
			t.Assigned(name, m[topic]...)
		}),
		// Setting this replaces kgo's default revoke, a blocking commit of what was polled:
		// do that commit here too, then forget the partitions.
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			log.Printf("%s revoked %v", name, m[topic])
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				log.Printf("%s: commit on revoke: %v", name, err)
			}
			t.Released(name, m[topic]...)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			log.Printf("%s lost %v", name, m[topic])
			t.Released(name, m[topic]...)
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
			fetches.EachError(func(tp string, p int32, err error) { log.Printf("%s: fetch %s[%d]: %v", name, tp, p, err) })
			fetches.EachRecord(func(r *kgo.Record) { t.Consumed(r.Partition, r.Offset) })
		}
	}()
	return m, nil
}

// Stop closes the member (leaving the group, committing on revoke) and waits for its loop.
func (m *member) Stop() {
	m.cl.Close()
	<-m.done
}

// committedOffsets fetches group's committed offsets of topic with adm.
func committedOffsets(adm *kadm.Client, group, topic string) gokit.CommittedOffsets {
	return func(ctx context.Context) (map[int32]int64, error) {
		ors, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return nil, err
		}
		out := map[int32]int64{}
		for p, o := range ors[topic] {
			if o.Err != nil {
				return nil, fmt.Errorf("partition %d: %w", p, o.Err)
			}
			out[p] = o.At
		}
		return out, nil
	}
}

func consumerGroup(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("consumer-group")
	group := e.ID("group")
	adm, err := newClient(e)
	if err != nil {
		return err
	}
	admin := kadm.NewClient(adm)
	defer admin.Close()
	if err := createTopic(ctx, admin, topic, gokit.GroupPartitions, nil); err != nil {
		return err
	}
	prod, err := newClient(e, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer prod.Close()
	var recs []*kgo.Record
	for p := int32(0); p < gokit.GroupPartitions; p++ {
		for i := 0; i < gokit.RecordsPerPartition; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(strconv.Itoa(i))})
		}
	}
	if err := produceSync(ctx, prod, recs...); err != nil {
		return err
	}
	t := gokit.NewGroupTracker(gokit.GroupPartitions)
	start := func(name string) (gokit.GroupMember, error) {
		return startMember(ctx, e, t, group, topic, name)
	}
	return gokit.RunConsumerGroup(ctx, t, start, committedOffsets(admin, group, topic))
}
