// Package readme holds the tests that keep the repository's README.md
// honest: every Go snippet in it type-checks as pasted, and the numbers it
// states for the code's defaults are the code's.
package readme
