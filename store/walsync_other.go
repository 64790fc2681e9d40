//go:build !linux

package store

import "os"

// fdatasync is fsync(2) where the platform has no fdatasync.
func fdatasync(f *os.File) error { return f.Sync() }
