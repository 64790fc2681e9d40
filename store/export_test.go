package store

// SetWALBehindFrames sets the log length past which the writer catches the
// checkpoint up (see checkpointer), lets it catch up at every commit, and returns a function restoring it.
func SetWALBehindFrames(n int64) (restore func()) {
	old, every := walBehindFrames, walCatchUpEvery
	walBehindFrames, walCatchUpEvery = n, 0
	return func() { walBehindFrames, walCatchUpEvery = old, every }
}
