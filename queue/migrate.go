package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

func migrate(ctx context.Context, pool *pgxpool.Pool, opts []Option) error {
	if pool == nil {
		return errors.New("queue: nil pool")
	}
	o, err := newOptions(opts)
	if err != nil {
		return err
	}
	if err := o.only("Migrate", "WithSchema", "WithLogger"); err != nil {
		return err
	}
	if o.schema != "" {
		if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{o.schema}.Sanitize()); err != nil {
			return fmt.Errorf("queue: create schema: %w", err)
		}
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: o.schema, Logger: o.logger})
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("queue: migrate: %w", err)
	}
	return nil
}
