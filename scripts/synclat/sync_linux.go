package main

import (
	"os"
	"syscall"
)

// fdatasync syncs as SQLite does on Linux (see syncData in store/sqlite_driver.go).
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
