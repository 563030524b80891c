// Command driver runs the compatibility scenarios of compat/SCENARIOS.md with franz-go
// (kgo for producing and consuming, kadm for administration) against one broker.
//
//	./driver --bootstrap 127.0.0.1:PORT --run-id RID --scenarios s1,s2,...
//
// It runs the scenarios in the order given and prints one JSON line per scenario on stdout
// ({"scenario", "status", "reason", "seconds"}); everything else goes to stderr. A scenario
// that returns an error or panics is a "fail" and the next one runs; each has a 60 s budget
// (its context), and one that ignores its context is abandoned at the budget plus a grace.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"
)

// clientName is this driver's row in the report and the <client> part of its topic names.
const clientName = "franz-go"

// scenarioBudget bounds every scenario (the contract's 60 s); abandonGrace is how long past
// it the harness still waits for a scenario before reporting it as stuck.
const (
	scenarioBudget = 60 * time.Second
	abandonGrace   = 5 * time.Second
)

// notApplicable is returned by a scenario this client has no API for.
type notApplicable struct{ reason string }

func (n notApplicable) Error() string { return n.reason }

// passNote is returned by a scenario that passed but could not express part of its check
// with this client: the runner shows the note beside the pass.
type passNote struct{ note string }

func (p passNote) Error() string { return p.note }

// result is one line of the driver's output.
type result struct {
	Scenario string  `json:"scenario"`
	Status   string  `json:"status"`
	Reason   string  `json:"reason"`
	Seconds  float64 `json:"seconds"`
}

// env is what every scenario gets: the bootstrap address and the run id.
type env struct {
	bootstrap string
	runID     string
}

// topic names a scenario's topic: compat-<client>-<scenario>-<RID>.
func (e env) topic(scenario string) string {
	return fmt.Sprintf("compat-%s-%s-%s", clientName, scenario, e.runID)
}

// codecTopic names the topic that client writer fills in produce-codec-<codec>.
func (e env) codecTopic(codec, writer string) string {
	return fmt.Sprintf("compat-codec-%s-%s-%s", codec, writer, e.runID)
}

func main() {
	bootstrap := flag.String("bootstrap", "", "host:port of the broker")
	runID := flag.String("run-id", "", "suffix of every topic and group name")
	scenarios := flag.String("scenarios", "", "comma-separated scenario ids, run in order")
	flag.Parse()
	if *bootstrap == "" || *runID == "" || *scenarios == "" {
		flag.Usage()
		os.Exit(2)
	}
	log.SetOutput(os.Stderr)
	log.SetPrefix(clientName + " driver: ")
	e := env{bootstrap: *bootstrap, runID: *runID}
	out := json.NewEncoder(os.Stdout)
	for _, name := range strings.Split(*scenarios, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		log.Printf("scenario %s: start", name)
		r := runOne(e, name)
		log.Printf("scenario %s: %s %s (%.1f s)", name, r.Status, r.Reason, r.Seconds)
		if err := out.Encode(r); err != nil {
			log.Fatalf("writing the result: %v", err)
		}
	}
}

// runOne runs one scenario under its budget and turns its outcome into a result.
func runOne(e env, name string) result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), scenarioBudget)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("panic: %v", p)
			}
		}()
		done <- dispatch(ctx, e, name)
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(scenarioBudget + abandonGrace):
		err = fmt.Errorf("still running %s after the %s budget; abandoned", time.Since(start).Round(time.Second), scenarioBudget)
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
			r.Reason = fmt.Sprintf("%s (the %s scenario budget ran out)", r.Reason, scenarioBudget)
		}
	}
	return r
}

// dispatch maps a scenario id, including the parameterised codec ones, to its function.
func dispatch(ctx context.Context, e env, name string) error {
	switch {
	case strings.HasPrefix(name, "produce-codec-"):
		return produceCodec(ctx, e, strings.TrimPrefix(name, "produce-codec-"))
	case strings.HasPrefix(name, "consume-codec-"):
		codec, writer, ok := strings.Cut(strings.TrimPrefix(name, "consume-codec-"), ":")
		if !ok || writer == "" {
			return fmt.Errorf("bad scenario id %q: want consume-codec-<codec>:<writer>", name)
		}
		return consumeCodec(ctx, e, codec, writer)
	}
	fn, ok := scenarios[name]
	if !ok {
		return fmt.Errorf("unknown scenario %q", name)
	}
	return fn(ctx, e)
}

// scenarios holds the scenarios without parameters.
var scenarios = map[string]func(context.Context, env) error{
	"metadata":             metadata,
	"topics-admin":         topicsAdmin,
	"produce-consume":      produceConsume,
	"list-offsets-by-time": listOffsetsByTime,
	"consumer-group":       consumerGroup,
	"resume-committed":     resumeCommitted,
	"idempotent-producer":  idempotentProducer,
	"transactions":         transactions,
	"delete-records":       deleteRecords,
}
