package engine

// SetScopePart sets how many source entries a streamed full sync's scope
// holds before it runs as a plan of its own, and returns the old value.
func SetScopePart(n int) int {
	old := scopePart
	scopePart = n
	return old
}
