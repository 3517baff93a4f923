package soak_test

import (
	"testing"

	"github.com/go-bizcircle/bizcircle/testenv"
)

// TestMain says in one line which tests skipped for want of a server.
func TestMain(m *testing.M) { testenv.Main(m) }
