package main

import (
	"testing"

	"github.com/go-bizcircle/bizcircle/examples/internal/routertest"
)

func TestRouter(t *testing.T) { routertest.Run(t, newRouter) }
