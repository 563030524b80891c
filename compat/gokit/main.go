// Package gokit is what the Go drivers of the compatibility matrix (compat/franz-go,
// compat/sarama, compat/kafka-go) share: the driver's command line and its JSON lines
// (Main), the names of a run's topics and groups (Env), the outcomes a scenario returns
// besides pass and fail (NotApplicable, PassNote), the expected records of the codec
// scenarios, bounded polling, and the consumer-group scenario's ownership tracking and
// checks. It depends on no Kafka client: each driver keeps its client's calls and hands
// gokit what they saw.
//
// A driver is run as
//
//	./driver --bootstrap 127.0.0.1:PORT --run-id RID --scenarios s1,s2,...
//
// and runs the scenarios in the order given, printing one JSON line per scenario on stdout
// ({"scenario", "status", "reason", "seconds"}); everything else goes to stderr. A scenario
// that returns an error or panics is a "fail" and the next one runs; each has a 60 s budget
// (its context), and one that ignores its context is abandoned at the budget plus a grace.
package gokit

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"strings"
	"time"
)

// ScenarioBudget bounds every scenario (the contract's 60 s); abandonGrace is how long past
// it Main still waits for a scenario before reporting it as stuck.
const (
	ScenarioBudget = 60 * time.Second
	abandonGrace   = 5 * time.Second
)

// Codecs are the codec names of produce-codec-<codec> and consume-codec-<codec>:<writer>.
var Codecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// Scenario runs one scenario without parameters; ctx ends at the scenario's budget.
type Scenario func(ctx context.Context, e Env) error

// Scenarios is what a driver can run: the scenarios without parameters by id, and the two
// codec scenarios with their codec (and, to consume, the client that wrote it). Main
// checks the codec name against Codecs before calling either.
type Scenarios struct {
	Plain        map[string]Scenario
	ProduceCodec func(ctx context.Context, e Env, codec string) error
	ConsumeCodec func(ctx context.Context, e Env, codec, writer string) error
}

// Env is what every scenario gets: the broker, the run id and the driver's client name.
type Env struct {
	Bootstrap string // host:port of the broker
	RunID     string // the suffix of every topic, group and transactional id of the run
	Client    string // the driver's row in the report, the <client> part of its names
}

// Topic names a scenario's topic: compat-<client>-<scenario>-<RID>.
func (e Env) Topic(scenario string) string {
	return fmt.Sprintf("compat-%s-%s-%s", e.Client, scenario, e.RunID)
}

// ID names a group or transactional id of kind ("group", "resume", "txn"), in the same
// form as a topic: compat-<client>-<kind>-<RID>.
func (e Env) ID(kind string) string {
	return e.Topic(kind)
}

// CodecTopic names the topic that client writer fills in produce-codec-<codec>:
// compat-codec-<codec>-<writer>-<RID>.
func (e Env) CodecTopic(codec, writer string) string {
	return fmt.Sprintf("compat-codec-%s-%s-%s", codec, writer, e.RunID)
}

// notApplicable is the error of a scenario the client has no API for.
type notApplicable struct{ reason string }

func (n notApplicable) Error() string { return n.reason }

// NotApplicable is what a scenario returns when the client has no API for it: the result
// is "n/a" with reason.
func NotApplicable(reason string) error { return notApplicable{reason} }

// passNote is the error of a scenario that passed with a note.
type passNote struct{ note string }

func (p passNote) Error() string { return p.note }

// PassNote is what a scenario returns when it passed but could not express part of its
// check with the client: the result is "pass" with note as its reason, which the runner
// shows beside the pass.
func PassNote(note string) error { return passNote{note} }

// result is one line of the driver's output.
type result struct {
	Scenario string  `json:"scenario"`
	Status   string  `json:"status"`
	Reason   string  `json:"reason"`
	Seconds  float64 `json:"seconds"`
}

// Main parses the driver's command line (exiting 2 when an option is missing), runs the
// scenarios it names in order and prints their results; log lines go to stderr with the
// prefix "<client> driver: ". It returns when every scenario has a result, or exits 1
// when stdout cannot be written.
func Main(client string, s Scenarios) {
	bootstrap := flag.String("bootstrap", "", "host:port of the broker")
	runID := flag.String("run-id", "", "suffix of every topic and group name")
	scenarios := flag.String("scenarios", "", "comma-separated scenario ids, run in order")
	flag.Parse()
	if *bootstrap == "" || *runID == "" || *scenarios == "" {
		flag.Usage()
		os.Exit(2)
	}
	log.SetOutput(os.Stderr)
	log.SetPrefix(client + " driver: ")
	e := Env{Bootstrap: *bootstrap, RunID: *runID, Client: client}
	out := json.NewEncoder(os.Stdout)
	for _, name := range strings.Split(*scenarios, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		log.Printf("scenario %s: start", name)
		r := runOne(s, e, name, ScenarioBudget)
		log.Printf("scenario %s: %s %s (%.1f s)", name, r.Status, r.Reason, r.Seconds)
		if err := out.Encode(r); err != nil {
			log.Fatalf("writing the result: %v", err)
		}
	}
}

// runOne runs one scenario under budget and turns its outcome into a result: nil is a
// pass, NotApplicable an n/a, PassNote a pass with a reason, anything else (a panic, a
// scenario still running at budget plus the grace) a fail. A failure after the budget ran
// out says so, unless its message already speaks of the budget.
func runOne(s Scenarios, e Env, name string, budget time.Duration) result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("panic: %v", p)
			}
		}()
		done <- s.dispatch(ctx, e, name)
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(budget + abandonGrace):
		err = fmt.Errorf("still running %s after the %s budget; abandoned", time.Since(start).Round(time.Second), budget)
	}
	r := result{Scenario: name, Status: "pass", Seconds: float64(time.Since(start).Milliseconds()) / 1000}
	var na notApplicable
	var note passNote
	switch {
	case err == nil:
	case errors.As(err, &na):
		r.Status, r.Reason = "n/a", na.reason
	case errors.As(err, &note):
		r.Reason = note.note
	default:
		r.Status, r.Reason = "fail", err.Error()
		if ctx.Err() != nil && !strings.Contains(r.Reason, "budget") {
			r.Reason = fmt.Sprintf("%s (the %s scenario budget ran out)", r.Reason, budget)
		}
	}
	return r
}

// dispatch maps a scenario id, including the parameterised codec ones, to its function.
// An unknown id, codec or a consume-codec id without its writer is an error (a fail).
func (s Scenarios) dispatch(ctx context.Context, e Env, name string) error {
	switch {
	case strings.HasPrefix(name, "produce-codec-"):
		codec := strings.TrimPrefix(name, "produce-codec-")
		if !slices.Contains(Codecs, codec) {
			return fmt.Errorf("unknown codec %q", codec)
		}
		return s.ProduceCodec(ctx, e, codec)
	case strings.HasPrefix(name, "consume-codec-"):
		codec, writer, ok := strings.Cut(strings.TrimPrefix(name, "consume-codec-"), ":")
		if !ok || writer == "" {
			return fmt.Errorf("bad scenario id %q: want consume-codec-<codec>:<writer>", name)
		}
		if !slices.Contains(Codecs, codec) {
			return fmt.Errorf("unknown codec %q", codec)
		}
		return s.ConsumeCodec(ctx, e, codec, writer)
	}
	fn, ok := s.Plain[name]
	if !ok {
		return fmt.Errorf("unknown scenario %q", name)
	}
	return fn(ctx, e)
}
