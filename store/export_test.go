package store

// SetWALBehindFrames sets the log length past which the writer catches the
// checkpoint up (see checkpointer) and returns a function restoring it.
func SetWALBehindFrames(n int64) (restore func()) {
	old := walBehindFrames
	walBehindFrames = n
	return func() { walBehindFrames = old }
}
