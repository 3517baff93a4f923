package queue

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"
)

// metaSupersededBy, in a cancelled job's metadata, is the ID of a later job
// of its key that was enqueued (a corrected sync) or ran (a re-pushed
// notification). River's unique index shows a later job only while that job
// is kept; the mark outlasts it, so [Admin.Replay] never runs a superseded
// job again and [Admin.Unsynced] never lists one, however old.
const metaSupersededBy = "bizcircle_superseded_by"

// supersede marks the cancelled jobs of kind whose args contain match as
// superseded by job by, in tx. River's GIN index on args finds them.
func supersede(ctx context.Context, tx pgx.Tx, schema, kind string, match map[string]string, by int64) error {
	table := "river_job"
	if schema != "" {
		table = pgx.Identifier{schema, "river_job"}.Sanitize()
	}
	m, err := json.Marshal(match)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE `+table+` SET metadata = metadata || jsonb_build_object('`+metaSupersededBy+`', $1::bigint)
		WHERE kind = $2 AND state = 'cancelled' AND args @> $3::jsonb`, by, kind, m)
	if err != nil {
		return fmt.Errorf("queue: marking superseded %s jobs: %w", kind, err)
	}
	return nil
}

// supersededBy returns the job that superseded r, 0 if none.
func supersededBy(r *rivertype.JobRow) int64 {
	var m struct {
		By int64 `json:"bizcircle_superseded_by"`
	}
	_ = json.Unmarshal(r.Metadata, &m) // a forged row may hold anything
	return m.By
}
