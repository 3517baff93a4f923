package pgdedupe

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// Defaults of a [Deduper].
const (
	// DefaultTable is the dedupe table's name.
	DefaultTable = "bizcircle_dedupe"
	// MinTTL is the shortest TTL that covers WeChat Pay's retries of a
	// payment or refund notification: 24 hours and 4 minutes.
	MinTTL = 24*time.Hour + 4*time.Minute
	// DefaultCleanupInterval is how often the background cleanup runs.
	DefaultCleanupInterval = time.Hour
	// DefaultCleanupBatch is how many expired rows one cleanup statement
	// deletes.
	DefaultCleanupBatch = 1000
)

// An Option configures a [Deduper]. Invalid values make [New] return an error.
type Option func(*options)

type options struct {
	table           string
	ttl             time.Duration
	wait            time.Duration
	now             func() time.Time
	txOptions       pgx.TxOptions
	cleanupInterval time.Duration
	cleanupBatch    int
	onCleanupError  func(error)
}

// WithTable sets the dedupe table, as "name" or "schema.name". Each part is
// quoted as given, so it is case-sensitive. Default: [DefaultTable]
// ("bizcircle_dedupe") in the connection's search_path.
func WithTable(name string) Option {
	return func(o *options) { o.table = name }
}

// WithTTL sets how long a completed key is remembered; after it the key counts
// as absent. It must be positive. Below [MinTTL] a late retry of WeChat Pay
// runs the callback again, so shorter TTLs are for tests. Default:
// [bizcircle.DefaultTTL] (25 hours).
func WithTTL(d time.Duration) Option {
	return func(o *options) { o.ttl = d }
}

// WithInFlightWait sets how long Do waits for another transaction holding the
// same key before it gives [bizcircle.ErrInFlight]; the wait also ends with
// Do's context. A waiting Do holds no connection: it looks at the key again
// every 100 ms at most. 0 gives ErrInFlight at once, after one look. The same
// wait bounds how long Do waits for a pooled connection when the pool is
// exhausted, but that wait is at least a second, long enough to dial one. It
// must not be negative. Default: [bizcircle.DefaultInFlightWait] (3 seconds).
func WithInFlightWait(d time.Duration) Option {
	return func(o *options) { o.wait = d }
}

// WithClock sets the clock that stamps and expires keys; it must not be nil.
// Replicas sharing a table should have clocks within seconds of each other.
// Default: time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithTxOptions sets the options of the transactions Do begins, such as the
// isolation level the callback's writes need. Default: the zero
// pgx.TxOptions, the server's default isolation (READ COMMITTED unless
// configured otherwise).
func WithTxOptions(opts pgx.TxOptions) Option {
	return func(o *options) { o.txOptions = opts }
}

// WithCleanupInterval sets how often the background goroutine started by
// [New] deletes expired rows; 0 starts no goroutine, for callers who run
// [Deduper.DeleteExpired] themselves. It must not be negative. Default:
// [DefaultCleanupInterval] (1 hour).
func WithCleanupInterval(d time.Duration) Option {
	return func(o *options) { o.cleanupInterval = d }
}

// WithCleanupBatch sets how many expired rows one cleanup statement deletes;
// smaller batches hold fewer row locks for less time. It must be at least 1.
// Default: [DefaultCleanupBatch] (1000).
func WithCleanupBatch(n int) Option {
	return func(o *options) { o.cleanupBatch = n }
}

// WithCleanupErrorHandler sets a function that receives the background
// cleanup's errors, for logging; it runs on the cleanup goroutine. Default:
// nil, errors are dropped and the next run tries again.
func WithCleanupErrorHandler(fn func(error)) Option {
	return func(o *options) { o.onCleanupError = fn }
}

func (o *options) validate() error {
	var errs []error
	if _, _, err := splitTable(o.table); err != nil {
		errs = append(errs, err)
	}
	if o.ttl <= 0 {
		errs = append(errs, fmt.Errorf("pgdedupe: TTL %v is not positive", o.ttl))
	}
	if o.wait < 0 {
		errs = append(errs, fmt.Errorf("pgdedupe: negative in-flight wait %v", o.wait))
	}
	if o.now == nil {
		errs = append(errs, errors.New("pgdedupe: nil clock"))
	}
	if o.cleanupInterval < 0 {
		errs = append(errs, fmt.Errorf("pgdedupe: negative cleanup interval %v", o.cleanupInterval))
	}
	if o.cleanupBatch < 1 {
		errs = append(errs, fmt.Errorf("pgdedupe: cleanup batch %d is below 1", o.cleanupBatch))
	}
	return errors.Join(errs...)
}

// identifiers returns the sanitized table name and its expiry index's name;
// call it after validate.
func (o *options) identifiers() (table, index string) {
	schema, name, _ := splitTable(o.table)
	index = pgx.Identifier{indexName(name)}.Sanitize()
	if schema == "" {
		return pgx.Identifier{name}.Sanitize(), index
	}
	return pgx.Identifier{schema, name}.Sanitize(), index
}

// maxIdentifier is PostgreSQL's identifier length limit, in bytes; it
// truncates longer ones.
const maxIdentifier = 63

// indexName names table's expiry index. PostgreSQL would truncate a long
// name, and CREATE INDEX IF NOT EXISTS would then find another table's index
// under it, so a long table name is shortened and made unique with a hash.
func indexName(table string) string {
	const suffix = "_expires_at_idx"
	if len(table)+len(suffix) <= maxIdentifier {
		return table + suffix
	}
	sum := sha256.Sum256([]byte(table))
	n := maxIdentifier - len(suffix) - 9 // room for "_" and 8 hex digits
	for n > 0 && !utf8.RuneStart(table[n]) {
		n--
	}
	return table[:n] + "_" + hex.EncodeToString(sum[:4]) + suffix
}

func splitTable(s string) (schema, name string, err error) {
	parts := strings.Split(s, ".")
	for _, p := range parts {
		if p == "" || strings.ContainsRune(p, 0) || !utf8.ValidString(p) {
			return "", "", fmt.Errorf("pgdedupe: invalid table name %q", s)
		}
		if len(p) > maxIdentifier {
			return "", "", fmt.Errorf("pgdedupe: table name %q: a part is longer than %d bytes", s, maxIdentifier)
		}
	}
	switch len(parts) {
	case 1:
		return "", parts[0], nil
	case 2:
		return parts[0], parts[1], nil
	}
	return "", "", fmt.Errorf("pgdedupe: invalid table name %q: want name or schema.name", s)
}
