//go:build race

package main

// raceEnabled: the race detector multiplies memory (shadow state) and
// slows every step, so figures measured under it are not the product's.
const raceEnabled = true
