package queue_test

import (
	"testing"

	"github.com/go-bizcircle/bizcircle/testenv"
)

// TestMain says in one line which tests skipped for want of PostgreSQL.
func TestMain(m *testing.M) { testenv.Main(m) }
