package gokit

import (
	"context"
	"time"
)

// pollInterval is how often Eventually checks again.
const pollInterval = 100 * time.Millisecond

// Eventually calls check until it returns nil or ctx ends; then it returns check's last
// error (check runs at least once, even when ctx has already ended). It is only for state
// a broker makes visible asynchronously (metadata after a topic is created or deleted,
// configs after a change, committed offsets behind autocommit), never for timing.
func Eventually(ctx context.Context, check func() error) error {
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pollInterval):
		}
	}
}

// BudgetLeft is the time until ctx's deadline; without a deadline it is zero or less.
func BudgetLeft(ctx context.Context) time.Duration {
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	return time.Until(deadline)
}
