package main

// The scenarios of compat/SCENARIOS.md but consumer-group (group.go).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"odradek/compat/gokit"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadata: one broker at the bootstrap host and port; the created topic listed with its
// partition count.
func metadata(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("metadata")
	wantHost, wantPort, err := net.SplitHostPort(e.Bootstrap)
	if err != nil {
		return err
	}
	return withAdmin(e, func(adm *kadm.Client) error {
		if err := createTopic(ctx, adm, topic, 1, nil); err != nil {
			return err
		}
		m, err := adm.Metadata(ctx, topic)
		if err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
		if len(m.Brokers) != 1 {
			return fmt.Errorf("metadata lists %d brokers, want 1: %v", len(m.Brokers), m.Brokers)
		}
		b := m.Brokers[0]
		if b.Host != wantHost || strconv.Itoa(int(b.Port)) != wantPort {
			return fmt.Errorf("broker %d is at %s:%d, want %s", b.NodeID, b.Host, b.Port, e.Bootstrap)
		}
		td, ok := m.Topics[topic]
		if !ok || td.Err != nil {
			return fmt.Errorf("topic %s not listed (err %v)", topic, td.Err)
		}
		if len(td.Partitions) != 1 {
			return fmt.Errorf("topic %s has %d partitions, want 1", topic, len(td.Partitions))
		}
		return nil
	})
}

// topicsAdmin: create with 3 partitions and retention.ms, describe, describe and alter its
// configs, grow it to 5 partitions, delete it.
func topicsAdmin(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("topics-admin")
	return withAdmin(e, func(adm *kadm.Client) error {
		if err := createTopic(ctx, adm, topic, 3, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}); err != nil {
			return err
		}
		brokers, err := adm.ListBrokers(ctx)
		if err != nil {
			return fmt.Errorf("list brokers: %w", err)
		}
		if len(brokers) != 1 {
			return fmt.Errorf("%d brokers, want 1", len(brokers))
		}
		tds, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return fmt.Errorf("describe topic: %w", err)
		}
		td := tds[topic]
		if len(td.Partitions) != 3 {
			return fmt.Errorf("described %d partitions, want 3", len(td.Partitions))
		}
		for _, p := range td.Partitions {
			if p.Leader != brokers[0].NodeID {
				return fmt.Errorf("partition %d: leader %d, want broker %d", p.Partition, p.Leader, brokers[0].NodeID)
			}
		}
		// Kafka applies config changes asynchronously: read until the change shows.
		if err := gokit.Eventually(ctx, func() error { return checkRetention(ctx, adm, topic, "3600000") }); err != nil {
			return err
		}
		alter := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("7200000")}}
		ars, err := adm.AlterTopicConfigs(ctx, alter, topic)
		if err != nil {
			return fmt.Errorf("alter configs: %w", err)
		}
		for _, ar := range ars {
			if ar.Err != nil {
				return fmt.Errorf("alter configs of %s: %w (%s)", ar.Name, ar.Err, ar.ErrMessage)
			}
		}
		// Kafka applies config changes asynchronously: read until the change shows.
		if err := gokit.Eventually(ctx, func() error { return checkRetention(ctx, adm, topic, "7200000") }); err != nil {
			return err
		}
		cps, err := adm.UpdatePartitions(ctx, 5, topic)
		if err != nil {
			return fmt.Errorf("create partitions: %w", err)
		}
		if cp := cps[topic]; cp.Err != nil {
			return fmt.Errorf("create partitions: %w (%s)", cp.Err, cp.ErrMessage)
		}
		if err := gokit.Eventually(ctx, func() error {
			tds, err := adm.ListTopics(ctx, topic)
			if err != nil {
				return err
			}
			if n := len(tds[topic].Partitions); n != 5 {
				return fmt.Errorf("after growing to 5 partitions, metadata lists %d", n)
			}
			return nil
		}); err != nil {
			return err
		}
		dr, err := adm.DeleteTopic(ctx, topic)
		if err != nil {
			return fmt.Errorf("delete topic: %w", err)
		}
		if dr.Err != nil {
			return fmt.Errorf("delete topic: %w (%s)", dr.Err, dr.ErrMessage)
		}
		return gokit.Eventually(ctx, func() error {
			all, err := adm.ListTopics(ctx)
			if err != nil {
				return err
			}
			if all.Has(topic) {
				return fmt.Errorf("deleted topic %s is still listed", topic)
			}
			return nil
		})
	})
}

// checkRetention describes topic's configs and checks retention.ms.
func checkRetention(ctx context.Context, adm *kadm.Client, topic, want string) error {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe configs: %w", err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return fmt.Errorf("describe configs of %s: %w", topic, err)
	}
	if rc.Err != nil {
		return fmt.Errorf("describe configs of %s: %w (%s)", topic, rc.Err, rc.ErrMessage)
	}
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" {
			if c.MaybeValue() != want {
				return fmt.Errorf("retention.ms is %q (source %s), want %s", c.MaybeValue(), c.Source, want)
			}
			return nil
		}
	}
	return errors.New("retention.ms missing from the described configs")
}

// produceConsume: four records of every shape through one partition and back.
func produceConsume(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("produce-consume")
	if err := withAdmin(e, func(adm *kadm.Client) error { return createTopic(ctx, adm, topic, 1, nil) }); err != nil {
		return err
	}
	big := make([]byte, 1_000_000)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	sent := []*kgo.Record{
		{Topic: topic, Key: []byte("key-0"), Value: []byte("value-0"), Timestamp: time.UnixMilli(1700000000000),
			Headers: []kgo.RecordHeader{{Key: "h1", Value: []byte("v1")}, {Key: "h2", Value: []byte{}}}},
		{Topic: topic, Key: nil, Value: nil},
		{Topic: topic, Key: []byte{}, Value: []byte{}},
		{Topic: topic, Key: []byte("big"), Value: big},
	}
	prod, err := newClient(e, kgo.ProducerBatchMaxBytes(brokerMessageMaxBytes))
	if err != nil {
		return err
	}
	defer prod.Close()
	if err := produceSync(ctx, prod, sent...); err != nil {
		return err
	}
	got, err := consumeN(ctx, e, topic, []int32{0}, len(sent), nil)
	if err != nil {
		return err
	}
	for i, want := range sent {
		r := got[i]
		if r.Offset != int64(i) {
			return fmt.Errorf("record %d at offset %d", i, r.Offset)
		}
		if !gokit.SameBytes(r.Key, want.Key) {
			return fmt.Errorf("record %d: key %s, want %s", i, gokit.BytesString(r.Key), gokit.BytesString(want.Key))
		}
		if !gokit.SameBytes(r.Value, want.Value) {
			return fmt.Errorf("record %d: value %s (%d bytes), want %s (%d bytes)", i, gokit.BytesString(r.Value), len(r.Value), gokit.BytesString(want.Value), len(want.Value))
		}
		// kgo stamps the produce time on records sent without one: compare with that.
		if r.Timestamp.UnixMilli() != want.Timestamp.UnixMilli() {
			return fmt.Errorf("record %d: timestamp %d, want %d", i, r.Timestamp.UnixMilli(), want.Timestamp.UnixMilli())
		}
		if r.Attrs.TimestampType() != 0 {
			return fmt.Errorf("record %d: timestamp type %d, want 0 (create time)", i, r.Attrs.TimestampType())
		}
		if len(r.Headers) != len(want.Headers) {
			return fmt.Errorf("record %d: headers %s, want %s", i, gokit.HeadersString(headers(r.Headers)), gokit.HeadersString(headers(want.Headers)))
		}
		for j, h := range want.Headers {
			if r.Headers[j].Key != h.Key || !gokit.SameBytes(r.Headers[j].Value, h.Value) {
				return fmt.Errorf("record %d: headers %s, want %s", i, gokit.HeadersString(headers(r.Headers)), gokit.HeadersString(headers(want.Headers)))
			}
		}
	}
	return nil
}

// codecs maps the scenario's codec names (gokit.Codecs) to kgo's.
var codecs = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

// produceCodec: 100 records compressed with codec to compat-codec-<codec>-franz-go-<RID>.
func produceCodec(ctx context.Context, e gokit.Env, codec string) error {
	c, ok := codecs[codec]
	if !ok {
		return fmt.Errorf("unknown codec %q", codec)
	}
	topic := e.CodecTopic(codec, e.Client)
	if err := withAdmin(e, func(adm *kadm.Client) error { return createTopic(ctx, adm, topic, 1, nil) }); err != nil {
		return err
	}
	cl, err := newClient(e, kgo.ProducerBatchCompression(c))
	if err != nil {
		return err
	}
	defer cl.Close()
	recs := make([]*kgo.Record, gokit.CodecRecords)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Partition: 0, Key: gokit.CodecRecordKey(i), Value: gokit.CodecRecordValue(codec, i)}
		for _, h := range gokit.CodecRecordHeaders(i) {
			recs[i].Headers = append(recs[i].Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
	}
	if err := produceSync(ctx, cl, recs...); err != nil {
		return err
	}
	got, err := consumeN(ctx, e, topic, []int32{0}, gokit.CodecRecords, nil)
	if err != nil {
		return fmt.Errorf("reading back: %w", err)
	}
	return checkCodecRecords(codec, got)
}

// consumeCodec: read what writer produced in produce-codec-<codec>.
func consumeCodec(ctx context.Context, e gokit.Env, codec, writer string) error {
	got, err := consumeN(ctx, e, e.CodecTopic(codec, writer), []int32{0}, gokit.CodecRecords, nil)
	if err != nil {
		return err
	}
	return checkCodecRecords(codec, got)
}

// listOffsetsByTime: three records one second apart, then offsets by special and real times.
func listOffsetsByTime(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("list-offsets-by-time")
	return withAdmin(e, func(adm *kadm.Client) error {
		// The records are years old: no retention, or a retention pass would delete them.
		if err := createTopic(ctx, adm, topic, 1, map[string]*string{"retention.ms": kadm.StringPtr("-1")}); err != nil {
			return err
		}
		cl, err := newClient(e)
		if err != nil {
			return err
		}
		defer cl.Close()
		var recs []*kgo.Record
		for i := int64(0); i < 3; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("t%d", i)), Timestamp: time.UnixMilli(1700000000000 + 1000*i)})
		}
		if err := produceSync(ctx, cl, recs...); err != nil {
			return err
		}
		offsetOf := func(what string, list func() (kadm.ListedOffsets, error)) (int64, error) {
			lo, err := list()
			if err != nil {
				return 0, fmt.Errorf("list %s offset: %w", what, err)
			}
			o, ok := lo.Lookup(topic, 0)
			if !ok {
				return 0, fmt.Errorf("list %s offset: partition 0 missing", what)
			}
			if o.Err != nil {
				return 0, fmt.Errorf("list %s offset: %w", what, o.Err)
			}
			return o.Offset, nil
		}
		checks := []struct {
			what string
			list func() (kadm.ListedOffsets, error)
			want int64
		}{
			{"earliest", func() (kadm.ListedOffsets, error) { return adm.ListStartOffsets(ctx, topic) }, 0},
			{"latest", func() (kadm.ListedOffsets, error) { return adm.ListEndOffsets(ctx, topic) }, 3},
			{"time 1700000000500", func() (kadm.ListedOffsets, error) { return adm.ListOffsetsAfterMilli(ctx, 1700000000500, topic) }, 1},
			{"time 1700000002000", func() (kadm.ListedOffsets, error) { return adm.ListOffsetsAfterMilli(ctx, 1700000002000, topic) }, 2},
			// kadm presents "no record at or after this time" (the broker's -1) as the end
			// offset, as its documentation says; the raw request below sees the -1 itself.
			{"time 1700000003000", func() (kadm.ListedOffsets, error) { return adm.ListOffsetsAfterMilli(ctx, 1700000003000, topic) }, 3},
		}
		for _, c := range checks {
			got, err := offsetOf(c.what, c.list)
			if err != nil {
				return err
			}
			if got != c.want {
				return fmt.Errorf("%s offset is %d, want %d", c.what, got, c.want)
			}
		}
		return checkRawListOffsetsAfterEnd(ctx, cl, topic)
	})
}

// checkRawListOffsetsAfterEnd sends ListOffsets for time 1700000003000 with kmsg and
// expects offset -1 and timestamp -1 (no record at or after that time).
func checkRawListOffsetsAfterEnd(ctx context.Context, cl *kgo.Client, topic string) error {
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = 0
	rp.Timestamp = 1700000003000
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("ListOffsets for time 1700000003000: %w", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return fmt.Errorf("ListOffsets for time 1700000003000: unexpected response shape %+v", resp.Topics)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.Offset != -1 || p.Timestamp != -1 {
		return fmt.Errorf("ListOffsets for time 1700000003000: error %d offset %d timestamp %d, want 0, -1, -1", p.ErrorCode, p.Offset, p.Timestamp)
	}
	return nil
}

// resumeCommitted: a group member commits offset 4 after four records; the next member of
// the group starts there.
func resumeCommitted(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("resume-committed")
	group := e.ID("resume")
	if err := withAdmin(e, func(adm *kadm.Client) error { return createTopic(ctx, adm, topic, 1, nil) }); err != nil {
		return err
	}
	if err := produceNumbered(ctx, e, topic, 10); err != nil {
		return err
	}
	first, err := newClient(e, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic))
	if err != nil {
		return err
	}
	var four []*kgo.Record
	for len(four) < 4 {
		fetches := first.PollRecords(ctx, 4-len(four))
		if err := fetchError(ctx, fetches); err != nil {
			first.Close()
			return fmt.Errorf("first consumer, after %d records: %w", len(four), err)
		}
		four = append(four, fetches.Records()...)
	}
	for i, r := range four {
		if r.Offset != int64(i) {
			first.Close()
			return fmt.Errorf("first consumer: record %d at offset %d", i, r.Offset)
		}
	}
	if err := first.CommitRecords(ctx, four...); err != nil {
		first.Close()
		return fmt.Errorf("commit offset 4: %w", err)
	}
	first.Close()
	if err := withAdmin(e, func(adm *kadm.Client) error {
		return gokit.CheckCommitted(ctx, committedOffsets(adm, group, topic), 1, 4)
	}); err != nil {
		return fmt.Errorf("after the first consumer: %w", err)
	}
	second, err := newClient(e, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic))
	if err != nil {
		return err
	}
	defer second.Close()
	var rest []*kgo.Record
	for len(rest) < 6 {
		fetches := second.PollFetches(ctx)
		if err := fetchError(ctx, fetches); err != nil {
			return fmt.Errorf("second consumer, after %d records: %w", len(rest), err)
		}
		rest = append(rest, fetches.Records()...)
	}
	for i, r := range rest {
		if r.Offset != int64(4+i) || string(r.Value) != strconv.Itoa(4+i) {
			return fmt.Errorf("second consumer: record %d is offset %d value %q, want offset %d", i, r.Offset, r.Value, 4+i)
		}
	}
	return nil
}

// produceNumbered produces n records with values "0".."n-1" to partition 0 of topic.
func produceNumbered(ctx context.Context, e gokit.Env, topic string, n int) error {
	cl, err := newClient(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i))}
	}
	return produceSync(ctx, cl, recs...)
}

// idempotentProducer: 1,000 keyed records to 3 partitions with kgo's default (idempotent)
// producer, read back exactly once each, in order per partition.
func idempotentProducer(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("idempotent-producer")
	if err := withAdmin(e, func(adm *kadm.Client) error { return createTopic(ctx, adm, topic, 3, nil) }); err != nil {
		return err
	}
	cl, err := newClient(e) // idempotent writes are kgo's default
	if err != nil {
		return err
	}
	defer cl.Close()
	const n = 1000
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(strconv.Itoa(i))}
	}
	if err := produceSync(ctx, cl, recs...); err != nil {
		return err
	}
	where := make(map[int]*kgo.Record, n) // value -> the record as acknowledged
	for i, r := range recs {
		where[i] = r
	}
	got, err := consumeN(ctx, e, topic, []int32{0, 1, 2}, n, nil)
	if err != nil {
		return err
	}
	seen := make(map[int]bool, n)
	last := map[int32]int{0: -1, 1: -1, 2: -1}
	for _, r := range got {
		v, err := strconv.Atoi(string(r.Value))
		if err != nil || v < 0 || v >= n {
			return fmt.Errorf("unexpected record value %q at %d/%d", r.Value, r.Partition, r.Offset)
		}
		if seen[v] {
			return fmt.Errorf("record %d read twice", v)
		}
		seen[v] = true
		if v < last[r.Partition] {
			return fmt.Errorf("partition %d: record %d after record %d", r.Partition, v, last[r.Partition])
		}
		last[r.Partition] = v
		if ack := where[v]; ack.Partition != r.Partition || ack.Offset != r.Offset {
			return fmt.Errorf("record %d acknowledged at %d/%d but read at %d/%d", v, ack.Partition, ack.Offset, r.Partition, r.Offset)
		}
		if r.ProducerID < 0 {
			return fmt.Errorf("record %d has no producer id: the producer was not idempotent", v)
		}
	}
	return nil
}

// transactions: commit ten records, abort ten more; read_committed sees the ten,
// read_uncommitted all twenty, neither a control record.
//
// A plain record appended after the aborted transaction marks the end: a consumer that
// reaches it has been offered everything before it, so no wait for "nothing more" is needed.
func transactions(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("transactions")
	if err := withAdmin(e, func(adm *kadm.Client) error { return createTopic(ctx, adm, topic, 1, nil) }); err != nil {
		return err
	}
	txnID := e.ID("txn")
	txn, err := newClient(e, kgo.TransactionalID(txnID))
	if err != nil {
		return err
	}
	defer txn.Close()
	// kgo retries InitProducerId until its context ends: keep a reserve of the budget to
	// explain a producer that never became ready.
	produceCtx, cancel := context.WithTimeout(ctx, gokit.BudgetLeft(ctx)-3*time.Second)
	defer cancel()
	for _, outcome := range []struct {
		prefix string
		commit kgo.TransactionEndTry
	}{{"committed", kgo.TryCommit}, {"aborted", kgo.TryAbort}} {
		if err := txn.BeginTransaction(); err != nil {
			return fmt.Errorf("begin transaction: %w", err)
		}
		recs := make([]*kgo.Record, 10)
		for i := range recs {
			recs[i] = &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("%s %d", outcome.prefix, i))}
		}
		if err := produceSync(produceCtx, txn, recs...); err != nil {
			if produceCtx.Err() != nil {
				return fmt.Errorf("transactional produce: %w; %s", err, coordinatorAnswer(ctx, e, txnID))
			}
			return fmt.Errorf("transactional produce: %w", err)
		}
		if err := txn.EndTransaction(ctx, outcome.commit); err != nil {
			return fmt.Errorf("end transaction (%s): %w", outcome.prefix, err)
		}
	}
	plain, err := newClient(e)
	if err != nil {
		return err
	}
	defer plain.Close()
	if err := produceSync(ctx, plain, &kgo.Record{Topic: topic, Value: []byte("end")}); err != nil {
		return fmt.Errorf("end marker: %w", err)
	}
	isEnd := func(r *kgo.Record) bool { return string(r.Value) == "end" }
	for _, c := range []struct {
		level kgo.IsolationLevel
		name  string
		want  []string
	}{
		{kgo.ReadCommitted(), "read_committed", gokit.Numbered("committed", 10)},
		{kgo.ReadUncommitted(), "read_uncommitted", append(gokit.Numbered("committed", 10), gokit.Numbered("aborted", 10)...)},
	} {
		got, err := consumeN(ctx, e, topic, []int32{0}, -1, isEnd, kgo.FetchIsolationLevel(c.level))
		if err != nil {
			return fmt.Errorf("%s consumer: %w", c.name, err)
		}
		got = got[:len(got)-1] // the end marker
		if len(got) != len(c.want) {
			return fmt.Errorf("%s consumer read %d records before the end marker, want %d: %s", c.name, len(got), len(c.want), values(got))
		}
		for i, r := range got {
			if string(r.Value) != c.want[i] || r.Attrs.IsControl() {
				return fmt.Errorf("%s consumer: record %d is %q (control %v), want %q", c.name, i, r.Value, r.Attrs.IsControl(), c.want[i])
			}
		}
	}
	return nil
}

// coordinatorAnswer asks the broker once for the transaction coordinator of txnID and
// describes its answer, to explain a transactional producer that never became ready.
func coordinatorAnswer(ctx context.Context, e gokit.Env, txnID string) string {
	answer := ""
	err := withAdmin(e, func(adm *kadm.Client) error {
		r := adm.FindTxnCoordinators(ctx, txnID)[txnID]
		if r.Err != nil {
			answer = fmt.Sprintf("FindCoordinator(transaction %s) answers %v", txnID, r.Err)
		} else {
			answer = fmt.Sprintf("FindCoordinator(transaction %s) answers broker %d", txnID, r.NodeID)
		}
		return nil
	})
	if err != nil {
		return fmt.Sprintf("asking for the transaction coordinator failed: %v", err)
	}
	return answer
}

// values renders record values for a failure message.
func values(recs []*kgo.Record) string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprintf("%d:%q", r.Offset, r.Value)
	}
	return fmt.Sprint(out)
}

// deleteRecords: DeleteRecords before offset 5 moves the start offset to 5.
func deleteRecords(ctx context.Context, e gokit.Env) error {
	topic := e.Topic("delete-records")
	return withAdmin(e, func(adm *kadm.Client) error {
		if err := createTopic(ctx, adm, topic, 1, nil); err != nil {
			return err
		}
		if err := produceNumbered(ctx, e, topic, 10); err != nil {
			return err
		}
		var to kadm.Offsets
		to.Add(kadm.Offset{Topic: topic, Partition: 0, At: 5})
		drs, err := adm.DeleteRecords(ctx, to)
		if err != nil {
			return fmt.Errorf("delete records: %w", err)
		}
		dr, ok := drs.Lookup(topic, 0)
		if !ok || dr.Err != nil {
			return fmt.Errorf("delete records: %+v", dr)
		}
		if dr.LowWatermark != 5 {
			return fmt.Errorf("delete records: low watermark %d, want 5", dr.LowWatermark)
		}
		starts, err := adm.ListStartOffsets(ctx, topic)
		if err != nil {
			return fmt.Errorf("list earliest offset: %w", err)
		}
		if o, _ := starts.Lookup(topic, 0); o.Err != nil || o.Offset != 5 {
			return fmt.Errorf("earliest offset after deleting: %d (err %v), want 5", o.Offset, o.Err)
		}
		got, err := consumeN(ctx, e, topic, []int32{0}, 5, nil)
		if err != nil {
			return err
		}
		for i, r := range got {
			if r.Offset != int64(5+i) || string(r.Value) != strconv.Itoa(5+i) {
				return fmt.Errorf("record %d is offset %d value %q, want offset %d", i, r.Offset, r.Value, 5+i)
			}
		}
		return nil
	})
}
